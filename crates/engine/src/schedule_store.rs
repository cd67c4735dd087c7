//! SQL for armed schedules and their claimed fire times (`docs/schedules.md`).
//!
//! The flows service arms and disarms rows inside its own transactions; the scheduler loop
//! (`workbench-scheduler`) computes fire times and fires. Runtime-checked queries, like
//! [`crate::store`].

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// The channel that wakes scheduler loops when a schedule is armed or re-armed.
pub const SCHEDULES_CHANNEL: &str = "workbench_schedules";

/// A schedule to arm: the flow version it fires and its trigger as saved.
#[derive(Debug, Clone)]
pub struct ArmSchedule {
    pub flow_id: Uuid,
    pub project_id: String,
    pub flow_version: i32,
    /// `{"operation": <refId>, "config": <triggerRef.config>}`.
    pub spec: Value,
}

/// Arms (or re-arms) a flow's schedule as `pending` and wakes the scheduler loops. Whatever
/// the row held before (an older version, its next fire time) is replaced.
pub async fn arm(db: &mut PgConnection, schedule: &ArmSchedule) -> sqlx::Result<()> {
    sqlx::query(
        r#"
        INSERT INTO schedules (flow_id, project_id, flow_version, spec, state, armed_at)
        VALUES ($1, $2, $3, $4, 'pending', now())
        ON CONFLICT (flow_id) DO UPDATE
        SET project_id = EXCLUDED.project_id, flow_version = EXCLUDED.flow_version,
            spec = EXCLUDED.spec, state = 'pending', armed_at = EXCLUDED.armed_at,
            next_fire_at = NULL, last_error = NULL
        "#,
    )
    .bind(schedule.flow_id)
    .bind(&schedule.project_id)
    .bind(schedule.flow_version)
    .bind(&schedule.spec)
    .execute(&mut *db)
    .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(SCHEDULES_CHANNEL)
        .bind(schedule.flow_id.to_string())
        .execute(db)
        .await
        .map(drop)
}

/// Removes a flow's schedule; a loop that wakes for it finds nothing to fire.
pub async fn disarm(db: impl PgExecutor<'_>, flow_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM schedules WHERE flow_id = $1")
        .bind(flow_id)
        .execute(db)
        .await
        .map(drop)
}

/// A freshly armed schedule whose first fire time is still to be computed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingSchedule {
    pub flow_id: Uuid,
    pub spec: Value,
    pub armed_at: DateTime<Utc>,
}

/// Locks up to `limit` pending schedules (skipping those another process holds).
pub async fn lock_pending(db: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<PendingSchedule>> {
    sqlx::query_as(
        r#"
        SELECT flow_id, spec, armed_at FROM schedules
        WHERE state = 'pending'
        ORDER BY armed_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED
        "#,
    )
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Stores the first fire time of a pending schedule (`None`: it never fires, `ended`).
pub async fn set_armed(
    db: impl PgExecutor<'_>,
    flow_id: Uuid,
    misfire: &str,
    next_fire_at: Option<DateTime<Utc>>,
) -> sqlx::Result<()> {
    sqlx::query(
        r#"
        UPDATE schedules
        SET misfire = $2, next_fire_at = $3,
            state = CASE WHEN $3::timestamptz IS NULL THEN 'ended' ELSE 'armed' END
        WHERE flow_id = $1
        "#,
    )
    .bind(flow_id)
    .bind(misfire)
    .bind(next_fire_at)
    .execute(db)
    .await
    .map(drop)
}

/// Parks a schedule whose stored spec no longer parses, with the reason.
pub async fn set_broken(db: impl PgExecutor<'_>, flow_id: Uuid, error: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE schedules SET state = 'broken', next_fire_at = NULL, last_error = $2 \
         WHERE flow_id = $1",
    )
    .bind(flow_id)
    .bind(error)
    .execute(db)
    .await
    .map(drop)
}

/// An armed schedule whose next fire time has come, locked by this transaction.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueSchedule {
    pub flow_id: Uuid,
    pub project_id: String,
    pub flow_version: i32,
    pub flow_name: String,
    pub spec: Value,
    pub misfire: String,
    pub next_fire_at: DateTime<Utc>,
}

/// Locks up to `limit` armed schedules due at `until`, skipping those another process holds,
/// in `(next_fire_at, flow_id)` order from just past `after` (the last row of the previous
/// page the caller's transaction locked, which a repeated query would return again). The flow
/// row is locked too, so a concurrent update or disable, which locks the flow first, is
/// skipped instead of deadlocking.
pub async fn lock_due(
    db: &mut PgConnection,
    until: DateTime<Utc>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<DueSchedule>> {
    let (after_at, after_flow) = after.unzip();
    sqlx::query_as(
        r#"
        SELECT s.flow_id, s.project_id, s.flow_version, f.name AS flow_name, s.spec, s.misfire,
               s.next_fire_at
        FROM schedules s JOIN flows f ON f.id = s.flow_id
        WHERE s.state = 'armed' AND s.next_fire_at <= $1
          AND ($2::timestamptz IS NULL OR (s.next_fire_at, s.flow_id) > ($2, $3::uuid))
        ORDER BY s.next_fire_at, s.flow_id
        LIMIT $4
        FOR UPDATE OF s, f SKIP LOCKED
        "#,
    )
    .bind(until)
    .bind(after_at)
    .bind(after_flow)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// A fire time to claim for the run that will carry it.
#[derive(Debug, Clone, Copy)]
pub struct FireClaim {
    pub flow_id: Uuid,
    pub fire_time: DateTime<Utc>,
    pub run_id: Uuid,
}

/// Claims fire times in one statement; returns the run ids of those claimed now. A fire time
/// claimed before (someone fired it) is left alone and its run id is not returned.
pub async fn claim_fires(db: impl PgExecutor<'_>, fires: &[FireClaim]) -> sqlx::Result<Vec<Uuid>> {
    if fires.is_empty() {
        return Ok(Vec::new());
    }
    let flows: Vec<Uuid> = fires.iter().map(|f| f.flow_id).collect();
    let times: Vec<DateTime<Utc>> = fires.iter().map(|f| f.fire_time).collect();
    let runs: Vec<Uuid> = fires.iter().map(|f| f.run_id).collect();
    sqlx::query_scalar(
        r#"
        INSERT INTO schedule_fires (flow_id, fire_time, run_id)
        SELECT * FROM UNNEST($1::uuid[], $2::timestamptz[], $3::uuid[])
        ON CONFLICT ON CONSTRAINT schedule_fires_key DO NOTHING
        RETURNING run_id
        "#,
    )
    .bind(&flows)
    .bind(&times)
    .bind(&runs)
    .fetch_all(db)
    .await
}

/// Moves armed schedules to their next fire times in one statement (`None`: it has ended).
pub async fn advance(
    db: impl PgExecutor<'_>,
    next: &[(Uuid, Option<DateTime<Utc>>)],
) -> sqlx::Result<()> {
    if next.is_empty() {
        return Ok(());
    }
    let flows: Vec<Uuid> = next.iter().map(|(flow, _)| *flow).collect();
    let times: Vec<Option<DateTime<Utc>>> = next.iter().map(|(_, at)| *at).collect();
    sqlx::query(
        r#"
        UPDATE schedules s
        SET next_fire_at = n.at,
            state = CASE WHEN n.at IS NULL THEN 'ended' ELSE 'armed' END
        FROM UNNEST($1::uuid[], $2::timestamptz[]) AS n(flow_id, at)
        WHERE s.flow_id = n.flow_id
        "#,
    )
    .bind(&flows)
    .bind(&times)
    .execute(db)
    .await
    .map(drop)
}

/// When the loop has work next: the earliest fire time, or the arming time of a pending
/// schedule (which is work now). `None` when nothing is armed.
pub async fn next_wakeup(db: impl PgExecutor<'_>) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar(
        r#"
        SELECT min(CASE WHEN state = 'pending' THEN armed_at ELSE next_fire_at END)
        FROM schedules WHERE state IN ('pending', 'armed')
        "#,
    )
    .fetch_one(db)
    .await
}

/// Forgets claimed fire times recorded before `before`; returns how many went.
pub async fn prune_fires(db: impl PgExecutor<'_>, before: DateTime<Utc>) -> sqlx::Result<u64> {
    let done = sqlx::query(
        r#"
        DELETE FROM schedule_fires WHERE ctid IN (
            SELECT ctid FROM schedule_fires WHERE fired_at < $1 LIMIT 10000)
        "#,
    )
    .bind(before)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// The flow's armed schedule row: (state, version, next fire time), for tests and previews.
pub async fn find(
    db: impl PgExecutor<'_>,
    flow_id: Uuid,
) -> sqlx::Result<Option<(String, i32, Option<DateTime<Utc>>)>> {
    sqlx::query_as("SELECT state, flow_version, next_fire_at FROM schedules WHERE flow_id = $1")
        .bind(flow_id)
        .fetch_optional(db)
        .await
}
