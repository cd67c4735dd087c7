//! The scheduler loop: one task per process that fires due schedules.
//!
//! The loop sleeps until shortly before the earliest next fire time of any armed schedule
//! ([`SchedulerConfig::lead`]), or until a `NOTIFY` on [`SCHEDULES_CHANNEL`] says a schedule
//! was armed; with nothing armed it only wakes for that notification (and a slow safety
//! check). Each pass first computes the first fire time of freshly armed schedules, then takes
//! the earliest fire time (or now, for overdue ones) and fires every schedule due by then.
//!
//! A fire time is prepared ahead and fired on time: a few transactions ("lanes", one
//! connection each) lock the due schedules page by page with `FOR UPDATE SKIP LOCKED` during
//! the lead, plan every fire in memory and wait, locks held, for the fire time. Then each lane
//! executes the runs of self-contained flows in place (their `start_time` is when each one
//! began), claims the fire times in `schedule_fires` (a unique key), stores the runs
//! (finished, or queued for the workers) and advances the next fire times, one statement per
//! table and page, and commits. Claim, runs and advance commit together or not at all: a
//! process that dies before its commit leaves the schedules due, and the next pass of any
//! process fires them. Any number of processes can run this loop on one database; each fire
//! time becomes one run.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;
use workbench_engine::runs::{self, InPlace};
use workbench_engine::schedule_store::{self, DueSchedule, FireClaim, SCHEDULES_CHANNEL};
use workbench_engine::store::{
    self, Acceptance, Accepting, Executed, NewRun, RunJson, SHARED_SLOT,
};
use workbench_engine::{FlowGraph, RunMode};

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
    /// Due schedules locked, and runs written, per statement.
    pub batch: i64,
    /// Transactions, each on a connection of its own, sharing one fire time's schedules: their
    /// runs execute and their statements run on that many cores at once.
    pub lanes: usize,
    /// How long before a fire time its schedules are locked, so that at the fire time only
    /// executing and writing the runs is left. A flow update or disable that comes meanwhile
    /// waits for the fire: this long, plus executing and writing the lane's runs.
    pub lead: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            idle_check: Duration::from_secs(60),
            misfire_grace: Duration::from_secs(10),
            batch: 1000,
            lanes: 2,
            lead: Duration::from_secs(1),
        }
    }
}

/// Starts the loop; it returns once `stop` turns true. With `in_place`, runs of self-contained
/// flows are executed by the loop at their fire time; otherwise every run is queued.
pub fn start(
    db: PgPool,
    config: SchedulerConfig,
    in_place: Option<InPlace>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(Scheduler { db, config, in_place }.run(stop))
}

/// While another process holds the due schedules, look again after this long.
const CONTENDED: Duration = Duration::from_millis(100);
/// Claimed fire times are kept this long (the unique key only guards recent instants).
const FIRES_KEPT: chrono::Duration = chrono::Duration::days(1);
/// Fire times walked at most while catching up, before jumping close to now.
const MAX_CATCHUP_STEPS: usize = 100_000;
/// Pending schedules armed per transaction (one statement each; arming is not urgent).
const ARM_BATCH: i64 = 64;

#[derive(Clone)]
struct Scheduler {
    db: PgPool,
    config: SchedulerConfig,
    in_place: Option<InPlace>,
}

impl Scheduler {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut listener = self.listen().await;
        let mut last_prune: Option<tokio::time::Instant> = None;
        tracing::info!("scheduler up");
        while !*stop.borrow() {
            let pause = match self.pass(&stop).await {
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

    /// Arms pending schedules, fires the next fire time if it is near; returns how long to
    /// sleep before the next pass.
    async fn pass(&self, stop: &watch::Receiver<bool>) -> sqlx::Result<Duration> {
        let armed = self.arm_pending().await?;
        let Some(wake) = schedule_store::next_wakeup(&self.db).await? else {
            return Ok(self.config.idle_check);
        };
        let lead = chrono::Duration::from_std(self.config.lead).unwrap_or_default();
        let now = Utc::now();
        if wake - lead > now {
            let until = (wake - lead - now).to_std().unwrap_or(Duration::ZERO);
            return Ok(until.min(self.config.idle_check));
        }
        let fired = self.fire(wake.max(now), stop).await?;
        // Go on while this process makes progress; otherwise another process holds the due
        // schedules, and its commit (or this short pause) settles it.
        Ok(if armed + fired > 0 { Duration::ZERO } else { CONTENDED })
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

    /// Fires every schedule due by `at` that this process can lock, on all lanes at once;
    /// returns how many schedules it locked.
    ///
    /// FIXME: the fires of a later instant wait until this one's are written (for a burst of
    /// 10,000 schedules, about four rows each; docs/benchmarks.md, scenario 6), and runs that
    /// are queued rather than executed here start only once written. Locking the next instant
    /// while this one writes would need connections beyond the lanes'.
    async fn fire(&self, at: DateTime<Utc>, stop: &watch::Receiver<bool>) -> sqlx::Result<usize> {
        // Tasks of their own, so that the lanes execute runs on several cores.
        let lanes: Vec<_> = (0..self.config.lanes.max(1))
            .map(|_| tokio::spawn(self.clone().lane(at, stop.clone())))
            .collect();
        let mut locked = 0;
        let mut failed = None;
        for lane in lanes {
            match lane.await {
                Ok(Ok(n)) => locked += n,
                Ok(Err(e)) => failed = Some(e),
                Err(e) => failed = Some(sqlx::Error::Protocol(format!("a fire lane failed: {e}"))),
            }
        }
        failed.map_or(Ok(locked), Err)
    }

    /// One lane of [`Scheduler::fire`]: locks what it can of the schedules due by `at`, waits
    /// for `at`, fires them and commits; returns how many schedules it locked.
    async fn lane(self, at: DateTime<Utc>, mut stop: watch::Receiver<bool>) -> sqlx::Result<usize> {
        let began = Instant::now();
        let batch = self.config.batch.max(1);
        let mut tx = self.db.begin().await?;
        let mut due = Vec::new();
        loop {
            let after = due.last().map(|s: &DueSchedule| (s.next_fire_at, s.flow_id));
            let page = schedule_store::lock_due(&mut tx, at, after, batch).await?;
            let short = (page.len() as i64) < batch;
            due.extend(page);
            if short {
                break;
            }
        }
        if due.is_empty() {
            return Ok(0);
        }
        // The flows' graphs too, so that at the fire time nothing is left to read.
        let graphs = match &self.in_place {
            Some(in_place) => {
                let wanted: Vec<_> = due
                    .iter()
                    .map(|s| (s.project_id.as_str(), s.flow_id, s.flow_version))
                    .collect();
                in_place.graphs(&self.db, &wanted).await
            }
            None => HashMap::new(),
        };
        // Planned before the instant too, as of the instant: what is left for it is the runs.
        let grace = chrono::Duration::from_std(self.config.misfire_grace)
            .unwrap_or(chrono::Duration::zero());
        let plan = plan_batch(&due, at, grace);
        for (flow, error) in &plan.broken {
            tracing::warn!(%flow, %error, "schedule cannot fire");
            schedule_store::set_broken(&mut *tx, *flow, error).await?;
        }
        let locked = began.elapsed();
        // Stopping meanwhile rolls back: the schedules stay due for whoever runs next.
        if let Ok(wait) = (at - Utc::now()).to_std() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|stopped| *stopped) => return Ok(0),
            }
        }
        let fired_at = Instant::now();

        // Every run is started before any is written, so that the last starts about as soon as
        // the first; only runs whose records would not fit one statement are written sooner,
        // which also bounds what the lane holds in memory.
        let mut stored = HashSet::new();
        let (mut started, mut first, mut bytes) = (Vec::new(), 0, 0);
        for fire in &plan.fires {
            let (run, executed) = self.start_run(fire, &graphs).await;
            // Counted, not serialized: the next run starts sooner; `store` builds the text.
            let size = RunJson::measure(&run, executed.as_ref());
            bytes += size;
            started.push((run, executed, size));
            if bytes >= runs::MAX_BATCH_BYTES {
                let fires = &plan.fires[first..first + started.len()];
                stored.extend(self.store(&mut tx, fires, &started).await?);
                (first, bytes) = (first + started.len(), 0);
                started.clear();
            }
        }
        let executed_ms = fired_at.elapsed().as_secs_f64() * 1e3;
        let fires = &plan.fires[first..];
        stored.extend(self.store(&mut tx, fires, &started).await?);
        for next in plan.next.chunks(self.config.batch.max(1) as usize) {
            schedule_store::advance(&mut *tx, next).await?;
        }
        tx.commit().await?;

        for fire in &plan.fires {
            let flow = fire.schedule.flow_id;
            if stored.contains(&fire.run_id) {
                tracing::info!(%flow, run = %fire.run_id, fire = %fire.at, "schedule fired");
            } else {
                tracing::debug!(%flow, fire = %fire.at, "fire time already claimed");
            }
        }
        tracing::debug!(
            schedules = due.len(),
            runs = stored.len(),
            locked_ms = locked.as_secs_f64() * 1e3,
            executed_ms,
            committed_ms = fired_at.elapsed().as_secs_f64() * 1e3,
            "fire batch committed"
        );
        Ok(due.len())
    }

    /// The run of a fire, executed now if its flow is self-contained (`Some`); its start time
    /// is when it began.
    async fn start_run(
        &self,
        fire: &PlannedFire<'_>,
        graphs: &HashMap<(Uuid, i32), Arc<FlowGraph>>,
    ) -> (NewRun, Option<Executed>) {
        let run = fire.run(Utc::now());
        let graph = graphs.get(&(run.flow_id, run.flow_version));
        let executed = match (&self.in_place, graph) {
            (Some(in_place), Some(graph)) => {
                in_place.execute_graph(graph.clone(), &run, RunMode::Auto).await
            }
            // Queued: a flow that could not be loaded fails in a worker, which says why.
            _ => None,
        };
        (run, executed)
    }

    /// Claims the fire times and stores the runs of those claimed now (`started[i]` is the run
    /// of `fires[i]`, with its [`RunJson::measure`]), in statements cut by count and by bytes;
    /// returns the ids stored.
    async fn store(
        &self,
        tx: &mut PgConnection,
        fires: &[PlannedFire<'_>],
        started: &[(NewRun, Option<Executed>, usize)],
    ) -> sqlx::Result<HashSet<Uuid>> {
        let page = self.config.batch.max(1) as usize;
        let mut stored = HashSet::new();
        let mut from = 0;
        while from < started.len() {
            // PostgreSQL refuses a statement of more than 1 GB, which would fail the lane on
            // every pass.
            let n = runs::batch_len(started[from..].iter().take(page).map(|(.., size)| *size));
            let (fires, chunk) = (&fires[from..from + n], &started[from..from + n]);
            from += n;
            let claims: Vec<FireClaim> = fires.iter().map(PlannedFire::claim).collect();
            let claimed: HashSet<Uuid> =
                schedule_store::claim_fires(&mut *tx, &claims).await?.into_iter().collect();
            let chunk: Vec<_> =
                chunk.iter().filter(|(run, ..)| claimed.contains(&run.id)).collect();
            let json: Vec<RunJson> = chunk
                .iter()
                .map(|(run, executed, _)| RunJson::new(run, executed.as_ref()))
                .collect();
            let accepted: Vec<Accepting<'_>> = chunk
                .iter()
                .zip(&json)
                .map(|((run, executed, _), json)| match executed {
                    Some(done) => (run, Acceptance::Executed(done), json),
                    None => (run, Acceptance::Queued, json),
                })
                .collect();
            stored.extend(store::accept_encoded_in(&mut *tx, SHARED_SLOT, &accepted).await?);
        }
        Ok(stored)
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
