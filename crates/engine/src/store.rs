//! SQL for flows, their versions, runs and step records.
//!
//! Runtime-checked `sqlx::query` calls rather than compile-time macros, so the workspace builds
//! without a database; the integration tests execute every statement here. Filters that are
//! optional are written as `($n IS NULL OR ...)` so each statement stays one fixed text that
//! PostgreSQL can prepare once.
//!
//! The statements that write runs (queued, leased, accepted finished, claimed, checkpointed,
//! finished, pruned) stay side by side here: they share column lists, the step-record arrays
//! and the count slots. The JSON they bind is built in `run_json`; the flow and version
//! statements are in `flows`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::completion::{RunResult, RUN_DONE_CHANNEL};
use crate::executor::RunStatus;
use crate::journal::{StepRecord, StepStatus};
pub use crate::run_json::RunJson;
use crate::storable;

mod flows;
pub use flows::*;

/// The channel that wakes workers when runs are queued.
pub const RUNS_CHANNEL: &str = "workbench_runs";

/// A run to insert into the queue.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub id: Uuid,
    pub project_id: String,
    pub flow_id: Uuid,
    pub flow_version: i32,
    pub flow_name: String,
    pub run_model: String,
    pub input: Value,
    pub start_time: DateTime<Utc>,
}

/// The run-count slot of writers that are not a submitter's (the scheduler, pruning).
pub const SHARED_SLOT: i16 = 0;

/// An `INSERT` adding the runs of `source` (columns `id`, `flow_id`, `start_time`) to their
/// flows' counts in `slot` (see the `flow_run_counts` migration): each flow's number of new
/// runs, and its newest run if newer than the slot's.
fn count_runs(slot: i16, source: &str) -> String {
    format!(
        r#"
        INSERT INTO flow_run_counts AS c (flow_id, slot, runs, last_run_id, last_run_at)
        SELECT DISTINCT ON (flow_id) flow_id, {slot}, count(*) OVER (PARTITION BY flow_id),
               id, start_time
        FROM {source} ORDER BY flow_id, start_time DESC, id DESC
        ON CONFLICT (flow_id, slot) DO UPDATE
        SET runs = c.runs + excluded.runs,
            last_run_id = CASE WHEN c.last_run_at IS NULL
                                 OR (excluded.last_run_at, excluded.last_run_id)
                                    > (c.last_run_at, c.last_run_id)
                               THEN excluded.last_run_id ELSE c.last_run_id END,
            last_run_at = greatest(c.last_run_at, excluded.last_run_at)
        "#
    )
}

/// A run its accepting process executed in full before storing it (see `runs`).
#[derive(Debug, Clone)]
pub struct Executed {
    pub end: RunEnd,
    pub end_time: DateTime<Utc>,
    pub records: Vec<StepRecord>,
}

/// How an accepted run is stored.
#[derive(Debug, Clone, Copy)]
pub enum Acceptance<'a> {
    /// Queued for any worker.
    Queued,
    /// Already leased to a worker (`lease_owner`) for this long, which the caller hands it to.
    Leased(Uuid, Duration),
    /// Finished, with its step records.
    Executed(&'a Executed),
}

/// A run with how it is stored and its JSON as text.
pub type Accepting<'a> = (&'a NewRun, Acceptance<'a>, &'a RunJson);

/// Stores runs as each [`Acceptance`] says; counts them on their flows in `slot`; wakes the
/// workers if any was queued. A run is stored only while its flow is still in its project at
/// the version it was planned with, and enabled unless it is a test run, so a caller that
/// planned it from a cached flow learns that the flow changed. Returns the ids stored. Without
/// queued runs, and without step records too large for a run's row ([`INLINE_RECORDS_MAX`]),
/// this is one statement, and so one commit, for the whole batch.
pub async fn accept_runs(
    db: &PgPool,
    slot: i16,
    runs: &[(&NewRun, Acceptance<'_>)],
) -> sqlx::Result<HashSet<Uuid>> {
    let json: Vec<RunJson> =
        runs.iter().map(|(run, how)| RunJson::new(run, how.executed())).collect();
    let runs: Vec<Accepting<'_>> =
        runs.iter().zip(&json).map(|((run, how), json)| (*run, *how, json)).collect();
    accept_encoded(&mut *db.acquire().await?, slot, &runs).await
}

/// [`accept_runs`] on the caller's connection, for runs whose JSON it serialized already.
pub async fn accept_encoded(
    db: &mut PgConnection,
    slot: i16,
    runs: &[Accepting<'_>],
) -> sqlx::Result<HashSet<Uuid>> {
    let one_statement = runs.iter().all(|(_, how, json)| match how {
        Acceptance::Queued => false,
        Acceptance::Executed(_) => json.steps.is_some(),
        Acceptance::Leased(..) => true,
    });
    if one_statement {
        return accept_statement(db, slot, runs).await;
    }
    let mut tx = sqlx::Connection::begin(db).await?;
    let stored = accept_encoded_in(&mut tx, slot, runs).await?;
    tx.commit().await?;
    Ok(stored)
}

/// The most bytes of JSON text a finished run's step records may have to be stored in its
/// row. PostgreSQL caps a `json` value, like any field, at 1 GB, and the whole statement's
/// parameters too; far below that, a run this large is better read record by record. Larger
/// records become `run_steps` rows, one per record, which no cap reaches.
pub const INLINE_RECORDS_MAX: usize = 32 * 1024 * 1024;

impl Acceptance<'_> {
    /// How the run ended, when it was executed in place.
    pub fn executed(&self) -> Option<&Executed> {
        match self {
            Acceptance::Executed(done) => Some(done),
            _ => None,
        }
    }
}

/// [`accept_encoded`] in the caller's transaction.
pub async fn accept_encoded_in(
    db: &mut PgConnection,
    slot: i16,
    runs: &[Accepting<'_>],
) -> sqlx::Result<HashSet<Uuid>> {
    let stored = accept_statement(&mut *db, slot, runs).await?;
    let rows: Vec<(Uuid, &StepRecord)> = runs
        .iter()
        .filter(|(run, _, json)| json.steps.is_none() && stored.contains(&run.id))
        .flat_map(|(run, how, _)| match how {
            Acceptance::Executed(done) => done.records.iter().map(|r| (run.id, r)).collect(),
            _ => Vec::new(),
        })
        .collect();
    insert_step_rows(&mut *db, &rows).await?;
    if runs.iter().any(|(_, how, _)| matches!(how, Acceptance::Queued)) {
        sqlx::query("SELECT pg_notify($1, '')").bind(RUNS_CHANNEL).execute(db).await?;
    }
    Ok(stored)
}

/// The statement of [`accept_runs`]: stores the runs, their counts and the step records of
/// the finished runs that fit in their rows.
async fn accept_statement<'e>(
    db: impl PgExecutor<'e>,
    slot: i16,
    runs: &[Accepting<'_>],
) -> sqlx::Result<HashSet<Uuid>> {
    if runs.is_empty() {
        return Ok(HashSet::new());
    }
    let n = runs.len();
    let mut ids = Vec::with_capacity(n);
    let mut projects = Vec::with_capacity(n);
    let mut flows = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut models = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut inputs = Vec::with_capacity(n);
    let mut messages = Vec::with_capacity(n);
    let mut responses = Vec::with_capacity(n);
    let mut starts = Vec::with_capacity(n);
    let mut ends = Vec::with_capacity(n);
    let mut owners = Vec::with_capacity(n);
    let mut leases = Vec::with_capacity(n);
    let mut steps = Vec::with_capacity(n);
    for (run, how, json) in runs {
        ids.push(run.id);
        projects.push(run.project_id.as_str());
        flows.push(run.flow_id);
        versions.push(run.flow_version);
        names.push(run.flow_name.as_str());
        models.push(run.run_model.as_str());
        inputs.push(json.input.as_str());
        starts.push(run.start_time);
        let (status, owner, lease) = match how {
            Acceptance::Queued => ("queued", None, 0.0),
            Acceptance::Leased(owner, lease) => ("running", Some(*owner), lease.as_secs_f64()),
            Acceptance::Executed(done) => {
                (if done.end.success { "success" } else { "fail" }, None, 0.0)
            }
        };
        statuses.push(status);
        owners.push(owner);
        leases.push(lease);
        let done = how.executed();
        messages.push(done.and_then(|d| d.end.message.as_deref()).map(storable::text));
        responses.push(json.response.as_deref());
        ends.push(done.map(|d| d.end_time));
        steps.push(json.steps.as_deref());
    }
    let messages: Vec<Option<&str>> = messages.iter().map(|m| m.as_deref()).collect();
    let sql = format!(
        r#"
        WITH r AS (
            SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::int[], $5::text[],
                                 $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                                 $11::timestamptz[], $12::timestamptz[], $13::uuid[],
                                 $14::float8[], $15::text[])
                AS r(id, project_id, flow_id, flow_version, flow_name, run_model, status, input,
                     message, response, start_time, end_time, lease_owner, lease_secs, steps)
        ), stored AS (
            INSERT INTO runs (id, project_id, flow_id, flow_version, flow_name, run_model,
                              status, input, message, response, start_time, end_time,
                              lease_owner, lease_until, claims, steps)
            SELECT r.id, r.project_id, r.flow_id, r.flow_version, r.flow_name, r.run_model,
                   r.status, r.input::json, r.message, r.response::json, r.start_time,
                   r.end_time, r.lease_owner,
                   CASE WHEN r.lease_owner IS NOT NULL
                        THEN now() + make_interval(secs => r.lease_secs) END,
                   CASE WHEN r.lease_owner IS NOT NULL THEN 1 ELSE 0 END, r.steps::json
            FROM r
            JOIN flows f ON f.id = r.flow_id AND f.project_id = r.project_id
                        AND f.version = r.flow_version
            WHERE r.run_model = 'test' OR f.status = 'enable'
            RETURNING id, flow_id, start_time
        ), counted AS (
            {}
        )
        SELECT id FROM stored
        "#,
        count_runs(slot, "stored"),
    );
    let query = sqlx::query(&sql)
        .bind(&ids)
        .bind(&projects)
        .bind(&flows)
        .bind(&versions)
        .bind(&names)
        .bind(&models)
        .bind(&statuses)
        .bind(&inputs)
        .bind(&messages)
        .bind(&responses)
        .bind(&starts)
        .bind(&ends)
        .bind(&owners)
        .bind(&leases)
        .bind(&steps);
    let rows = query.fetch_all(db).await?;
    rows.iter().map(|row| sqlx::Row::try_get(row, 0)).collect()
}

/// A run claimed by a worker.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedRun {
    pub id: Uuid,
    pub project_id: String,
    pub flow_id: Uuid,
    pub flow_version: i32,
    pub run_model: String,
    pub input: Option<Value>,
    /// How many times the run has been claimed, this claim included.
    pub claims: i32,
}

/// Claims up to `limit` runs: queued ones, and running ones whose worker's lease expired.
pub async fn claim_runs(
    db: impl PgExecutor<'_>,
    owner: Uuid,
    lease_secs: f64,
    limit: i64,
) -> sqlx::Result<Vec<ClaimedRun>> {
    sqlx::query_as(
        r#"
        UPDATE runs r
        SET status = 'running', lease_owner = $1,
            lease_until = now() + make_interval(secs => $2), claims = r.claims + 1
        FROM (
            SELECT id FROM runs
            WHERE status = 'queued' OR (status = 'running' AND lease_until < now())
            ORDER BY start_time
            LIMIT $3
            FOR UPDATE SKIP LOCKED
        ) due
        WHERE r.id = due.id
        RETURNING r.id, r.project_id, r.flow_id, r.flow_version, r.run_model, r.input, r.claims
        "#,
    )
    .bind(owner)
    .bind(lease_secs)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Extends the leases of every run this worker holds. Like every statement that locks many
/// runs, it locks them in id order (see [`held_runs`]).
pub async fn renew_leases(
    db: impl PgExecutor<'_>,
    owner: Uuid,
    lease_secs: f64,
) -> sqlx::Result<u64> {
    let done = sqlx::query(&format!(
        "UPDATE runs SET lease_until = now() + make_interval(secs => $2) \
         WHERE id = ANY(ARRAY({}))",
        held_runs("lease_owner = $1")
    ))
    .bind(owner)
    .bind(lease_secs)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Gives the leases of this worker back (clean shutdown), so other workers resume at once.
pub async fn release_leases(db: impl PgExecutor<'_>, owner: Uuid) -> sqlx::Result<u64> {
    let done = sqlx::query(&format!(
        "UPDATE runs SET lease_until = now() WHERE id = ANY(ARRAY({}))",
        held_runs("lease_owner = $1")
    ))
    .bind(owner)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Hands runs back to the queue at once (their lease ends now).
pub async fn release_runs(
    db: impl PgExecutor<'_>,
    owner: Uuid,
    run_ids: &[Uuid],
) -> sqlx::Result<u64> {
    let done = sqlx::query(&format!(
        "UPDATE runs SET lease_until = now() WHERE id = ANY(ARRAY({}))",
        held_runs("id = ANY($2) AND lease_owner = $1")
    ))
    .bind(owner)
    .bind(run_ids)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// The running runs matching `filter`, locked in id order. Every statement that locks many
/// runs' rows locks them in this order (the heartbeat, the checkpoint writer, the completer),
/// so two of them can wait for each other's rows but never deadlock; without it, a heartbeat
/// updating in the table's order and a checkpoint batch locking in id order could each hold a
/// row the other wants, and PostgreSQL would abort one of them. An `UPDATE` takes the ids as
/// `id = ANY(ARRAY(…))`, which PostgreSQL evaluates once and then probes the primary key
/// with, whatever its estimates.
fn held_runs(filter: &str) -> String {
    format!("SELECT id FROM runs WHERE {filter} AND status = 'running' ORDER BY id FOR UPDATE")
}

/// Stores checkpoints of runs' step records, each only while `owner` still holds its run (no
/// other worker took it over); returns the runs it held, whose records were stored. One
/// autocommit statement: the runs' rows stay locked until the records are durable, so a
/// takeover waits for them; they are locked in id order ([`held_runs`]). A key already present
/// (written by an earlier claim) is kept: records are immutable once durable.
pub async fn checkpoint_runs(
    db: impl PgExecutor<'_>,
    owner: Uuid,
    runs: &[(Uuid, &[StepRecord])],
) -> sqlx::Result<HashSet<Uuid>> {
    let ids: Vec<Uuid> = runs.iter().map(|(id, _)| *id).collect();
    let rows: Vec<(Uuid, &StepRecord)> =
        runs.iter().flat_map(|(id, records)| records.iter().map(move |r| (*id, r))).collect();
    let columns = StepColumns::new(&rows);
    let sql = format!(
        r#"
        WITH held AS ({}), stored AS (
            INSERT INTO run_steps ({STEP_FIELDS})
            SELECT s.* FROM {} WHERE s.run_id IN (SELECT id FROM held)
            ON CONFLICT (run_id, step_key) DO NOTHING
        )
        SELECT id FROM held
        "#,
        held_runs("id = ANY($1) AND lease_owner = $2"),
        step_unnest(3)
    );
    let query = sqlx::query(&sql).bind(&ids).bind(owner);
    let held = columns.bind(query).fetch_all(db).await?;
    held.iter().map(|row| sqlx::Row::try_get(row, 0)).collect()
}

/// Inserts step records of any number of runs in one statement.
pub async fn insert_step_rows(
    db: impl PgExecutor<'_>,
    rows: &[(Uuid, &StepRecord)],
) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let columns = StepColumns::new(rows);
    let sql = format!(
        "INSERT INTO run_steps ({STEP_FIELDS}) SELECT * FROM {} ON CONFLICT (run_id, step_key) \
         DO NOTHING",
        step_unnest(1)
    );
    columns.bind(sqlx::query(&sql)).execute(db).await.map(drop)
}

const STEP_FIELDS: &str =
    "run_id, step_key, step_id, seq, status, attempt, cost_ms, input, output, error, started_at";

/// `UNNEST` of the eleven step columns bound from `$first` on, as the row source `s`.
fn step_unnest(first: usize) -> String {
    const TYPES: [&str; 11] = [
        "uuid",
        "text",
        "text",
        "int",
        "text",
        "int",
        "bigint",
        "jsonb",
        "jsonb",
        "text",
        "timestamptz",
    ];
    let args: Vec<String> =
        TYPES.iter().enumerate().map(|(i, t)| format!("${}::{t}[]", first + i)).collect();
    format!("UNNEST({}) AS s({STEP_FIELDS})", args.join(", "))
}

/// Step records as the column arrays [`step_unnest`] reads, NULs replaced for storage.
struct StepColumns<'a> {
    runs: Vec<Uuid>,
    keys: Vec<&'a str>,
    step_ids: Vec<&'a str>,
    seqs: Vec<i32>,
    statuses: Vec<&'static str>,
    attempts: Vec<i32>,
    costs: Vec<i64>,
    inputs: Vec<Cow<'a, Value>>,
    outputs: Vec<Cow<'a, Value>>,
    errors: Vec<Option<Cow<'a, str>>>,
    started: Vec<DateTime<Utc>>,
}

impl<'a> StepColumns<'a> {
    fn new(rows: &[(Uuid, &'a StepRecord)]) -> Self {
        let n = rows.len();
        let mut c = StepColumns {
            runs: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
            step_ids: Vec::with_capacity(n),
            seqs: Vec::with_capacity(n),
            statuses: Vec::with_capacity(n),
            attempts: Vec::with_capacity(n),
            costs: Vec::with_capacity(n),
            inputs: Vec::with_capacity(n),
            outputs: Vec::with_capacity(n),
            errors: Vec::with_capacity(n),
            started: Vec::with_capacity(n),
        };
        for (run_id, r) in rows {
            c.runs.push(*run_id);
            c.keys.push(r.step_key.as_str());
            c.step_ids.push(r.step_id.as_str());
            c.seqs.push(r.seq);
            c.statuses.push(status_text(r.status));
            c.attempts.push(r.attempt);
            c.costs.push(r.cost_ms);
            c.inputs.push(storable::json(&r.input));
            c.outputs.push(storable::json(&r.output));
            c.errors.push(r.error.as_deref().map(storable::text));
            c.started.push(r.started_at);
        }
        c
    }

    /// Binds the arrays, in [`STEP_FIELDS`] order, after whatever `query` has bound.
    fn bind<'q>(&'q self, query: PgQuery<'q>) -> PgQuery<'q> {
        let inputs: Vec<&Value> = self.inputs.iter().map(AsRef::as_ref).collect();
        let outputs: Vec<&Value> = self.outputs.iter().map(AsRef::as_ref).collect();
        let errors: Vec<Option<&str>> = self.errors.iter().map(|e| e.as_deref()).collect();
        query
            .bind(&self.runs)
            .bind(&self.keys)
            .bind(&self.step_ids)
            .bind(&self.seqs)
            .bind(&self.statuses)
            .bind(&self.attempts)
            .bind(&self.costs)
            .bind(inputs)
            .bind(outputs)
            .bind(errors)
            .bind(&self.started)
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

pub(crate) fn status_text(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Success => "success",
        StepStatus::Fail => "fail",
    }
}

pub async fn load_steps(db: impl PgExecutor<'_>, run_id: Uuid) -> sqlx::Result<Vec<StepRecord>> {
    let rows: Vec<StepRow> = sqlx::query_as(
        r#"
        SELECT step_key, step_id, seq, status, attempt, cost_ms, input, output, error, started_at
        FROM run_records WHERE run_id = $1 ORDER BY seq, step_key
        "#,
    )
    .bind(run_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(StepRow::into_record).collect())
}

#[derive(sqlx::FromRow)]
struct StepRow {
    step_key: String,
    step_id: String,
    seq: i32,
    status: String,
    attempt: i32,
    cost_ms: i64,
    input: Option<Value>,
    output: Option<Value>,
    error: Option<String>,
    started_at: DateTime<Utc>,
}

impl StepRow {
    fn into_record(self) -> StepRecord {
        StepRecord {
            step_key: self.step_key,
            step_id: self.step_id,
            seq: self.seq,
            status: if self.status == "success" { StepStatus::Success } else { StepStatus::Fail },
            attempt: self.attempt,
            cost_ms: self.cost_ms,
            input: self.input.unwrap_or(Value::Null),
            output: self.output.unwrap_or(Value::Null),
            error: self.error,
            started_at: self.started_at,
        }
    }
}

/// Of `run_ids`, the runs `owner` still holds, locked until the transaction ends.
pub async fn lock_owned_runs(
    db: impl PgExecutor<'_>,
    run_ids: &[Uuid],
    owner: Uuid,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(&held_runs("id = ANY($1) AND lease_owner = $2"))
        .bind(run_ids)
        .bind(owner)
        .fetch_all(db)
        .await
}

/// A run's end, to record.
#[derive(Debug, Clone)]
pub struct RunEnd {
    pub run_id: Uuid,
    pub success: bool,
    pub message: Option<String>,
    /// The output of the run's `Response` step, for a caller of an HTTP trigger.
    pub response: Option<Value>,
}

/// Records the end of runs `owner` still holds; returns how many were recorded.
pub async fn finish_runs(
    db: impl PgExecutor<'_>,
    owner: Uuid,
    ends: &[RunEnd],
) -> sqlx::Result<u64> {
    if ends.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = ends.iter().map(|e| e.run_id).collect();
    let statuses: Vec<&str> =
        ends.iter().map(|e| if e.success { "success" } else { "fail" }).collect();
    let messages: Vec<Option<Cow<'_, str>>> =
        ends.iter().map(|e| e.message.as_deref().map(storable::text)).collect();
    let messages: Vec<Option<&str>> = messages.iter().map(|m| m.as_deref()).collect();
    let responses: Vec<Option<Cow<'_, Value>>> =
        ends.iter().map(|e| e.response.as_ref().map(storable::json)).collect();
    let responses: Vec<Option<&Value>> = responses.iter().map(|r| r.as_deref()).collect();
    let done = sqlx::query(
        r#"
        UPDATE runs r
        SET status = e.status, message = e.message, response = e.response, end_time = now(),
            lease_owner = NULL, lease_until = NULL
        FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::jsonb[])
             AS e(id, status, message, response)
        WHERE r.id = e.id AND r.lease_owner = $1 AND r.status = 'running'
        "#,
    )
    .bind(owner)
    .bind(&ids)
    .bind(&statuses)
    .bind(&messages)
    .bind(&responses)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Announces on [`RUN_DONE_CHANNEL`] that these runs ended, once the transaction commits: one
/// notification per run, `<run id> <process id>` (the finishing process's
/// `Completions::process`) as the payload.
pub async fn announce_ends(
    db: impl PgExecutor<'_>,
    run_ids: &[Uuid],
    process: Uuid,
) -> sqlx::Result<()> {
    if run_ids.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify($1, id::text || ' ' || $3::text) FROM UNNEST($2::uuid[]) AS id")
        .bind(RUN_DONE_CHANNEL)
        .bind(run_ids)
        .bind(process)
        .execute(db)
        .await
        .map(drop)
}

/// The end of a finished run; `None` while it is queued or running (or unknown).
pub async fn find_run_end(
    db: impl PgExecutor<'_>,
    run_id: Uuid,
) -> sqlx::Result<Option<RunResult>> {
    let row: Option<(String, Option<String>, Option<Value>)> = sqlx::query_as(
        "SELECT status, message, response FROM runs \
         WHERE id = $1 AND status IN ('success', 'fail')",
    )
    .bind(run_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(status, message, response)| RunResult {
        status: if status == "success" { RunStatus::Success } else { RunStatus::Fail },
        message,
        response,
    }))
}

/// Deletes runs that started before `before`, in bounded batches; returns how many went.
pub async fn prune_runs(db: impl PgExecutor<'_>, before: DateTime<Utc>) -> sqlx::Result<u64> {
    // Their step records go with them, and the flows' run counts follow, so R2's unfiltered
    // total stays the number of runs kept. Runs outlive their flow, whose counts went with it:
    // a deleted flow gets none back.
    let deleted: i64 = sqlx::query_scalar(&format!(
        r#"
        WITH gone AS (
            DELETE FROM runs WHERE id IN (
                SELECT id FROM runs WHERE start_time < $1 AND status IN ('success', 'fail')
                LIMIT 10000)
            RETURNING id, flow_id
        ), steps AS (
            DELETE FROM run_steps WHERE run_id IN (SELECT id FROM gone)
        ), counted AS (
            SELECT flow_id, count(*) AS n FROM gone GROUP BY flow_id
        ), recounted AS (
            INSERT INTO flow_run_counts AS c (flow_id, slot, runs)
            SELECT flow_id, {SHARED_SLOT}, -n FROM counted
            WHERE EXISTS (SELECT 1 FROM flows f WHERE f.id = counted.flow_id)
            ON CONFLICT (flow_id, slot) DO UPDATE SET runs = c.runs + excluded.runs
        )
        SELECT coalesce(sum(n), 0)::bigint FROM counted
        "#
    ))
    .bind(before)
    .fetch_one(db)
    .await?;
    Ok(deleted as u64)
}
