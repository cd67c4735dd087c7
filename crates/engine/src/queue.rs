//! The run workers of one process: claim queued runs from PostgreSQL, execute them, record
//! the outcome.
//!
//! A run this process accepts while one of its slots is free is stored leased to it and handed
//! to that slot directly ([`LocalWorkers`]). Other runs wait in the queue: one dispatcher per
//! process claims them with `FOR UPDATE SKIP LOCKED` (so any number of processes can share the
//! queue), up to the number of free execution slots, and sleeps on `LISTEN` until a run is
//! queued; a slow poll only recovers runs whose worker died (their lease expired). A heartbeat
//! extends the leases of the runs being executed. A resumed run replays the step records its
//! previous worker made durable and continues after them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::task::AbortOnDropHandle;
use uuid::Uuid;

use crate::completion::{Completions, RunResult};
use crate::executor::{Engine, RunOutcome, RunRequest, RunStatus};
use crate::graphs::FlowGraphs;
use crate::journal::{Journal, JournalError, StepRecord};
use crate::runs::{batch_len, parse_mode, WriterConnection};
use crate::storable;
use crate::store::{self, ClaimedRun, RunEnd};

/// How the workers of a process behave.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Runs executed at once by this process.
    pub concurrency: usize,
    /// How long a claimed run stays ours without a heartbeat.
    pub lease: Duration,
    /// How often an idle dispatcher looks for runs whose lease expired.
    pub poll: Duration,
    /// How long a stopping process lets running runs finish before handing them back.
    pub grace: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 4,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(5),
            grace: Duration::from_secs(5),
        }
    }
}

/// The run workers of a process before they start: made first so that the submitter can be
/// given their [`LocalWorkers`].
pub struct Workers {
    local: LocalWorkers,
    handed: mpsc::UnboundedReceiver<(ClaimedRun, OwnedSemaphorePermit)>,
    config: WorkerConfig,
}

impl Workers {
    pub fn new(config: WorkerConfig) -> Workers {
        let (hand, handed) = mpsc::unbounded_channel();
        let local = LocalWorkers {
            owner: Uuid::new_v4(),
            lease: config.lease,
            slots: Arc::new(Semaphore::new(config.concurrency.max(1))),
            hand,
        };
        Workers { local, handed, config }
    }

    pub fn local(&self) -> LocalWorkers {
        self.local.clone()
    }
}

/// The workers of this process as the submitter sees them: a run it accepts while a slot is
/// free is stored already leased to them and handed over directly, without the queue's claim
/// commit and wake-up. The lease keeps such a run recoverable: if this process dies, another
/// claims it once the lease expires, as any claimed run.
#[derive(Clone, Debug)]
pub struct LocalWorkers {
    owner: Uuid,
    lease: Duration,
    slots: Arc<Semaphore>,
    hand: mpsc::UnboundedSender<(ClaimedRun, OwnedSemaphorePermit)>,
}

impl LocalWorkers {
    /// The lease owner runs handed over here are stored with.
    pub fn owner(&self) -> Uuid {
        self.owner
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// A free slot, held for a run about to be accepted; `None` when all are busy (the run
    /// is then queued for whichever worker frees first).
    pub fn reserve(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Hands a stored, leased run to its reserved slot. `false` once the workers have stopped;
    /// the run is then claimed elsewhere when its lease expires.
    pub fn hand_over(&self, run: ClaimedRun, slot: OwnedSemaphorePermit) -> bool {
        self.hand.send((run, slot)).is_ok()
    }
}

/// Starts the dispatcher; it returns once `stop` turns true and in-flight runs are settled.
/// The end of every run it records is handed to `completions`.
pub fn start(
    db: PgPool,
    engine: Arc<Engine>,
    graphs: Arc<FlowGraphs>,
    completions: Arc<Completions>,
    workers: Workers,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let Workers { local, handed, config } = workers;
    let dispatcher = Dispatcher {
        db,
        engine,
        completions,
        owner: local.owner,
        slots: local.slots,
        freed: Arc::new(Notify::new()),
        graphs,
        config,
    };
    tokio::spawn(dispatcher.run(handed, stop))
}

struct Dispatcher {
    db: PgPool,
    engine: Arc<Engine>,
    completions: Arc<Completions>,
    owner: Uuid,
    slots: Arc<Semaphore>,
    freed: Arc<Notify>,
    graphs: Arc<FlowGraphs>,
    config: WorkerConfig,
}

impl Dispatcher {
    async fn run(
        self,
        mut handed: mpsc::UnboundedReceiver<(ClaimedRun, OwnedSemaphorePermit)>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut listener = self.listen().await;
        let mut tasks = JoinSet::new();
        let heartbeat = tokio::spawn(heartbeat(self.db.clone(), self.owner, self.config.lease));
        let (done, completions) = mpsc::channel(COMPLETION_BATCH * 4);
        let completer = tokio::spawn(complete_batches(
            self.db.clone(),
            WriterConnection::new(&self.db),
            self.owner,
            self.completions.clone(),
            completions,
        ));
        let (checkpoint, checkpoints) = mpsc::channel(CHECKPOINT_BATCH * 4);
        let checkpointer = tokio::spawn(write_checkpoints(
            WriterConnection::new(&self.db),
            self.owner,
            checkpoints,
        ));
        let sinks = Sinks { done, checkpoint };
        tracing::info!(worker = %self.owner, concurrency = self.config.concurrency, "workers up");

        // Whether to look at the queue on the next turn, and whether it may hold runs this
        // process left there (a notification came, or the last look filled every free slot):
        // only then is a freed slot worth a look. Runs handed over in process need none.
        let (mut look, mut more) = (true, true);
        while !*stop.borrow() {
            if look && self.slots.available_permits() > 0 {
                // The slots are taken before the claim: the submitter may take free ones too.
                let slots: Vec<_> =
                    std::iter::from_fn(|| self.slots.clone().try_acquire_owned().ok()).collect();
                let (claimed, asked) = self.claim(slots.len()).await;
                // Every slot asked for filled, or the look failed (nothing asked): look again.
                more = claimed.len() == asked;
                for (run, permit) in claimed.into_iter().zip(slots) {
                    self.spawn(&mut tasks, &sinks, run, permit);
                }
            }
            while tasks.try_join_next().is_some() {}
            if more && self.slots.available_permits() > 0 {
                look = true;
                continue;
            }
            tokio::select! {
                _ = wait_notification(&mut listener, self.config.poll) => {
                    (look, more) = (true, true);
                }
                _ = self.freed.notified() => look = more,
                Some((run, permit)) = handed.recv() => {
                    self.spawn(&mut tasks, &sinks, run, permit);
                    while let Ok((run, permit)) = handed.try_recv() {
                        self.spawn(&mut tasks, &sinks, run, permit);
                    }
                    look = false;
                }
                _ = stop.changed() => {}
            }
        }
        // Runs handed over from now on stay leased to this process until the release below.
        handed.close();

        // Give running runs a moment, then hand the rest back to other workers at once.
        let drained = tokio::time::timeout(self.config.grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        drop(sinks);
        let _ = completer.await;
        let _ = checkpointer.await;
        heartbeat.abort();
        match store::release_leases(&self.db, self.owner).await {
            Ok(n) if n > 0 => tracing::info!(runs = n, "handed unfinished runs back to the queue"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not release run leases"),
        }
        tracing::info!(worker = %self.owner, "workers stopped");
    }

    /// Executes a run in the slot `permit` holds.
    fn spawn(
        &self,
        tasks: &mut JoinSet<()>,
        sinks: &Sinks,
        run: ClaimedRun,
        permit: OwnedSemaphorePermit,
    ) {
        let ctx = self.context(sinks.clone());
        let freed = self.freed.clone();
        tasks.spawn(async move {
            ctx.execute_guarded(run).await;
            drop(permit);
            freed.notify_one();
        });
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.db).await.ok()?;
        listener.listen(store::RUNS_CHANNEL).await.ok()?;
        Some(listener)
    }

    // FIXME: a run that finds no free local slot when it is accepted still costs a claim
    // commit of its own, and every run of a flow with an external step writes its `runs` row
    // at least twice non-HOT (insert, finish: `status` is in the partial index predicate).
    // Claims and completions under closed-loop clients carry about one run each; completions
    // that waited a moment for company would carry more.
    /// Claims runs for `free` slots; returns them and how many were asked for (none when the
    /// claim failed or no slot was free).
    async fn claim(&self, free: usize) -> (Vec<ClaimedRun>, usize) {
        if free == 0 {
            return (Vec::new(), 0);
        }
        let lease = self.config.lease.as_secs_f64();
        match store::claim_runs(&self.db, self.owner, lease, free as i64).await {
            Ok(runs) => (runs, free),
            Err(e) => {
                tracing::warn!(error = %e, "claiming runs failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                (Vec::new(), 0)
            }
        }
    }

    fn context(&self, sinks: Sinks) -> RunContext {
        RunContext {
            db: self.db.clone(),
            engine: self.engine.clone(),
            graphs: self.graphs.clone(),
            sinks,
        }
    }
}

/// Waits for a queued-run notification, or `poll` at most. Without a listener (it could not
/// connect) this is a plain poll.
async fn wait_notification(listener: &mut Option<PgListener>, poll: Duration) {
    let Some(l) = listener else {
        tokio::time::sleep(poll).await;
        return;
    };
    match tokio::time::timeout(poll, l.recv()).await {
        Ok(Ok(_)) | Err(_) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "run notifications interrupted");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

async fn heartbeat(db: PgPool, owner: Uuid, lease: Duration) {
    let mut tick = tokio::time::interval(lease / 3);
    loop {
        tick.tick().await;
        if let Err(e) = store::renew_leases(&db, owner, lease.as_secs_f64()).await {
            tracing::warn!(error = %e, "renewing run leases failed");
        }
    }
}

/// Where the workers' writes go: the batches of run ends and of checkpoints.
#[derive(Clone)]
struct Sinks {
    done: mpsc::Sender<Completion>,
    checkpoint: mpsc::Sender<Checkpoint>,
}

#[derive(Clone)]
struct RunContext {
    db: PgPool,
    engine: Arc<Engine>,
    graphs: Arc<FlowGraphs>,
    sinks: Sinks,
}

impl RunContext {
    /// Executes a run; a panic inside it fails the run instead of leaving it leased forever.
    async fn execute_guarded(&self, run: ClaimedRun) {
        let id = run.id;
        let this = self.clone();
        // Aborting this task (the grace period at shutdown ran out) must stop the run too:
        // left running detached, it would hold the writers' channels open and the process
        // would wait for it to end before exiting.
        let task = AbortOnDropHandle::new(tokio::spawn(async move { this.execute(run).await }));
        if let Err(e) = task.await {
            if e.is_cancelled() {
                return;
            }
            tracing::error!(run = %id, "run execution panicked");
            let outcome = RunOutcome {
                status: RunStatus::Fail,
                message: Some("internal error".to_owned()),
                pending: Vec::new(),
                response: None,
            };
            self.finish(id, outcome).await;
        }
    }

    #[tracing::instrument(skip_all, fields(run = %run.id, flow = %run.flow_id))]
    async fn execute(&self, run: ClaimedRun) {
        let graph = match self
            .graphs
            .get(&self.db, &self.engine, &run.project_id, run.flow_id, run.flow_version)
            .await
        {
            Ok(graph) => graph,
            Err(message) => {
                let outcome = RunOutcome {
                    status: RunStatus::Fail,
                    message: Some(message),
                    pending: Vec::new(),
                    response: None,
                };
                self.finish(run.id, outcome).await;
                return;
            }
        };
        let completed = if run.claims > 1 {
            match store::load_steps(&self.db, run.id).await {
                Ok(records) => records.into_iter().map(|r| (r.step_key.clone(), r)).collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "loading the checkpoint failed; retrying later");
                    return;
                }
            }
        } else {
            HashMap::new()
        };
        if !completed.is_empty() {
            tracing::info!(steps = completed.len(), "resuming run after its worker stopped");
        }
        let request = RunRequest {
            run_id: run.id,
            flow_id: run.flow_id,
            project_id: run.project_id,
            flow: graph,
            input: run.input.unwrap_or(Value::Null),
            mode: parse_mode(&run.run_model).unwrap_or(crate::executor::RunMode::Manual),
            completed,
        };
        let journal = PgJournal { checkpoints: self.sinks.checkpoint.clone(), run_id: run.id };
        let outcome = self.engine.run(request, &journal).await;
        self.finish(run.id, outcome).await;
    }

    /// Hands the run's end to the completer, which commits it with other runs' ends.
    async fn finish(&self, run_id: Uuid, outcome: RunOutcome) {
        let RunOutcome { status, message, pending: records, response } = outcome;
        let end = RunEnd { run_id, success: status == RunStatus::Success, message, response };
        if self.sinks.done.send(Completion { end, records }).await.is_err() {
            tracing::warn!("the completer has stopped; the run will be resumed elsewhere");
        }
    }
}

/// A finished run waiting to be recorded.
struct Completion {
    end: RunEnd,
    records: Vec<StepRecord>,
}

/// The most run ends one commit carries.
const COMPLETION_BATCH: usize = 256;

/// Records finished runs in batches: their last step records and final status, for the runs
/// this worker still holds, in one transaction. A batch that cannot be written is retried, then
/// handed back to the queue so another claim resumes those runs from their checkpoints. A batch
/// that PostgreSQL refuses for its data is split, so one run's record never holds the others
/// back; that run is recorded as failed without its step records. Callers of this process
/// waiting for a recorded run are woken.
async fn complete_batches(
    db: PgPool,
    mut writer: WriterConnection,
    owner: Uuid,
    waiters: Arc<Completions>,
    mut completions: mpsc::Receiver<Completion>,
) {
    let mut batch = Vec::with_capacity(COMPLETION_BATCH);
    while completions.recv_many(&mut batch, COMPLETION_BATCH).await > 0 {
        match record_retrying(&mut writer, owner, waiters.process(), &batch).await {
            Ok(recorded) => wake(&waiters, &mut batch, &recorded),
            Err(e) if is_data_error(&e) => {
                tracing::warn!(error = %e, runs = batch.len(), "recording runs one by one");
                for c in &mut batch {
                    record_alone(&db, &mut writer, owner, &waiters, c).await;
                }
            }
            Err(e) => give_back(&db, owner, &batch, &e).await,
        }
        batch.clear();
    }
}

/// Records one run; when PostgreSQL refuses its data, records it as failed without its steps.
async fn record_alone(
    db: &PgPool,
    writer: &mut WriterConnection,
    owner: Uuid,
    waiters: &Completions,
    c: &mut Completion,
) {
    let one = std::slice::from_mut(c);
    match record_retrying(writer, owner, waiters.process(), one).await {
        Ok(recorded) => return wake(waiters, one, &recorded),
        Err(e) if is_data_error(&e) => {
            let run = one[0].end.run_id;
            tracing::error!(%run, error = %e, "run record refused; failing the run");
        }
        Err(e) => return give_back(db, owner, one, &e).await,
    }
    let refused = &mut one[0];
    refused.records.clear();
    refused.end.success = false;
    refused.end.response = None;
    refused.end.message =
        Some("the run's step records could not be stored: PostgreSQL refused their data".into());
    match record_retrying(writer, owner, waiters.process(), one).await {
        Ok(recorded) => wake(waiters, one, &recorded),
        Err(e) => give_back(db, owner, one, &e).await,
    }
}

/// [`record_batch`], retried with backoff while the failure may pass (not for refused data).
async fn record_retrying(
    writer: &mut WriterConnection,
    owner: Uuid,
    process: Uuid,
    batch: &[Completion],
) -> sqlx::Result<HashSet<Uuid>> {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        // A failed batch's connection goes (`WriterConnection::run`), and its aborted
        // transaction with it: it would keep the runs locked against `give_back`.
        match writer.run(async |db| record_batch(db, owner, process, batch).await).await {
            Ok(recorded) => return Ok(recorded),
            Err(e) if attempt < 5 && !is_data_error(&e) => {
                tracing::warn!(error = %e, attempt, "recording finished runs failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Hands runs whose end could not be recorded back to the queue, to be resumed elsewhere.
async fn give_back(db: &PgPool, owner: Uuid, batch: &[Completion], error: &sqlx::Error) {
    tracing::error!(error = %error, runs = batch.len(), "recording finished runs failed");
    let ids: Vec<Uuid> = batch.iter().map(|c| c.end.run_id).collect();
    let _ = store::release_runs(db, owner, &ids).await;
}

/// Whether PostgreSQL refused the values themselves (SQLSTATE class 22), which no retry fixes.
fn is_data_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Encode(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| c.starts_with("22")),
        _ => false,
    }
}

/// Hands the ends of the recorded runs of `batch` to callers waiting for them.
fn wake(waiters: &Completions, batch: &mut [Completion], recorded: &HashSet<Uuid>) {
    for c in batch.iter_mut().filter(|c| recorded.contains(&c.end.run_id)) {
        let run_id = c.end.run_id;
        if !waiters.is_waiting(run_id) {
            continue;
        }
        let status = if c.end.success { RunStatus::Success } else { RunStatus::Fail };
        let result =
            RunResult { status, message: c.end.message.take(), response: c.end.response.take() };
        waiters.complete(run_id, result);
    }
}

/// Records a batch; returns the ids of the runs this worker still held, which were recorded.
async fn record_batch(
    db: &mut PgConnection,
    owner: Uuid,
    process: Uuid,
    batch: &[Completion],
) -> sqlx::Result<HashSet<Uuid>> {
    let ids: Vec<Uuid> = batch.iter().map(|c| c.end.run_id).collect();
    let mut tx = sqlx::Connection::begin(db).await?;
    let owned: HashSet<Uuid> =
        store::lock_owned_runs(&mut *tx, &ids, owner).await?.into_iter().collect();
    if owned.len() < batch.len() {
        tracing::warn!(lost = batch.len() - owned.len(), "runs taken over by another worker");
    }
    let mine = || batch.iter().filter(|c| owned.contains(&c.end.run_id));
    let rows: Vec<(Uuid, &StepRecord)> =
        mine().flat_map(|c| c.records.iter().map(move |r| (c.end.run_id, r))).collect();
    store::insert_step_rows(&mut *tx, &rows).await?;
    let ends: Vec<RunEnd> = mine().map(|c| c.end.clone()).collect();
    store::finish_runs(&mut *tx, owner, &ends).await?;
    let recorded: Vec<Uuid> = ends.iter().map(|e| e.run_id).collect();
    store::announce_ends(&mut *tx, &recorded, process).await?;
    tx.commit().await?;
    Ok(owned)
}

/// Checkpoints one run, through the process's checkpoint writer.
struct PgJournal {
    checkpoints: mpsc::Sender<Checkpoint>,
    run_id: Uuid,
}

#[async_trait]
impl Journal for PgJournal {
    async fn checkpoint(&self, records: Vec<StepRecord>) -> Result<(), JournalError> {
        let stopped = || JournalError::Write("the checkpoint writer has stopped".into());
        let (done, written) = oneshot::channel();
        let bytes = storable::records_len(&records);
        let checkpoint = Checkpoint { run_id: self.run_id, records, bytes, done };
        self.checkpoints.send(checkpoint).await.map_err(|_| stopped())?;
        match written.await.map_err(|_| stopped())? {
            Ok(true) => Ok(()),
            Ok(false) => Err(JournalError::LeaseLost),
            Err(e) => Err(JournalError::Write(e)),
        }
    }
}

/// A run's checkpoint waiting to be written, and who waits for it: whether this worker still
/// held the run (its records were stored), or why the write failed.
struct Checkpoint {
    run_id: Uuid,
    records: Vec<StepRecord>,
    /// The JSON text of the records' inputs and outputs, in bytes.
    bytes: usize,
    done: oneshot::Sender<Result<bool, String>>,
}

/// The most checkpoints one commit carries.
const CHECKPOINT_BATCH: usize = 256;

/// Writes the checkpoints of this process's runs in batches: whatever gathered while the last
/// batch was written goes in one statement and one commit (`store::checkpoint_runs`), so the
/// runs of a flow with external steps, which checkpoint around each of them, share commits as
/// accepted runs do. The writer has a connection of its own, for the reasons the accepting
/// writer has one (`runs::write_batches`). A batch PostgreSQL refuses for its data is written
/// again one run at a time, so one run's record does not fail the others' checkpoints.
async fn write_checkpoints(
    mut writer: WriterConnection,
    owner: Uuid,
    mut pending: mpsc::Receiver<Checkpoint>,
) {
    let mut gathered = Vec::with_capacity(CHECKPOINT_BATCH);
    while pending.recv_many(&mut gathered, CHECKPOINT_BATCH).await > 0 {
        // As many as fit in one statement's parameters (see `runs::MAX_BATCH_BYTES`).
        while !gathered.is_empty() {
            let take = batch_len(gathered.iter().map(|c| c.bytes));
            write_checkpoint_batch(&mut writer, owner, gathered.drain(..take).collect()).await;
        }
    }
}

/// Writes a batch of checkpoints and tells each waiting run how it went.
async fn write_checkpoint_batch(
    writer: &mut WriterConnection,
    owner: Uuid,
    batch: Vec<Checkpoint>,
) {
    let runs: Vec<_> = batch.iter().map(|c| (c.run_id, c.records.as_slice())).collect();
    let result = write_checkpoint_statement(writer, owner, &runs).await;
    match result {
        Err(e) if is_data_error(&e) && batch.len() > 1 => {
            for c in batch {
                let one = [(c.run_id, c.records.as_slice())];
                let result = write_checkpoint_statement(writer, owner, &one)
                    .await
                    .map(|held| held.contains(&c.run_id))
                    .map_err(|e| e.to_string());
                let _ = c.done.send(result);
            }
        }
        result => {
            let result = result.map_err(|e| e.to_string());
            for c in batch {
                let held = result.as_ref().map(|held| held.contains(&c.run_id));
                let _ = c.done.send(held.map_err(Clone::clone));
            }
        }
    }
}

/// One statement of [`write_checkpoints`]. A failure other than refused data is tried once
/// more, on a new connection (`WriterConnection::run`): the old one may have broken while idle,
/// and a failed checkpoint fails its runs. Writing again is safe: only held runs are written,
/// and records already stored are kept.
async fn write_checkpoint_statement(
    writer: &mut WriterConnection,
    owner: Uuid,
    runs: &[(Uuid, &[StepRecord])],
) -> sqlx::Result<HashSet<Uuid>> {
    match writer.run(async |db| store::checkpoint_runs(db, owner, runs).await).await {
        Err(e) if !is_data_error(&e) => {
            tracing::warn!(error = %e, runs = runs.len(), "writing checkpoints failed; retrying");
            writer.run(async |db| store::checkpoint_runs(db, owner, runs).await).await
        }
        result => result,
    }
}

/// Deletes finished runs older than `retention`, at start and then hourly, until `stop`.
pub async fn prune_history(db: PgPool, retention: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let Ok(age) = chrono::TimeDelta::from_std(retention) else { return };
        let before = chrono::Utc::now() - age;
        loop {
            match store::prune_runs(&db, before).await {
                Ok(n) if n > 0 => tracing::info!(runs = n, "pruned old run history"),
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "pruning run history failed");
                    break;
                }
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}
