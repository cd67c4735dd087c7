//! Submitting runs: R7 (run a flow) and R10 (the legacy webhook).
//!
//! A run is accepted once its row exists: the insert, the flow's run counter and the wake-up
//! notification commit together, and a worker picks the run up from the queue.

use chrono::Utc;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::executor::RunMode;
use crate::store::{self, FlowRow, NewRun};

/// Why a run was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("flow not found")]
    FlowNotFound,
    #[error("the flow is disabled")]
    Disabled,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// An accepted run.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub running_id: Uuid,
    pub flow_id: Uuid,
    pub flow_name: String,
}

/// Queues a run of a flow of `project_id`. A disabled flow runs only in test mode.
pub async fn submit(
    db: &PgPool,
    project_id: &str,
    flow_id: Uuid,
    mode: RunMode,
    input: Value,
) -> Result<Submitted, SubmitError> {
    let flow =
        store::find_flow(db, project_id, flow_id, false).await?.ok_or(SubmitError::FlowNotFound)?;
    enqueue(db, flow, mode, input).await
}

/// Queues an automatic run of the flow of `project_id` whose webhook id is `webhook`.
pub async fn submit_webhook(
    db: &PgPool,
    project_id: &str,
    webhook: &str,
    input: Value,
) -> Result<Submitted, SubmitError> {
    let flow = store::find_flow_by_webhook(db, webhook)
        .await?
        .filter(|f| f.project_id == project_id)
        .ok_or(SubmitError::FlowNotFound)?;
    enqueue(db, flow, RunMode::Auto, input).await
}

async fn enqueue(
    db: &PgPool,
    flow: FlowRow,
    mode: RunMode,
    input: Value,
) -> Result<Submitted, SubmitError> {
    if mode != RunMode::Test && flow.status != "enable" {
        return Err(SubmitError::Disabled);
    }
    let run = NewRun {
        id: Uuid::new_v4(),
        project_id: flow.project_id,
        flow_id: flow.id,
        flow_version: flow.version,
        flow_name: flow.name,
        run_model: mode.as_str().to_owned(),
        input,
        start_time: Utc::now(),
    };
    // FIXME: each accepted run is its own commit, so acceptance is bounded by the commit rate.
    // Handing submissions to a writer task that inserts whatever has gathered in one statement
    // would let one commit carry many runs.
    let mut tx = db.begin().await?;
    store::insert_run(&mut tx, &run).await?;
    tx.commit().await?;
    Ok(Submitted { running_id: run.id, flow_id: run.flow_id, flow_name: run.flow_name })
}

/// Parses `run_mode`.
pub fn parse_mode(text: &str) -> Option<RunMode> {
    match text {
        "manual" => Some(RunMode::Manual),
        "auto" => Some(RunMode::Auto),
        "test" => Some(RunMode::Test),
        _ => None,
    }
}
