//! Submitting runs: R7 (run a flow), R10 (the legacy webhook) and the HTTP trigger's hook.
//!
//! A run is accepted once its row exists: the insert, the flow's run counter and the wake-up
//! notification commit together, and a worker picks the run up from the queue.

use chrono::Utc;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::connectors::{HookSettings, HTTP_TRIGGER_CONNECTOR};
use crate::executor::RunMode;
use crate::store::{self, FlowRow, NewRun};

/// Why a run was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("flow not found")]
    FlowNotFound,
    #[error("the flow is disabled")]
    Disabled,
    /// The stored trigger settings do not parse (saved before a rule was added).
    #[error("the flow's HTTP trigger is misconfigured: {0}")]
    BadTrigger(String),
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
        // FIXME: one query per R7 request, returning the whole definition, before the batched
        // insert: in scenario 1 of docs/benchmarks.md it is 20,000 of the 47,000 transactions
        // for 20,000 runs. The per-process cache that `find_hook`'s FIXME describes would
        // serve this lookup too.
        let flow = store::find_flow(&self.db, project_id, flow_id, false)
            .await?
            .ok_or(SubmitError::FlowNotFound)?;
        let input = as_hook_request(&flow, input);
        self.enqueue(flow, mode, input, Uuid::new_v4()).await
    }

    /// Queues an automatic run of the flow of `project_id` whose webhook id is `webhook`.
    pub async fn submit_webhook(
        &self,
        project_id: &str,
        webhook: &str,
        input: Value,
    ) -> Result<Submitted, SubmitError> {
        if !is_webhook_id(webhook) {
            return Err(SubmitError::FlowNotFound);
        }
        let flow = store::find_flow_by_webhook(&self.db, webhook)
            .await?
            .filter(|f| f.project_id == project_id)
            .ok_or(SubmitError::FlowNotFound)?;
        let input = as_hook_request(&flow, input);
        self.enqueue(flow, RunMode::Auto, input, Uuid::new_v4()).await
    }

    /// The flow behind the hook `webhook`: unknown, or not started by an HTTP trigger, is
    /// `FlowNotFound`; disabled is `Disabled`.
    pub async fn find_hook(&self, webhook: &str) -> Result<Hook, SubmitError> {
        // FIXME: one query per request, returning the whole definition. A per-process cache of
        // (flow id, version, status, settings) by webhook, invalidated by a NOTIFY when a flow
        // is saved, enabled or disabled, would take it off the hot path.
        if !is_webhook_id(webhook) {
            return Err(SubmitError::FlowNotFound);
        }
        let flow = store::find_flow_by_webhook(&self.db, webhook)
            .await?
            .ok_or(SubmitError::FlowNotFound)?;
        let Some(trigger) = hook_trigger(&flow.definition) else {
            return Err(SubmitError::FlowNotFound);
        };
        if flow.status != "enable" {
            return Err(SubmitError::Disabled);
        }
        let config = trigger.get("config").unwrap_or(&Value::Null);
        let settings = HookSettings::from_config(config).map_err(SubmitError::BadTrigger)?;
        Ok(Hook { flow, settings })
    }

    /// Queues an automatic run of the hook's flow under the id `run_id`, which the caller chose
    /// so that it could start waiting for the run first.
    pub async fn submit_hook(
        &self,
        hook: Hook,
        run_id: Uuid,
        input: Value,
    ) -> Result<Submitted, SubmitError> {
        self.enqueue(hook.flow, RunMode::Auto, input, run_id).await
    }

    async fn enqueue(
        &self,
        flow: FlowRow,
        mode: RunMode,
        input: Value,
        run_id: Uuid,
    ) -> Result<Submitted, SubmitError> {
        let run = new_run(flow, mode, input, run_id)?;
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

/// An enabled flow served by the HTTP trigger, found by its webhook id.
#[derive(Debug, Clone)]
pub struct Hook {
    pub flow: FlowRow,
    pub settings: HookSettings,
}

/// The `triggerRef` of the definition's trigger step, when that is an HTTP trigger.
fn hook_trigger(definition: &Value) -> Option<&Value> {
    let steps = definition.get("steps")?.as_array()?;
    let call = steps.iter().map(|s| &s["call"]).find(|c| c["triggerRef"].is_object())?;
    (call["connectorRef"] == HTTP_TRIGGER_CONNECTOR).then(|| &call["triggerRef"])
}

/// Whether `text` can be a webhook id (the server assigns 32 hex digits); anything else names
/// no flow and is not worth a query.
fn is_webhook_id(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The input of a run started other than through the flow's hook (R7, R10). A flow whose
/// trigger is `HttpTrigger` expects the shape of an HTTP request, so the input becomes the body
/// of a JSON `POST` to the hook with no headers and no query; other flows get it unchanged.
fn as_hook_request(flow: &FlowRow, input: Value) -> Value {
    if hook_trigger(&flow.definition).is_none() {
        return input;
    }
    json!({
        "method": "POST",
        "path": crate::flows::hook_path(&flow.webhook),
        "headers": {},
        "query": {},
        "content_type": "application/json",
        "body": input,
    })
}

fn new_run(flow: FlowRow, mode: RunMode, input: Value, id: Uuid) -> Result<NewRun, SubmitError> {
    if mode != RunMode::Test && flow.status != "enable" {
        return Err(SubmitError::Disabled);
    }
    Ok(NewRun {
        id,
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
