//! The scheduler loop: one task per process that fires due schedules into the run queue.
//!
//! The loop sleeps until the earliest next fire time of any armed schedule, or until a
//! `NOTIFY` on [`SCHEDULES_CHANNEL`] says a schedule was armed; with nothing armed it only
//! wakes for that notification (and a slow safety check). Each pass first computes the first
//! fire time of freshly armed schedules, then fires due ones: in one transaction it locks
//! them with `FOR UPDATE SKIP LOCKED`, claims each fire time in `schedule_fires` (a unique
//! key), queues a run of the armed flow version and advances the next fire time. Any number
//! of processes can run this loop on one database; each fire time becomes one run.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;
use workbench_engine::schedule_store::{self, DueSchedule, SCHEDULES_CHANNEL};
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
    /// Schedules locked per transaction.
    pub batch: i64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            idle_check: Duration::from_secs(60),
            misfire_grace: Duration::from_secs(10),
            batch: 32,
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
        let pending = schedule_store::lock_pending(&mut tx, self.config.batch).await?;
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

    /// Fires every due schedule this process can lock, in one transaction.
    ///
    /// FIXME: three statements per schedule (claim the fire time, insert the run with its flow
    /// counter, advance), one after another, 32 schedules per transaction, on one task: with
    /// 10,000 schedules due at the same second the last fires 10-20 s late (docs/benchmarks.md,
    /// scenario 6; target 100 ms). Planning the batch in memory and writing it with one
    /// `UNNEST` statement per table, in larger batches, would lift it.
    async fn fire_due(&self) -> sqlx::Result<usize> {
        let now = Utc::now();
        let mut tx = self.db.begin().await?;
        let due = schedule_store::lock_due(&mut tx, now, self.config.batch).await?;
        for schedule in &due {
            let spec = match stored_spec(&schedule.spec) {
                Ok(spec) => spec,
                Err(e) => {
                    schedule_store::set_broken(&mut *tx, schedule.flow_id, &e.0).await?;
                    continue;
                }
            };
            let grace = chrono::Duration::from_std(self.config.misfire_grace)
                .unwrap_or(chrono::Duration::zero());
            let plan = plan(&spec, schedule.next_fire_at, now, grace);
            for fire in &plan.fires {
                fire_one(&mut tx, schedule, *fire).await?;
            }
            if plan.skipped > 0 {
                let (flow, skipped) = (schedule.flow_id, plan.skipped);
                tracing::info!(%flow, skipped, "missed fire times not run");
            }
            schedule_store::advance(&mut *tx, schedule.flow_id, plan.next).await?;
        }
        tx.commit().await?;
        Ok(due.len())
    }
}

/// Claims one fire time and queues its run; a fire time claimed before is left alone.
async fn fire_one(
    tx: &mut sqlx::PgConnection,
    schedule: &DueSchedule,
    fire: DateTime<Utc>,
) -> sqlx::Result<()> {
    let run_id = Uuid::new_v4();
    if !schedule_store::claim_fire(&mut *tx, schedule.flow_id, fire, run_id).await? {
        tracing::debug!(flow = %schedule.flow_id, %fire, "fire time already claimed");
        return Ok(());
    }
    let run = NewRun {
        id: run_id,
        project_id: schedule.project_id.clone(),
        flow_id: schedule.flow_id,
        flow_version: schedule.flow_version,
        flow_name: schedule.flow_name.clone(),
        run_model: "auto".into(),
        input: json!({ FIRE_TIME_KEY: fire.to_rfc3339() }),
        start_time: Utc::now(),
    };
    store::insert_run(tx, &run).await?;
    tracing::info!(flow = %schedule.flow_id, run = %run_id, %fire, "schedule fired");
    Ok(())
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
