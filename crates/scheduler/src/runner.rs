//! The scheduler loop: one task per process that fires due schedules into the run queue.
//!
//! The loop sleeps until the earliest next fire time of any armed schedule, or until a
//! `NOTIFY` on [`SCHEDULES_CHANNEL`] says a schedule was armed; with nothing armed it only
//! wakes for that notification (and a slow safety check). Each pass first computes the first
//! fire time of freshly armed schedules, then fires due ones in batches: per batch, one
//! transaction locks them with `FOR UPDATE SKIP LOCKED`, plans every fire in memory, then
//! claims the fire times in `schedule_fires` (a unique key), queues runs of the armed flow
//! versions for the claimed ones and advances the next fire times, one statement per table.
//! Any number of processes can run this loop on one database; each fire time becomes one run.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;
use workbench_engine::schedule_store::{self, DueSchedule, FireClaim, SCHEDULES_CHANNEL};
use workbench_engine::store::{self, NewRun};

use crate::connector::FIRE_TIME_KEY;
use crate::spec::{next_fire, Misfire, ScheduleSpec};
use crate::stored_spec;

/// How the scheduler loop of a process behaves.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// The longest sleep without a notification, a safety net for a lost one.
    pub idle_check: Duration,
    /// A fire time at most this late is on time; older ones are misfires, handled by the
    /// schedule's `misfire` policy.
    pub misfire_grace: Duration,
    /// Due schedules locked, planned and written per transaction.
    pub batch: i64,
    /// The size of a pass's first batch: smaller, so the earliest fires commit sooner.
    pub first_batch: i64,
    /// Batches written at once, each on its own connection, after the first.
    pub lanes: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            idle_check: Duration::from_secs(60),
            misfire_grace: Duration::from_secs(10),
            batch: 1000,
            first_batch: 100,
            lanes: 2,
        }
    }
}

/// Starts the loop; it returns once `stop` turns true.
pub fn start(
    db: PgPool,
    config: SchedulerConfig,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(Scheduler { db, config }.run(stop))
}

/// While another process holds the due schedules, look again after this long.
const CONTENDED: Duration = Duration::from_millis(100);
/// Claimed fire times are kept this long (the unique key only guards recent instants).
const FIRES_KEPT: chrono::Duration = chrono::Duration::days(1);
/// Fire times walked at most while catching up, before jumping close to now.
const MAX_CATCHUP_STEPS: usize = 100_000;
/// Pending schedules armed per transaction (one statement each; arming is not urgent).
const ARM_BATCH: i64 = 64;

struct Scheduler {
    db: PgPool,
    config: SchedulerConfig,
}

impl Scheduler {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut listener = self.listen().await;
        let mut last_prune: Option<tokio::time::Instant> = None;
        tracing::info!("scheduler up");
        while !*stop.borrow() {
            let pause = match self.pass().await {
                Ok(pause) => pause,
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler pass failed");
                    Duration::from_secs(1)
                }
            };
            if last_prune.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
                last_prune = Some(tokio::time::Instant::now());
                if let Err(e) = schedule_store::prune_fires(&self.db, Utc::now() - FIRES_KEPT).await
                {
                    tracing::warn!(error = %e, "pruning claimed fire times failed");
                }
            }
            if pause.is_zero() {
                continue;
            }
            tokio::select! {
                _ = wait_notification(&mut listener, pause) => {}
                _ = stop.changed() => {}
            }
        }
        tracing::info!("scheduler stopped");
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.db).await.ok()?;
        listener.listen(SCHEDULES_CHANNEL).await.ok()?;
        Some(listener)
    }

    /// Arms pending schedules, fires due ones; returns how long to sleep before the next pass.
    async fn pass(&self) -> sqlx::Result<Duration> {
        let armed = self.arm_pending().await?;
        let fired = self.fire_due().await?;
        let progress = armed + fired > 0;
        let Some(wake) = schedule_store::next_wakeup(&self.db).await? else {
            return Ok(self.config.idle_check);
        };
        let until = (wake - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if !until.is_zero() {
            return Ok(until.min(self.config.idle_check));
        }
        // Work is due now: go on while this process makes progress; otherwise another
        // process holds it, and its commit (or this short pause) settles it.
        Ok(if progress { Duration::ZERO } else { CONTENDED })
    }

    /// Computes the first fire time of freshly armed schedules.
    async fn arm_pending(&self) -> sqlx::Result<usize> {
        let mut tx = self.db.begin().await?;
        let pending = schedule_store::lock_pending(&mut tx, ARM_BATCH).await?;
        for row in &pending {
            match stored_spec(&row.spec) {
                Ok(spec) => {
                    let next = next_fire(&spec, row.armed_at);
                    let misfire = spec.misfire.as_str();
                    schedule_store::set_armed(&mut *tx, row.flow_id, misfire, next).await?;
                    tracing::info!(flow = %row.flow_id, next = ?next, "schedule armed");
                }
                Err(e) => {
                    tracing::warn!(flow = %row.flow_id, error = %e, "schedule cannot be armed");
                    schedule_store::set_broken(&mut *tx, row.flow_id, &e.0).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(pending.len())
    }

    /// Fires every due schedule this process can lock, batch after batch. Each batch commits
    /// on its own, so the earliest fires are not held back by the later ones.
    ///
    /// FIXME: with 10,000 schedules due in the same second the last ones still fire 0.5-1 s late
    /// (docs/benchmarks.md, scenario 6; target 100 ms). The writes are the cost: per fire two
    /// row locks and four rows (claim, run, flow counter, schedule), about 160 µs of
    /// PostgreSQL time on the 2-core benchmark machine, shared with the runs already queued.
    /// The target needs about 10 µs per fire; bigger batches do not get there. Locking,
    /// claiming and advancing a burst just before its fire time would leave only the runs
    /// and counters for after it (about half the work); the rest needs fewer rows and index
    /// entries written per run.
    async fn fire_due(&self) -> sqlx::Result<usize> {
        let batch = self.config.batch.max(1);
        let first = self.config.first_batch.clamp(1, batch);
        let locked = self.fire_batch(first).await?;
        if (locked as i64) < first {
            return Ok(locked);
        }
        // The rest on several connections at once: SKIP LOCKED gives each batch schedules of
        // its own, and PostgreSQL writes them on more than one core.
        let lanes = (0..self.config.lanes.max(1)).map(|_| self.drain(batch));
        let drained = futures::future::try_join_all(lanes).await?;
        Ok(locked + drained.iter().sum::<usize>())
    }

    /// Fires batches of `limit` until one comes back short; returns the schedules locked.
    async fn drain(&self, limit: i64) -> sqlx::Result<usize> {
        let mut locked = 0;
        loop {
            let n = self.fire_batch(limit).await?;
            locked += n;
            if (n as i64) < limit {
                return Ok(locked);
            }
        }
    }

    /// Locks up to `limit` due schedules, plans their fires in memory and writes them with one
    /// statement per table; returns how many schedules it locked.
    async fn fire_batch(&self, limit: i64) -> sqlx::Result<usize> {
        let began = Instant::now();
        let mut tx = self.db.begin().await?;
        let now = Utc::now();
        let due = schedule_store::lock_due(&mut tx, now, limit).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let locked = began.elapsed();

        let grace = chrono::Duration::from_std(self.config.misfire_grace)
            .unwrap_or(chrono::Duration::zero());
        let batch = plan_batch(&due, now, grace);
        for (flow, error) in &batch.broken {
            tracing::warn!(%flow, %error, "schedule cannot fire");
            schedule_store::set_broken(&mut *tx, *flow, error).await?;
        }
        let claims: Vec<FireClaim> = batch.fires.iter().map(PlannedFire::claim).collect();
        let claimed: HashSet<Uuid> =
            schedule_store::claim_fires(&mut *tx, &claims).await?.into_iter().collect();
        // A run starts when its row is written, however late that is after its fire time.
        let start_time = Utc::now();
        let (fires, taken): (Vec<_>, Vec<_>) =
            batch.fires.iter().partition(|f| claimed.contains(&f.run_id));
        let runs: Vec<NewRun> = fires.iter().map(|f| f.run(start_time)).collect();
        store::insert_runs(&mut tx, &runs.iter().collect::<Vec<_>>()).await?;
        schedule_store::advance(&mut *tx, &batch.next).await?;
        let written = began.elapsed();
        tx.commit().await?;

        for fire in &taken {
            let flow = fire.schedule.flow_id;
            tracing::debug!(%flow, fire = %fire.at, "fire time already claimed");
        }
        for fire in &fires {
            let (flow, run) = (fire.schedule.flow_id, fire.run_id);
            tracing::info!(%flow, %run, fire = %fire.at, "schedule fired");
        }
        tracing::debug!(
            schedules = due.len(),
            runs = runs.len(),
            locked_ms = locked.as_secs_f64() * 1e3,
            written_ms = written.as_secs_f64() * 1e3,
            committed_ms = began.elapsed().as_secs_f64() * 1e3,
            "fire batch committed"
        );
        Ok(due.len())
    }
}

/// One fire time of a locked schedule, with the id its run will get.
#[derive(Debug)]
struct PlannedFire<'a> {
    schedule: &'a DueSchedule,
    at: DateTime<Utc>,
    run_id: Uuid,
}

impl PlannedFire<'_> {
    fn claim(&self) -> FireClaim {
        FireClaim { flow_id: self.schedule.flow_id, fire_time: self.at, run_id: self.run_id }
    }

    fn run(&self, start_time: DateTime<Utc>) -> NewRun {
        let schedule = self.schedule;
        NewRun {
            id: self.run_id,
            project_id: schedule.project_id.clone(),
            flow_id: schedule.flow_id,
            flow_version: schedule.flow_version,
            flow_name: schedule.flow_name.clone(),
            run_model: "auto".into(),
            input: json!({ FIRE_TIME_KEY: self.at.to_rfc3339() }),
            start_time,
        }
    }
}

/// What one batch writes: fires to claim and run, next fire times, schedules that broke.
#[derive(Debug)]
struct BatchPlan<'a> {
    fires: Vec<PlannedFire<'a>>,
    /// Every schedule that parsed, with its next fire time (`None`: it has ended).
    next: Vec<(Uuid, Option<DateTime<Utc>>)>,
    /// Schedules whose stored spec no longer parses, with the reason.
    broken: Vec<(Uuid, String)>,
}

/// Plans every locked schedule of a batch, in memory.
fn plan_batch(due: &[DueSchedule], now: DateTime<Utc>, grace: chrono::Duration) -> BatchPlan<'_> {
    let mut batch = BatchPlan { fires: Vec::new(), next: Vec::new(), broken: Vec::new() };
    for schedule in due {
        let spec = match stored_spec(&schedule.spec) {
            Ok(spec) => spec,
            Err(e) => {
                batch.broken.push((schedule.flow_id, e.0));
                continue;
            }
        };
        let plan = plan(&spec, schedule.next_fire_at, now, grace);
        if plan.skipped > 0 {
            let (flow, skipped) = (schedule.flow_id, plan.skipped);
            tracing::info!(%flow, skipped, "missed fire times not run");
        }
        let fires = plan.fires.into_iter();
        batch.fires.extend(fires.map(|at| PlannedFire {
            schedule,
            at,
            run_id: workbench_engine::runs::new_run_id(),
        }));
        batch.next.push((schedule.flow_id, plan.next));
    }
    batch
}

/// What one pass does with a due schedule.
#[derive(Debug, PartialEq)]
struct Plan {
    /// Fire times to run, oldest first.
    fires: Vec<DateTime<Utc>>,
    /// Missed fire times dropped by the misfire policy.
    skipped: usize,
    /// The next fire time after `now`.
    next: Option<DateTime<Utc>>,
}

/// Sorts every fire time from `due` up to `now` into on-time ones (at most `grace` late),
/// which all run, and missed ones, which run as the misfire policy says.
fn plan(
    spec: &ScheduleSpec,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
    grace: chrono::Duration,
) -> Plan {
    let keep = match spec.misfire {
        Misfire::Skip => 0,
        Misfire::Latest => 1,
        Misfire::All(max) => max as usize,
    };
    let late = now - grace;
    let mut missed = VecDeque::new();
    let mut on_time = Vec::new();
    let mut skipped = 0;
    let mut steps = 0;
    let mut jumped = false;
    let mut cursor = Some(due);
    while let Some(at) = cursor.filter(|at| *at <= now) {
        if at > late {
            on_time.push(at);
        } else {
            missed.push_back(at);
            if missed.len() > keep {
                missed.pop_front();
                skipped += 1;
            }
        }
        steps += 1;
        cursor = if steps >= MAX_CATCHUP_STEPS && !jumped {
            // A very frequent schedule after a long outage: stop walking one by one and pick
            // up an hour before the misfire line; the uncounted times are skipped too.
            jumped = true;
            next_fire(spec, at.max(late - chrono::Duration::hours(1)))
        } else {
            next_fire(spec, at)
        };
    }
    let mut fires: Vec<_> = missed.into_iter().collect();
    fires.extend(on_time);
    Plan { fires, skipped, next: cursor }
}

/// Waits for a schedule notification, or `pause` at most; a plain sleep without a listener.
async fn wait_notification(listener: &mut Option<PgListener>, pause: Duration) {
    let Some(l) = listener else {
        tokio::time::sleep(pause.min(Duration::from_secs(5))).await;
        return;
    };
    match tokio::time::timeout(pause, l.recv()).await {
        Ok(Ok(_)) | Err(_) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "schedule notifications interrupted");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::spec::OP_REPEAT;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn every_minute(misfire: &str) -> ScheduleSpec {
        let config = json!({"first_run": "2027-01-01T00:00", "every": 1, "unit": "minute",
            "misfire": misfire, "misfire_max": 3});
        ScheduleSpec::parse(OP_REPEAT, &config).unwrap()
    }

    #[test]
    fn misfire_policies_after_ten_minutes_down() {
        let (due, now) = (utc("2027-01-01T00:01:00Z"), utc("2027-01-01T00:10:05Z"));
        let grace = chrono::Duration::seconds(10);
        let skip = plan(&every_minute("skip"), due, now, grace);
        assert_eq!(skip.fires, [utc("2027-01-01T00:10:00Z")]);
        assert_eq!(skip.next, Some(utc("2027-01-01T00:11:00Z")));
        let latest = plan(&every_minute("latest"), due, now, grace);
        assert_eq!(latest.fires, [utc("2027-01-01T00:09:00Z"), utc("2027-01-01T00:10:00Z")]);
        let all = plan(&every_minute("all"), due, now, grace);
        assert_eq!(all.fires.len(), 4);
        assert_eq!(all.skipped, 6);
    }

    fn due(misfire: &str, next_fire_at: DateTime<Utc>) -> DueSchedule {
        let config = json!({"first_run": "2027-01-01T00:00", "every": 1, "unit": "minute",
            "misfire": misfire, "misfire_max": 3});
        DueSchedule {
            flow_id: Uuid::new_v4(),
            project_id: "p".into(),
            flow_version: 1,
            flow_name: format!("every minute, {misfire}"),
            spec: json!({"operation": OP_REPEAT, "config": config}),
            misfire: misfire.into(),
            next_fire_at,
        }
    }

    #[test]
    fn a_batch_plans_each_schedule_by_its_own_policy_and_parks_broken_ones() {
        let now = utc("2027-01-01T00:10:05Z");
        let late = utc("2027-01-01T00:01:00Z");
        let mut broken = due("skip", late);
        broken.spec = json!({"operation": "nonsense", "config": {}});
        let schedules = [
            due("skip", late),
            broken,
            due("all", late),
            due("latest", utc("2027-01-01T00:10:00Z")),
        ];
        let batch = plan_batch(&schedules, now, chrono::Duration::seconds(10));

        let fires: Vec<_> = batch.fires.iter().map(|f| (f.schedule.flow_id, f.at)).collect();
        let minute = |m: u32| utc(&format!("2027-01-01T00:{m:02}:00Z"));
        let (skip, all, latest) =
            (schedules[0].flow_id, schedules[2].flow_id, schedules[3].flow_id);
        let mut expected = vec![(skip, minute(10))];
        expected.extend([7, 8, 9, 10].map(|m| (all, minute(m))));
        expected.push((latest, minute(10)));
        assert_eq!(fires, expected);
        let next = Some(minute(11));
        assert_eq!(batch.next, [(skip, next), (all, next), (latest, next)]);
        assert_eq!(batch.broken.len(), 1);
        assert_eq!(batch.broken[0].0, schedules[1].flow_id);

        let ids: HashSet<_> = batch.fires.iter().map(|f| f.run_id).collect();
        assert_eq!(ids.len(), batch.fires.len(), "every fire gets its own run id");
    }

    #[test]
    fn an_on_time_fire_is_just_fired() {
        let due = utc("2027-01-01T00:01:00Z");
        let got = plan(&every_minute("skip"), due, due, chrono::Duration::seconds(10));
        assert_eq!(
            got,
            Plan { fires: vec![due], skipped: 0, next: Some(utc("2027-01-01T00:02:00Z")) }
        );
    }
}
