//! Submitting runs: R7 (run a flow) and R10 (the legacy webhook).
//!
//! A run is accepted once its row exists: the insert, the flow's run counter and the wake-up
//! notification commit together, and a worker picks the run up from the queue.

use chrono::Utc;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
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
    /// The batch this run was written in failed; the text is the database's.
    #[error("storing the run failed: {0}")]
    Write(String),
}

/// An accepted run.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub running_id: Uuid,
    pub flow_id: Uuid,
    pub flow_name: String,
}

/// Accepts runs. Concurrent submissions are handed to one writer task that stores whatever
/// has gathered in one transaction, so one commit carries many runs under load and a lone run
/// costs no more than before. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Submitter {
    db: PgPool,
    queue: mpsc::Sender<Pending>,
}

#[derive(Debug)]
struct Pending {
    run: NewRun,
    done: oneshot::Sender<Result<(), String>>,
}

/// The most runs one commit carries.
const MAX_BATCH: usize = 512;

impl Submitter {
    /// Starts the writer task; it ends when the last `Submitter` clone is dropped.
    pub fn start(db: PgPool) -> Submitter {
        let (queue, pending) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(write_batches(db.clone(), pending));
        Submitter { db, queue }
    }

    /// Queues a run of a flow of `project_id`. A disabled flow runs only in test mode.
    pub async fn submit(
        &self,
        project_id: &str,
        flow_id: Uuid,
        mode: RunMode,
        input: Value,
    ) -> Result<Submitted, SubmitError> {
        let flow = store::find_flow(&self.db, project_id, flow_id, false)
            .await?
            .ok_or(SubmitError::FlowNotFound)?;
        self.enqueue(flow, mode, input).await
    }

    /// Queues an automatic run of the flow of `project_id` whose webhook id is `webhook`.
    pub async fn submit_webhook(
        &self,
        project_id: &str,
        webhook: &str,
        input: Value,
    ) -> Result<Submitted, SubmitError> {
        let flow = store::find_flow_by_webhook(&self.db, webhook)
            .await?
            .filter(|f| f.project_id == project_id)
            .ok_or(SubmitError::FlowNotFound)?;
        self.enqueue(flow, RunMode::Auto, input).await
    }

    async fn enqueue(
        &self,
        flow: FlowRow,
        mode: RunMode,
        input: Value,
    ) -> Result<Submitted, SubmitError> {
        let run = new_run(flow, mode, input)?;
        let submitted = Submitted {
            running_id: run.id,
            flow_id: run.flow_id,
            flow_name: run.flow_name.clone(),
        };
        let (done, stored) = oneshot::channel();
        let closed = || SubmitError::Write("the run writer has stopped".into());
        self.queue.send(Pending { run, done }).await.map_err(|_| closed())?;
        stored.await.map_err(|_| closed())?.map_err(SubmitError::Write)?;
        Ok(submitted)
    }
}

fn new_run(flow: FlowRow, mode: RunMode, input: Value) -> Result<NewRun, SubmitError> {
    if mode != RunMode::Test && flow.status != "enable" {
        return Err(SubmitError::Disabled);
    }
    Ok(NewRun {
        id: Uuid::new_v4(),
        project_id: flow.project_id,
        flow_id: flow.id,
        flow_version: flow.version,
        flow_name: flow.name,
        run_model: mode.as_str().to_owned(),
        input,
        start_time: Utc::now(),
    })
}

async fn write_batches(db: PgPool, mut pending: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let runs: Vec<&NewRun> = batch.iter().map(|p| &p.run).collect();
        let result = async {
            let mut tx = db.begin().await?;
            store::insert_runs(&mut tx, &runs).await?;
            tx.commit().await
        }
        .await
        .map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::warn!(error = %e, runs = batch.len(), "storing submitted runs failed");
        }
        for p in batch.drain(..) {
            let _ = p.done.send(result.clone());
        }
    }
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
