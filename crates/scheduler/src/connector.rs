//! The `Schedule` connector: the trigger step of a scheduled flow.
//!
//! Its operations are the schedule shapes (`repeat`, `daily`, `times`, `cron`); their settings
//! are the step's `triggerRef.config`, checked when the flow is saved. When a run starts, the
//! trigger turns the fire time the scheduler put in the run input into its outputs.

use chrono::{DateTime, Utc};
use connector_api::{async_trait, Connector, ConnectorError, Descriptor, Invocation, Operation};
use serde_json::{json, Value};
use workbench_engine::schedules::SCHEDULE_CONNECTOR;

use crate::spec::{self, ScheduleSpec, OP_CRON, OP_DAILY, OP_REPEAT, OP_TIMES};

/// The key of the run input that carries the fire time (UTC, RFC 3339).
pub const FIRE_TIME_KEY: &str = "fire_time";

/// Schedule triggers; see `docs/schedules.md` for the config keys.
#[derive(Debug)]
pub struct Schedule {
    descriptor: Descriptor,
}

impl Schedule {
    pub fn new() -> Self {
        let outputs = json!({"type": "object", "properties": {
            "trigger_time": {"type": "string"},
            "trigger_timestamp": {"type": "integer"},
            "offset_time": {"type": "string"},
            "offset_timestamp": {"type": "integer"},
            "timezone": {"type": "string"},
        }});
        let trigger = |id: &str, description: &str| Operation {
            id: id.to_owned(),
            name: id.to_owned(),
            description: description.to_owned(),
            input_schema: json!({}),
            output_schema: outputs.clone(),
            external: false,
        };
        let descriptor = Descriptor {
            id: SCHEDULE_CONNECTOR.into(),
            version: "1".into(),
            name: "Schedule".into(),
            description: "Starts the flow at planned times while it is enabled".into(),
            category: "trigger".into(),
            triggers: vec![
                trigger(OP_REPEAT, "Every period from a first run time"),
                trigger(OP_DAILY, "Every day at a time, with an optional offset"),
                trigger(OP_TIMES, "Every day at several times"),
                trigger(OP_CRON, "A cron expression (5 fields, or 6 with seconds) in a zone"),
            ],
            actions: Vec::new(),
        };
        Self { descriptor }
    }
}

impl Default for Schedule {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Connector for Schedule {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    fn check_config(&self, operation: &str, config: &Value) -> Result<(), String> {
        ScheduleSpec::parse(operation, config).map(drop).map_err(|e| e.0)
    }

    async fn invoke(&self, call: Invocation) -> Result<Value, ConnectorError> {
        let spec = ScheduleSpec::parse(&call.operation, &call.config)
            .map_err(|e| ConnectorError::InvalidInput(e.0))?;
        // A manual or test run of a scheduled flow has no fire time: it fires "now".
        let fire = call
            .input
            .get(FIRE_TIME_KEY)
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
        Ok(outputs(&spec, fire))
    }
}

/// The trigger outputs for one fire time (contract §5.4).
pub fn outputs(spec: &ScheduleSpec, fire: DateTime<Utc>) -> Value {
    let offset = spec::shifted(spec, fire);
    json!({
        "trigger_time": spec::format_local(spec, fire),
        "trigger_timestamp": fire.timestamp_millis(),
        "offset_time": spec::format_local(spec, offset),
        "offset_timestamp": offset.timestamp_millis(),
        "timezone": spec.zone.name(),
    })
}
