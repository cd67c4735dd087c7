//! Submitting runs: R7 (run a flow), R10 (the legacy webhook) and the HTTP trigger's hook.
//!
//! A run is accepted once its row exists: the insert, the flow's run counter and the wake-up
//! notification commit together, and a worker picks the run up from the queue.
//!
//! A flow none of whose steps talks to the world outside the run (transforms, conditions,
//! loops, `Response`) has no effect before its records are stored, so the submitter executes
//! it in place and stores it finished, steps and all, in the same commit that accepts it: no
//! claim, no second commit, and the caller of a sync hook has its answer at once. A crash
//! before that commit leaves nothing, and the caller was not answered. Runs of other flows,
//! and an in-place run that overruns [`INLINE_BUDGET`], go to the queue.
//!
//! Flows are looked up through a per-process cache. It needs no invalidation: the insert
//! stores a run only if its flow is still at the cached version and enabled, and a run
//! refused that way is planned again from the database.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use futures::FutureExt;
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use uuid::Uuid;

use crate::completion::RunResult;
use crate::connectors::{HookSettings, HTTP_TRIGGER_CONNECTOR};
use crate::executor::{Engine, RunMode, RunRequest, RunStatus};
use crate::graphs::FlowGraphs;
use crate::journal::{Journal, JournalError, StepRecord};
use crate::model::FlowGraph;
use crate::queue::LocalWorkers;
use crate::store::{self, Acceptance, ClaimedRun, Executed, FlowRow, NewRun, RunEnd, RunJson};

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
    /// The flow changed since it was looked up; look it up again.
    #[error("the flow changed while the run was submitted")]
    Stale,
}

/// An accepted run.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub running_id: Uuid,
    pub flow_id: Uuid,
    pub flow_name: String,
    /// How the run ended, when it was executed in place before it was stored.
    pub ended: Option<RunResult>,
}

/// How long a run executed in place may take before it is handed to the queue instead.
pub const INLINE_BUDGET: Duration = Duration::from_millis(100);

/// How many times a submission is planned again after its flow changed under it.
const STALE_RETRIES: usize = 3;

/// Accepts runs. Concurrent submissions are handed to a few writer tasks, each storing whatever
/// has gathered in one statement, so one commit carries many runs under load and a lone run
/// costs no more than before. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Submitter {
    db: PgPool,
    queue: mpsc::Sender<Pending>,
    flows: Arc<FlowCache>,
    inline: Option<InPlace>,
    local: Option<LocalWorkers>,
}

#[derive(Debug)]
struct Pending {
    run: NewRun,
    how: How,
    /// Its JSON, serialized here rather than by the one writer (see [`RunJson`]).
    json: RunJson,
    /// Whether the run was stored (or why the batch failed), and its reserved slot back.
    done: oneshot::Sender<(Result<bool, String>, Option<OwnedSemaphorePermit>)>,
}

/// How a pending run is to be stored.
#[derive(Debug)]
enum How {
    Queued,
    /// Leased to this process's workers (their owner id and lease), with the slot reserved
    /// for it.
    Leased(OwnedSemaphorePermit, Uuid, Duration),
    Executed(Executed),
}

/// Executes runs of self-contained flows where they are started, for the submitter and the
/// scheduler. Cheap to clone.
#[derive(Clone)]
pub struct InPlace {
    engine: Arc<Engine>,
    graphs: Arc<FlowGraphs>,
}

impl std::fmt::Debug for InPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InPlace")
    }
}

/// The most runs one commit carries.
const MAX_BATCH: usize = 512;

/// The most bytes of run data (inputs, and the step records of runs executed in place) one
/// statement carries, however many runs have gathered: PostgreSQL refuses a statement with more
/// than 1 GB of parameters, and a refused statement would fail every run in it. A run larger
/// than this goes alone.
pub const MAX_BATCH_BYTES: usize = 256 * 1024 * 1024;

/// Batches written at once. One writer gathers the most per commit: on the development
/// machine a second one, writing while the first waits for its commit, made smaller batches
/// and cost more than it overlapped (docs/benchmarks.md, scenario 2).
const WRITERS: usize = 1;

/// Run-count slots the writers of all processes spread over (`flow_run_counts`): each writer
/// takes one at random, so the writers of replicas seldom wait for each other's commit on one
/// flow's count row.
const COUNT_SLOTS: i16 = 16;

impl Submitter {
    /// Starts the writer task; it ends when the last `Submitter` clone is dropped. Every run
    /// goes to the queue.
    pub fn start(db: PgPool) -> Submitter {
        let (queue, pending) = mpsc::channel(MAX_BATCH * 4);
        let pending = Arc::new(tokio::sync::Mutex::new(pending));
        for _ in 0..WRITERS {
            let slot = rand::Rng::gen_range(&mut rand::thread_rng(), 1..=COUNT_SLOTS);
            tokio::spawn(write_batches(WriterConnection::new(&db), slot, pending.clone()));
        }
        Submitter { db, queue, flows: Arc::default(), inline: None, local: None }
    }

    /// Executes runs of self-contained flows in place with `engine` (see the module text).
    pub fn executing(self, engine: Arc<Engine>, graphs: Arc<FlowGraphs>) -> Submitter {
        Submitter { inline: Some(InPlace::new(engine, graphs)), ..self }
    }

    /// Hands runs that are not executed in place to this process's workers while they have
    /// a free slot (see [`LocalWorkers`]); the others are queued.
    pub fn handing_to(self, local: LocalWorkers) -> Submitter {
        Submitter { local: Some(local), ..self }
    }

    /// Queues a run of a flow of `project_id`. A disabled flow runs only in test mode.
    pub async fn submit(
        &self,
        project_id: &str,
        flow_id: Uuid,
        mode: RunMode,
        input: Value,
    ) -> Result<Submitted, SubmitError> {
        self.submit_with(mode, input, |fresh| async move {
            match self.flows.by_id(project_id, flow_id).filter(|_| !fresh) {
                Some(flow) if flow.status == "enable" || mode == RunMode::Test => Ok(flow),
                _ => self.load(store::find_flow(&self.db, project_id, flow_id, false)).await,
            }
        })
        .await
    }

    /// Queues an automatic run of the flow of `project_id` whose webhook id is `webhook`.
    pub async fn submit_webhook(
        &self,
        project_id: &str,
        webhook: &str,
        input: Value,
    ) -> Result<Submitted, SubmitError> {
        self.submit_with(RunMode::Auto, input, |fresh| async move {
            let flow = self.by_webhook(webhook, fresh).await?;
            (flow.project_id == project_id).then_some(flow).ok_or(SubmitError::FlowNotFound)
        })
        .await
    }

    /// Plans a run from the flow `lookup` gives and queues it; while the flow turns out to have
    /// changed since it was cached, plans it again from the flow read afresh (`lookup(true)`).
    async fn submit_with<F, Found>(
        &self,
        mode: RunMode,
        input: Value,
        lookup: F,
    ) -> Result<Submitted, SubmitError>
    where
        F: Fn(bool) -> Found,
        Found: std::future::Future<Output = Result<Arc<FlowRow>, SubmitError>>,
    {
        for attempt in 0..=STALE_RETRIES {
            let flow = lookup(attempt > 0).await?;
            let input = as_hook_request(&flow, input.clone());
            match self.enqueue(&flow, mode, input, new_run_id()).await {
                Err(SubmitError::Stale) => self.flows.forget(flow.id),
                done => return done,
            }
        }
        Err(SubmitError::Stale)
    }

    /// The flow whose webhook id is `webhook`, enabled from the cache, else (or with `fresh`)
    /// as the database has it.
    async fn by_webhook(&self, webhook: &str, fresh: bool) -> Result<Arc<FlowRow>, SubmitError> {
        if !is_webhook_id(webhook) {
            return Err(SubmitError::FlowNotFound);
        }
        match self.flows.by_webhook(webhook).filter(|_| !fresh) {
            Some(flow) if flow.status == "enable" => Ok(flow),
            _ => self.load(store::find_flow_by_webhook(&self.db, webhook)).await,
        }
    }

    /// The flow behind the hook `webhook`: unknown, or not started by an HTTP trigger, is
    /// `FlowNotFound`; disabled is `Disabled`. With `fresh` the cache is not consulted (after
    /// [`SubmitError::Stale`]).
    pub async fn find_hook(&self, webhook: &str, fresh: bool) -> Result<Hook, SubmitError> {
        let flow = self.by_webhook(webhook, fresh).await?;
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
    /// so that it could start waiting for the run first. On [`SubmitError::Stale`] the caller
    /// finds the hook again (its settings may have changed) and resubmits.
    pub async fn submit_hook(
        &self,
        hook: &Hook,
        run_id: Uuid,
        input: Value,
    ) -> Result<Submitted, SubmitError> {
        let submitted = self.enqueue(&hook.flow, RunMode::Auto, input, run_id).await;
        if let Err(SubmitError::Stale) = submitted {
            self.flows.forget(hook.flow.id);
        }
        submitted
    }

    /// A flow read from the database, remembered for the next submission.
    async fn load(
        &self,
        found: impl std::future::Future<Output = sqlx::Result<Option<FlowRow>>>,
    ) -> Result<Arc<FlowRow>, SubmitError> {
        let flow = Arc::new(found.await?.ok_or(SubmitError::FlowNotFound)?);
        self.flows.remember(flow.clone());
        Ok(flow)
    }

    async fn enqueue(
        &self,
        flow: &FlowRow,
        mode: RunMode,
        input: Value,
        run_id: Uuid,
    ) -> Result<Submitted, SubmitError> {
        let run = new_run(flow, mode, input, run_id)?;
        let executed = match &self.inline {
            Some(inline) => inline.execute(&self.db, &run, mode).await,
            None => None,
        };
        let ended = executed.as_ref().map(|e| RunResult {
            status: if e.end.success { RunStatus::Success } else { RunStatus::Fail },
            message: e.end.message.clone(),
            response: e.end.response.clone(),
        });
        let submitted = Submitted {
            running_id: run.id,
            flow_id: run.flow_id,
            flow_name: run.flow_name.clone(),
            ended,
        };
        let json = RunJson::new(&run, executed.as_ref());
        let local = self.local.as_ref().filter(|_| executed.is_none());
        let (how, claimed) = match (executed, local.and_then(LocalWorkers::reserve)) {
            (Some(executed), _) => (How::Executed(executed), None),
            (None, Some(slot)) => {
                let local = local.expect("a slot comes from the local workers");
                (How::Leased(slot, local.owner(), local.lease()), Some(claimed(&run)))
            }
            (None, None) => (How::Queued, None),
        };
        let (done, stored) = oneshot::channel();
        let closed = || SubmitError::Write("the run writer has stopped".into());
        self.queue.send(Pending { run, how, json, done }).await.map_err(|_| closed())?;
        let (stored, slot) = stored.await.map_err(|_| closed())?;
        if !stored.map_err(SubmitError::Write)? {
            return Err(SubmitError::Stale);
        }
        if let (Some(local), Some(run), Some(slot)) = (local, claimed, slot) {
            if !local.hand_over(run, slot) {
                tracing::warn!("the workers have stopped; the run is resumed when its lease ends");
            }
        }
        Ok(submitted)
    }
}

impl InPlace {
    pub fn new(engine: Arc<Engine>, graphs: Arc<FlowGraphs>) -> InPlace {
        InPlace { engine, graphs }
    }

    /// Executes the run now if its flow is self-contained and it ends within
    /// [`INLINE_BUDGET`]; `None` leaves it to a worker.
    pub async fn execute(&self, db: &PgPool, run: &NewRun, mode: RunMode) -> Option<Executed> {
        let graph = self
            .graphs
            .get(db, &self.engine, &run.project_id, run.flow_id, run.flow_version)
            .await
            // A flow that cannot be loaded fails in a worker, which records why.
            .ok()?;
        self.execute_graph(graph, run, mode).await
    }

    /// The graphs of many flow versions at once (see [`FlowGraphs::get_many`]), for
    /// [`InPlace::execute_graph`].
    pub async fn graphs(
        &self,
        db: &PgPool,
        wanted: &[(&str, Uuid, i32)],
    ) -> HashMap<(Uuid, i32), Arc<FlowGraph>> {
        self.graphs.get_many(db, &self.engine, wanted).await
    }

    /// [`InPlace::execute`] with the run's flow graph at hand.
    pub async fn execute_graph(
        &self,
        graph: Arc<FlowGraph>,
        run: &NewRun,
        mode: RunMode,
    ) -> Option<Executed> {
        if !graph.is_self_contained() {
            return None;
        }
        let request = RunRequest {
            run_id: run.id,
            flow_id: run.flow_id,
            project_id: run.project_id.clone(),
            flow: graph,
            input: run.input.clone(),
            mode,
            completed: HashMap::new(),
        };
        // FIXME: the budget only cuts a run short where it waits (a retry's pause); a run that
        // loops for a long time without waiting holds the request until it ends, as it would
        // hold a worker. A step counter checked by the executor would bound it too.
        //
        // A panic in a connector queues the run (whose worker then records the failure)
        // rather than failing the caller. Caught here rather than in a task of its own: a
        // spawn and the wake-up across threads cost about as much as a short run.
        let execution = AssertUnwindSafe(self.engine.run(request, &NoCheckpoints)).catch_unwind();
        let Ok(Ok(outcome)) = tokio::time::timeout(INLINE_BUDGET, execution).await else {
            return None;
        };
        let end = RunEnd {
            run_id: run.id,
            success: outcome.status == RunStatus::Success,
            message: outcome.message,
            response: outcome.response,
        };
        Some(Executed { end, end_time: Utc::now(), records: outcome.pending })
    }
}

/// The journal of a run executed in place. A self-contained flow never checkpoints (only
/// external steps do), so a call here means the flow was misjudged: refuse, failing the step.
struct NoCheckpoints;

#[async_trait]
impl Journal for NoCheckpoints {
    async fn checkpoint(&self, _records: Vec<StepRecord>) -> Result<(), JournalError> {
        Err(JournalError::Write("a run executed in place cannot checkpoint".into()))
    }
}

/// Flows by id and by webhook id, as last read from the database.
#[derive(Debug, Default)]
struct FlowCache {
    flows: Mutex<CachedFlows>,
}

#[derive(Debug, Default)]
struct CachedFlows {
    by_id: HashMap<Uuid, Arc<FlowRow>>,
    by_webhook: HashMap<String, Uuid>,
}

/// Flows kept before the cache starts over.
const FLOW_CACHE_CAPACITY: usize = 4096;

impl FlowCache {
    fn by_id(&self, project_id: &str, flow_id: Uuid) -> Option<Arc<FlowRow>> {
        let flows = self.lock();
        flows.by_id.get(&flow_id).filter(|f| f.project_id == project_id).cloned()
    }

    fn by_webhook(&self, webhook: &str) -> Option<Arc<FlowRow>> {
        let flows = self.lock();
        flows.by_webhook.get(webhook).and_then(|id| flows.by_id.get(id)).cloned()
    }

    fn remember(&self, flow: Arc<FlowRow>) {
        let mut flows = self.lock();
        if flows.by_id.len() >= FLOW_CACHE_CAPACITY {
            *flows = CachedFlows::default();
        }
        flows.by_webhook.insert(flow.webhook.clone(), flow.id);
        flows.by_id.insert(flow.id, flow);
    }

    fn forget(&self, flow_id: Uuid) {
        let mut flows = self.lock();
        if let Some(flow) = flows.by_id.remove(&flow_id) {
            flows.by_webhook.remove(&flow.webhook);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CachedFlows> {
        self.flows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An enabled flow served by the HTTP trigger, found by its webhook id.
#[derive(Debug, Clone)]
pub struct Hook {
    pub flow: Arc<FlowRow>,
    pub settings: HookSettings,
}

/// The `triggerRef` of the definition's trigger step, when that is an HTTP trigger.
fn hook_trigger(definition: &Value) -> Option<&Value> {
    let steps = definition.get("steps")?.as_array()?;
    let call = steps.iter().map(|s| &s["call"]).find(|c| c["triggerRef"].is_object())?;
    (call["connectorRef"] == HTTP_TRIGGER_CONNECTOR).then(|| &call["triggerRef"])
}

/// A new run id: time-ordered (UUIDv7), so the run and step-record indexes keyed by it take
/// new entries at their right edge instead of on random pages.
pub fn new_run_id() -> Uuid {
    Uuid::now_v7()
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

fn new_run(flow: &FlowRow, mode: RunMode, input: Value, id: Uuid) -> Result<NewRun, SubmitError> {
    if mode != RunMode::Test && flow.status != "enable" {
        return Err(SubmitError::Disabled);
    }
    Ok(NewRun {
        id,
        project_id: flow.project_id.clone(),
        flow_id: flow.id,
        flow_version: flow.version,
        flow_name: flow.name.clone(),
        run_model: mode.as_str().to_owned(),
        input,
        start_time: Utc::now(),
    })
}

fn acceptance(how: &How) -> Acceptance<'_> {
    match how {
        How::Queued => Acceptance::Queued,
        How::Leased(_, owner, lease) => Acceptance::Leased(*owner, *lease),
        How::Executed(executed) => Acceptance::Executed(executed),
    }
}

/// The run as a worker that claimed it would see it.
fn claimed(run: &NewRun) -> ClaimedRun {
    ClaimedRun {
        id: run.id,
        project_id: run.project_id.clone(),
        flow_id: run.flow_id,
        flow_version: run.flow_version,
        run_model: run.run_model.clone(),
        input: Some(run.input.clone()),
        claims: 1,
    }
}

/// The connection a writer task keeps to itself (see [`write_batches`]): made when first
/// needed, and again after a failure dropped it.
///
/// PostgreSQL plans a writer's statement once on it (`plan_cache_mode=force_generic_plan`; by
/// default it plans it afresh for each batch, and the accepting statement's generic plan suits
/// any batch: one index probe into `flows` per run), which served about a third more sync hook
/// requests at c = 8 (docs/benchmarks.md, scenario 2).
pub(crate) struct WriterConnection {
    options: PgConnectOptions,
    connection: Option<PgConnection>,
}

impl WriterConnection {
    pub(crate) fn new(db: &PgPool) -> WriterConnection {
        let options = (*db.connect_options()).clone();
        let options = options.options([("plan_cache_mode", "force_generic_plan")]);
        WriterConnection { options, connection: None }
    }

    /// Runs `statements` on the connection, made if there is none. After any failure the
    /// connection is dropped and the next call connects afresh: it may have broken while idle
    /// (PostgreSQL restarted), and a transaction dropped on a plain connection is rolled back
    /// only when the connection is next used, keeping its rows locked until then.
    pub(crate) async fn run<T>(
        &mut self,
        statements: impl AsyncFnOnce(&mut PgConnection) -> sqlx::Result<T>,
    ) -> sqlx::Result<T> {
        if self.connection.is_none() {
            self.connection = Some(PgConnection::connect_with(&self.options).await?);
        }
        let db = self.connection.as_mut().expect("connected just above");
        let result = statements(db).await;
        if result.is_err() {
            self.connection = None;
        }
        result
    }
}

/// One writer: takes whatever has gathered (waiting for the first if nothing has) and stores
/// it in as few statements as [`MAX_BATCH_BYTES`] allows. The writers take turns at the queue.
///
/// A writer keeps one connection of its own rather than taking one from a pool for each
/// batch: the pool checks a connection with a round trip to PostgreSQL every time it is given
/// back, which cost the database about as much as a small batch's statement. A batch that
/// fails drops the connection, and the next batch connects afresh, so a connection broken
/// while idle (PostgreSQL restarted) fails the one batch that finds it broken.
async fn write_batches(
    mut connection: WriterConnection,
    slot: i16,
    pending: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while pending.lock().await.recv_many(&mut batch, MAX_BATCH).await > 0 {
        while !batch.is_empty() {
            let take = batch_len(batch.iter().map(|p| p.json.bytes()));
            let part: Vec<Pending> = batch.drain(..take).collect();
            let runs: Vec<_> = part.iter().map(|p| (&p.run, acceptance(&p.how), &p.json)).collect();
            let result = connection.run(async |db| store::accept_encoded(db, slot, &runs).await);
            let result = result.await.map_err(|e| {
                tracing::warn!(error = %e, runs = part.len(), "storing submitted runs failed");
                e.to_string()
            });
            for p in part {
                let stored = result.as_ref().map(|ids| ids.contains(&p.run.id));
                let slot = match p.how {
                    How::Leased(slot, ..) => Some(slot),
                    _ => None,
                };
                let _ = p.done.send((stored.map_err(Clone::clone), slot));
            }
        }
    }
}

/// How many of the runs, whose sizes are `bytes` (see [`RunJson::bytes`]), go into the next
/// statement: as many as fit in [`MAX_BATCH_BYTES`], and at least one.
pub fn batch_len(bytes: impl Iterator<Item = usize>) -> usize {
    let mut total = 0usize;
    let mut n = 0;
    for size in bytes {
        total = total.saturating_add(size);
        if n > 0 && total > MAX_BATCH_BYTES {
            break;
        }
        n += 1;
    }
    n
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

#[cfg(test)]
mod tests {
    use connector_api::{Connector, ConnectorError, Descriptor, Invocation, Operation};

    use super::*;
    use crate::{builtin_registry, storable, Limits, NoConnections};

    /// A self-contained connector that panics.
    struct Panics(Descriptor);

    #[async_trait]
    impl Connector for Panics {
        fn descriptor(&self) -> &Descriptor {
            &self.0
        }

        async fn invoke(&self, _call: Invocation) -> Result<Value, ConnectorError> {
            panic!("a connector bug");
        }
    }

    fn panics() -> Panics {
        let operation = Operation {
            id: "boom".into(),
            name: "boom".into(),
            description: String::new(),
            input_schema: json!({}),
            output_schema: json!({}),
            external: false,
        };
        Panics(Descriptor {
            id: "Panics".into(),
            version: "1".into(),
            name: "Panics".into(),
            description: String::new(),
            category: "test".into(),
            triggers: Vec::new(),
            actions: vec![operation],
        })
    }

    /// A manual trigger, then one step calling `connector`'s `operation`.
    fn two_steps(connector: &str, operation: &str) -> Value {
        json!([
            {"stepId": "t", "name": "t", "call": {"connectorRef": "ManualTrigger",
             "connectorVersion": "1", "triggerRef": {"refId": "manual", "type": "instant",
             "input": {}}}, "transmit": ["s"]},
            {"stepId": "s", "name": "s", "call": {"connectorRef": connector,
             "connectorVersion": "1", "actionRef": {"refId": operation, "refName": operation,
             "input": {"value": {"n": 1}}}}, "transmit": []}
        ])
    }

    #[tokio::test]
    async fn a_panicking_step_leaves_the_run_to_a_worker_and_others_run_in_place() {
        let mut registry = builtin_registry();
        registry.register(Arc::new(panics()));
        let engine = Arc::new(Engine::new(
            Arc::new(registry.clone()),
            Arc::new(NoConnections),
            Limits::default(),
        ));
        let in_place = InPlace::new(engine, Arc::default());
        let run = NewRun {
            id: new_run_id(),
            project_id: "p".into(),
            flow_id: Uuid::now_v7(),
            flow_version: 1,
            flow_name: "f".into(),
            run_model: "manual".into(),
            input: json!({}),
            start_time: Utc::now(),
        };
        let graph = |steps: Value| Arc::new(FlowGraph::parse(&steps, &registry).unwrap());

        let boom = graph(two_steps("Panics", "boom"));
        assert!(boom.is_self_contained());
        assert!(in_place.execute_graph(boom, &run, RunMode::Manual).await.is_none());

        let fine = graph(two_steps("DataTransform", "transform"));
        let done = in_place.execute_graph(fine, &run, RunMode::Manual).await.unwrap();
        assert!(done.end.success, "{:?}", done.end);
        assert_eq!(done.records.len(), 2);
    }

    #[test]
    fn a_batch_is_cut_where_its_bytes_pass_the_limit() {
        let mb = 1024 * 1024;
        assert_eq!(batch_len([1, 2, 3].into_iter()), 3);
        assert_eq!(batch_len(std::iter::repeat_n(23 * mb, 50)), MAX_BATCH_BYTES / (23 * mb));
        // A run larger than the limit goes alone, and is never left behind.
        assert_eq!(batch_len([MAX_BATCH_BYTES * 2, 1].into_iter()), 1);
        assert_eq!(batch_len([1, MAX_BATCH_BYTES].into_iter()), 1);
        assert_eq!(storable::json_len(&json!({"a": "\u{0}"})), r#"{"a":"\u0000"}"#.len());
    }
}
