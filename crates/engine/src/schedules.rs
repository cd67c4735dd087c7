//! Keeping a flow's schedule armed exactly while the flow is enabled.
//!
//! The flows service calls [`sync`] in every transaction that changes a flow's status or
//! definition. Only the trigger step as saved is stored; parsing it and computing fire times
//! is the scheduler's job (`workbench-scheduler`), which the engine does not depend on.

use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::schedule_store::{self, ArmSchedule};
use crate::store::FlowRow;

/// The connector id of schedule triggers.
pub const SCHEDULE_CONNECTOR: &str = "Schedule";

/// The schedule trigger step of a FlowMeta definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleTrigger {
    pub step_id: String,
    /// The trigger operation (`refId`, else `refName`).
    pub operation: String,
    /// `triggerRef.config`, `Null` when absent.
    pub config: Value,
}

/// The trigger step of `definition` when it is a `Schedule` trigger.
pub fn schedule_trigger(definition: &Value) -> Option<ScheduleTrigger> {
    let steps = definition.get("steps")?.as_array()?;
    steps.iter().find_map(|step| {
        let call = step.get("call")?;
        let reference = call.get("triggerRef").filter(|r| r.is_object())?;
        if call.get("connectorRef")?.as_str()? != SCHEDULE_CONNECTOR {
            return None;
        }
        let operation = reference
            .get("refId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .or_else(|| reference.get("refName").and_then(Value::as_str))?;
        Some(ScheduleTrigger {
            step_id: step.get("stepId").and_then(Value::as_str).unwrap_or_default().to_owned(),
            operation: operation.to_owned(),
            config: reference.get("config").cloned().unwrap_or(Value::Null),
        })
    })
}

/// Arms the flow's schedule at its current version when the flow is enabled and has a
/// schedule trigger; disarms it otherwise.
pub async fn sync(db: &mut PgConnection, flow: &FlowRow) -> sqlx::Result<()> {
    let trigger = schedule_trigger(&flow.definition).filter(|_| flow.status == "enable");
    let Some(trigger) = trigger else {
        return schedule_store::disarm(db, flow.id).await;
    };
    let schedule = ArmSchedule {
        flow_id: flow.id,
        project_id: flow.project_id.clone(),
        flow_version: flow.version,
        spec: json!({"operation": trigger.operation, "config": trigger.config}),
    };
    schedule_store::arm(db, &schedule).await
}
