//! Schedule triggers end to end: DST through the preview route, firing, disabling and
//! re-arming, refusal of impossible schedules, misfires, and several processes (or loops)
//! sharing one database.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::watch;
use workbench_scheduler::SchedulerConfig;

use crate::crash::{start_process, terminate};
use crate::support::{temp_dir, TestApp};

/// A flow whose only step is a `Schedule` trigger.
fn scheduled(name: &str, op: &str, config: Value) -> Value {
    let mut flow = json!({"name": name, "steps": [{"stepId": "tick", "name": "tick", "call": {
        "connectorRef": "Schedule", "connectorVersion": "1",
        "triggerRef": {"refId": op, "refName": op, "type": "schedule", "input": {},
                       "config": null}},
        "transmit": []}]});
    flow["steps"][0]["call"]["triggerRef"]["config"] = config;
    flow
}

fn every_second() -> Value {
    json!({"first_run": "2020-01-01T00:00:00", "every": 1, "unit": "second", "misfire": "skip"})
}

/// (flow version, fire time) of every run of the flow, oldest first.
async fn fired(db: &PgPool, flow_id: &str) -> Vec<(i32, String)> {
    sqlx::query_as(
        "SELECT flow_version, input->>'fire_time' FROM runs \
         WHERE flow_id = $1::uuid AND run_model = 'auto' ORDER BY start_time",
    )
    .bind(flow_id)
    .fetch_all(db)
    .await
    .unwrap()
}

fn pool(app: &TestApp) -> &PgPool {
    &app.server.as_ref().unwrap().pool
}

async fn set_enabled(app: &TestApp, flow_id: &str, enabled: bool) {
    let action = if enabled { "enable" } else { "disable" };
    let (status, body) = app.post(&format!("/v1/{{p}}/flows/{flow_id}/{action}"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn preview(app: &TestApp, flow_id: &str, query: &str) -> (StatusCode, Value) {
    app.get(&format!("/v1/{{p}}/flows/{flow_id}/schedule/preview?{query}")).await
}

fn column(body: &Value, key: &str) -> Vec<String> {
    let times = body["fire_times"].as_array().unwrap_or_else(|| panic!("{body}"));
    times.iter().map(|t| t[key].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn preview_shows_one_fire_per_dst_day_in_berlin_and_new_york() {
    let app = TestApp::spawn().await;
    let berlin = app
        .create_flow(&scheduled(
            "berlin 02:30",
            "daily",
            json!({"time": "02:30", "timezone": "Europe/Berlin"}),
        ))
        .await;
    let (status, body) = preview(&app, &berlin, "count=3&after=2027-03-27T00:00:00Z").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["timezone"], "Europe/Berlin");
    assert_eq!(body["armed"], Value::Null, "a disabled flow is not armed");
    assert_eq!(
        column(&body, "utc"),
        ["2027-03-27T01:30:00Z", "2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"]
    );
    // 02:30 does not exist on 2027-03-28: the run comes when the clock jumps to 03:00.
    assert_eq!(column(&body, "local")[1], "2027-03-28T03:00:00+02:00");
    let (_, body) = preview(&app, &berlin, "count=3&after=2027-10-30T00:00:00Z").await;
    // 02:30 occurs twice on 2027-10-31: only the first (summer time) occurrence fires.
    assert_eq!(
        column(&body, "utc"),
        ["2027-10-30T00:30:00Z", "2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"]
    );
    assert_eq!(column(&body, "local")[1], "2027-10-31T02:30:00+02:00");

    let new_york = app
        .create_flow(&scheduled(
            "new york",
            "cron",
            json!({"expression": "30 1-2 * * *", "timezone": "America/New_York"}),
        ))
        .await;
    let (_, body) = preview(&app, &new_york, "count=3&after=2027-03-14T00:00:00Z").await;
    // 01:30 EST, then 02:30 (skipped) fires at the 03:00 EDT jump, then 01:30 EDT next day.
    assert_eq!(
        column(&body, "utc"),
        ["2027-03-14T06:30:00Z", "2027-03-14T07:00:00Z", "2027-03-15T05:30:00Z"]
    );
    let (_, body) = preview(&app, &new_york, "count=3&after=2027-11-07T00:00:00Z").await;
    // 01:30 repeats; it fires once at 01:30 EDT, then 02:30 EST.
    assert_eq!(
        column(&body, "utc"),
        ["2027-11-07T05:30:00Z", "2027-11-07T07:30:00Z", "2027-11-08T06:30:00Z"]
    );

    let (status, body) = preview(&app, &berlin, "count=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "MSSI.00020011", "{body}");
    let unknown = uuid::Uuid::new_v4();
    let (status, body) = preview(&app, &unknown.to_string(), "count=2").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "MSSI.00011001", "{body}");
    let manual_flow = crate::support::flow("manual", vec![crate::support::trigger(&[])]);
    let manual = app.create_flow(&manual_flow).await;
    let (status, body) = preview(&app, &manual, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "MSSI.00020011", "{body}");
}

#[tokio::test]
async fn impossible_schedules_are_refused_when_saved() {
    let app = TestApp::spawn().await;
    let cases = [
        ("cron", json!({"expression": "0 0 30 2 *"}), "never fires"),
        ("cron", json!({"expression": "0 0 12 * * * 2027"}), "has 7 fields"),
        ("daily", json!({"time": "02:30", "timezone": "Europe/Atlantis"}), "unknown time zone"),
        ("repeat", json!({"first_run": "2027-01-01T00:00", "every": 0}), "positive integer"),
    ];
    for (op, config, expected) in cases {
        let (status, body) = app.post("/v1/{p}/flows", &scheduled("bad", op, config)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error_code"], "MSSI.00020011", "{body}");
        let message = body["error_msg"].as_str().unwrap();
        assert!(message.contains("step `tick`") && message.contains(expected), "{message}");
    }
}

#[tokio::test]
async fn an_every_second_schedule_fires_once_a_second_until_disabled() {
    let app = TestApp::spawn().await;
    let id = app.create_flow(&scheduled("ticker", "repeat", every_second())).await;
    set_enabled(&app, &id, true).await;
    let seconds = 4;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    set_enabled(&app, &id, false).await;

    let runs = fired(pool(&app), &id).await;
    let n = runs.len() as u64;
    assert!((seconds - 1..=seconds + 1).contains(&n), "{n} runs in {seconds} s: {runs:?}");
    let mut times: Vec<_> = runs.iter().map(|(_, t)| t.clone()).collect();
    times.dedup();
    assert_eq!(times.len(), runs.len(), "a fire time ran twice: {runs:?}");

    // Disabling commits with the schedule's removal: nothing fires afterwards.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fired(pool(&app), &id).await.len(), runs.len(), "fired after disable");

    // The run is prepared ahead of its fire time but never starts before it, and the
    // server's loop executed it in place: no worker ever claimed it.
    let early: Vec<(uuid::Uuid, i32)> = sqlx::query_as(
        "SELECT id, claims FROM runs WHERE flow_id = $1::uuid \
         AND (start_time < (input->>'fire_time')::timestamptz OR claims <> 0)",
    )
    .bind(&id)
    .fetch_all(pool(&app))
    .await
    .unwrap();
    assert!(early.is_empty(), "started before the fire time, or queued: {early:?}");

    // The trigger step turns the fire time into its outputs.
    let (run_id,): (uuid::Uuid,) =
        sqlx::query_as("SELECT id FROM runs WHERE flow_id = $1::uuid ORDER BY start_time LIMIT 1")
            .bind(&id)
            .fetch_one(pool(&app))
            .await
            .unwrap();
    let detail = app.wait_run(&id, &run_id.to_string(), Duration::from_secs(20)).await;
    assert_eq!(detail["status"], "success", "{detail}");
    let output = &detail["steps"][0]["output"];
    let fire = chrono::DateTime::parse_from_rfc3339(&runs[0].1).unwrap();
    assert_eq!(output["trigger_timestamp"], fire.timestamp_millis(), "{detail}");
    assert_eq!(output["timezone"], "UTC");
}

#[tokio::test]
async fn an_update_re_arms_the_schedule_with_the_new_version() {
    let app = TestApp::spawn().await;
    let id = app.create_flow(&scheduled("v1", "repeat", every_second())).await;
    set_enabled(&app, &id, true).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while fired(pool(&app), &id).await.is_empty() {
        assert!(Instant::now() < deadline, "the schedule never fired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (status, body) =
        app.put(&format!("/v1/{{p}}/flows/{id}"), &scheduled("v2", "repeat", every_second())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let before = fired(pool(&app), &id).await.len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let runs = fired(pool(&app), &id).await;
    let after = &runs[before..];
    assert!(!after.is_empty(), "the re-armed schedule did not fire");
    assert!(after.iter().all(|(v, _)| *v == 2), "an old version fired: {runs:?}");

    let (_, body) = preview(&app, &id, "count=1").await;
    assert_eq!(body["armed"]["version"], 2, "{body}");
    assert_eq!(body["armed"]["state"], "armed", "{body}");
    set_enabled(&app, &id, false).await;
}

#[tokio::test]
async fn two_processes_on_one_database_fire_each_second_once() {
    let database_url = workbench_test_support::fresh_database_url().await;
    let data_dir = temp_dir("sched2");
    let (mut first, addr) = start_process(&data_dir, Some(&database_url)).await;
    let (mut second, _) = start_process(&data_dir, Some(&database_url)).await;
    let app = TestApp::attach(addr, &data_dir);
    let db = PgPool::connect(&database_url).await.unwrap();

    let id = app.create_flow(&scheduled("shared", "repeat", every_second())).await;
    set_enabled(&app, &id, true).await;
    let seconds = 5;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    set_enabled(&app, &id, false).await;

    let runs = fired(&db, &id).await;
    let n = runs.len() as u64;
    assert!((seconds - 1..=seconds + 1).contains(&n), "{n} runs in {seconds} s: {runs:?}");
    let mut times: Vec<_> = runs.iter().map(|(_, t)| t.clone()).collect();
    times.sort();
    times.dedup();
    assert_eq!(times.len(), runs.len(), "a fire time ran twice: {runs:?}");
    let claimed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM schedule_fires").fetch_one(&db).await.unwrap();
    assert_eq!(claimed as usize, runs.len());
    db.close().await;
    assert!(terminate(&mut first).success());
    assert!(terminate(&mut second).success());
}

#[tokio::test]
async fn three_schedulers_in_small_batches_fire_each_second_of_many_flows_once() {
    let app = TestApp::spawn().await;
    let db = pool(&app).clone();
    // Two more loops beside the server's, in batches of a few schedules, so the batches of
    // all three interleave over the same due rows.
    let (stop, stopped) = watch::channel(false);
    let small = SchedulerConfig { batch: 3, ..SchedulerConfig::default() };
    let extra = [
        workbench_scheduler::start(db.clone(), small.clone(), None, stopped.clone()),
        workbench_scheduler::start(db.clone(), small, None, stopped),
    ];
    let mut ids = Vec::new();
    for i in 0..24 {
        ids.push(app.create_flow(&scheduled(&format!("many {i}"), "repeat", every_second())).await);
    }
    for id in &ids {
        set_enabled(&app, id, true).await;
    }
    let seconds = 4;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    for id in &ids {
        set_enabled(&app, id, false).await;
    }
    stop.send(true).unwrap();
    for loop_task in extra {
        loop_task.await.unwrap();
    }

    let mut all = Vec::new();
    for id in &ids {
        let runs = fired(&db, id).await;
        let n = runs.len() as u64;
        // More when disabling the 24 flows one after another took a while: a disable waits
        // for a fire time the loops already hold.
        assert!(n >= seconds - 1, "{id}: {n} runs in {seconds} s");
        all.extend(runs.into_iter().map(|(_, at)| (id.clone(), at)));
    }
    let fires = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), fires, "a fire time ran twice");
    let claimed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM schedule_fires").fetch_one(&db).await.unwrap();
    assert_eq!(claimed as usize, fires);
}

#[tokio::test]
async fn a_fire_time_held_by_a_loop_that_stops_before_it_is_fired_once_by_another() {
    let app = TestApp::spawn().await;
    let db = pool(&app).clone();
    // A second loop that locks fire times long before they come, and is stopped while it
    // holds one: its transaction rolls back, and the server's own loop fires that time.
    let (stop, stopped) = watch::channel(false);
    let early = SchedulerConfig { lead: Duration::from_secs(30), ..SchedulerConfig::default() };
    let holder = workbench_scheduler::start(db.clone(), early, None, stopped);
    let every_ten = json!({"first_run": "2020-01-01T00:00:00", "every": 10, "unit": "second",
                           "misfire": "skip"});
    let id = app.create_flow(&scheduled("held", "repeat", every_ten)).await;
    set_enabled(&app, &id, true).await;

    // Wait until a fire time at least 3 s away is locked (by the holder: the server's loop
    // locks only 1 s ahead).
    let deadline = Instant::now() + Duration::from_secs(30);
    let held = loop {
        assert!(Instant::now() < deadline, "no loop ever held the schedule ahead of time");
        let next: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT next_fire_at FROM schedules WHERE flow_id = $1::uuid")
                .bind(&id)
                .fetch_one(&db)
                .await
                .unwrap();
        let mut tx = db.begin().await.unwrap();
        let locked =
            sqlx::query("SELECT 1 FROM schedules WHERE flow_id = $1::uuid FOR UPDATE NOWAIT")
                .bind(&id)
                .execute(&mut *tx)
                .await
                .is_err();
        drop(tx);
        match next {
            Some(at) if locked && at - Utc::now() > chrono::Duration::seconds(3) => break at,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    stop.send(true).unwrap();
    holder.await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let fired_held = || async {
        fired(&db, &id)
            .await
            .into_iter()
            .filter(|(_, at)| DateTime::parse_from_rfc3339(at).unwrap() == held)
            .count()
    };
    while fired_held().await == 0 {
        assert!(Instant::now() < deadline, "the fire time the stopped loop held never fired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    set_enabled(&app, &id, false).await;
    assert_eq!(fired_held().await, 1);
    let runs = fired(&db, &id).await;
    let mut times: Vec<_> = runs.iter().map(|(_, t)| t.clone()).collect();
    times.dedup();
    assert_eq!(times.len(), runs.len(), "a fire time ran twice: {runs:?}");
}

#[tokio::test]
async fn fire_times_missed_while_down_run_as_the_misfire_policy_says() {
    let app = TestApp::spawn().await;
    let db = pool(&app).clone();
    let minutely = |misfire: &str| {
        json!({"first_run": "2020-01-01T00:00:00", "every": 1, "unit": "minute",
               "misfire": misfire, "misfire_max": 3})
    };
    let all = app.create_flow(&scheduled("all", "repeat", minutely("all"))).await;
    let skip = app.create_flow(&scheduled("skip", "repeat", minutely("skip"))).await;
    for id in [&all, &skip] {
        set_enabled(&app, id, true).await;
    }
    let armed = "SELECT count(*) FROM schedules WHERE state = 'armed'";
    let deadline = Instant::now() + Duration::from_secs(10);
    while sqlx::query_scalar::<_, i64>(armed).fetch_one(&db).await.unwrap() < 2 {
        assert!(Instant::now() < deadline, "the schedules were never armed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // As if the server had been down for ten minutes: both are due ten fire times ago.
    let rows: Vec<(uuid::Uuid, DateTime<Utc>)> = sqlx::query_as(
        "UPDATE schedules SET next_fire_at = next_fire_at - interval '10 minutes' \
         RETURNING flow_id, next_fire_at + interval '10 minutes'",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    sqlx::query("SELECT pg_notify('workbench_schedules', '')").execute(&db).await.unwrap();
    let next = |id: &str| rows.iter().find(|(f, _)| f.to_string() == id).unwrap().1;
    let caught_up = "SELECT count(*) FROM schedules s \
                     JOIN UNNEST($1::uuid[], $2::timestamptz[]) AS n(flow_id, at) \
                     ON s.flow_id = n.flow_id AND s.next_fire_at >= n.at";
    let (flows, nexts): (Vec<_>, Vec<_>) = rows.iter().copied().unzip();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let query = sqlx::query_scalar::<_, i64>(caught_up).bind(&flows).bind(&nexts);
        if query.fetch_one(&db).await.unwrap() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the missed fire times were not handled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in [&all, &skip] {
        set_enabled(&app, id, false).await;
    }

    // Minutes before the flow's next fire time that ran, latest last; the last one may have
    // been on time (within the grace).
    let minutes_before = |id: &str, runs: Vec<(i32, String)>| -> Vec<i64> {
        let next = next(id);
        let times = runs.iter().map(|(_, at)| DateTime::parse_from_rfc3339(at).unwrap());
        let mut ran: Vec<_> =
            times.filter(|at| *at < next).map(|at| (next - at.to_utc()).num_minutes()).collect();
        ran.sort_unstable_by(|a, b| b.cmp(a));
        ran
    };
    let all_ran = minutes_before(&all, fired(&db, &all).await);
    assert!(all_ran == [3, 2, 1] || all_ran == [4, 3, 2, 1], "all, at most 3: {all_ran:?}");
    let skip_ran = minutes_before(&skip, fired(&db, &skip).await);
    assert!(skip_ran.is_empty() || skip_ran == [1], "skip: {skip_ran:?}");
}

/// A flow of a `Schedule` trigger (far in the future) and four transforms, all executed in
/// place, whose step records come to about 28 MB a run: the first transform outputs a 3.5 MB
/// literal, each next one the output before it.
fn heavy_scheduled(name: &str) -> Value {
    let mut flow = scheduled(
        name,
        "repeat",
        json!({"first_run": "2099-01-01T00:00:00", "every": 1, "unit": "hour",
               "misfire": "skip"}),
    );
    flow["steps"][0]["transmit"] = json!(["x1"]);
    let big = "y".repeat(3 * 1024 * 1024 + 512 * 1024);
    let steps = flow["steps"].as_array_mut().unwrap();
    for i in 1..=4 {
        let value =
            if i == 1 { json!(big) } else { json!(format!("{{{{ $.steps.x{} }}}}", i - 1)) };
        let next = if i < 4 { vec![format!("x{}", i + 1)] } else { Vec::new() };
        let next: Vec<&str> = next.iter().map(String::as_str).collect();
        let step = crate::support::step(
            &format!("x{i}"),
            "DataTransform",
            "transform",
            json!({ "value": value }),
            &next,
        );
        steps.push(step);
    }
    flow
}

/// The runs of one fire time executed in place carry their step records into the statements
/// that store them, which PostgreSQL takes only up to 1 GB. A burst whose runs together
/// outgrow that must be stored in pieces, not fail (and be retried, failing) for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_large_in_place_runs_is_stored_in_pieces() {
    let database_url = workbench_test_support::fresh_database_url().await;
    let url = database_url.clone();
    let mut app = TestApp::spawn_with(move |s| s.database_url = Some(url)).await;
    let mut ids = Vec::new();
    for i in 0..44 {
        let id = app.create_flow(&heavy_scheduled(&format!("heavy {i}"))).await;
        set_enabled(&app, &id, true).await;
        ids.push(id);
    }
    let db = pool(&app).clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let armed: i64 = sqlx::query_scalar("SELECT count(*) FROM schedules WHERE state = 'armed'")
            .fetch_one(&db)
            .await
            .unwrap();
        if armed == ids.len() as i64 {
            break;
        }
        assert!(Instant::now() < deadline, "only {armed} schedules armed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The server's own loop (two lanes) goes; one loop of one lane fires all 44 at once.
    app.server.take().unwrap().shutdown().await.unwrap();
    let db = PgPool::connect(&database_url).await.unwrap();
    sqlx::query("UPDATE schedules SET next_fire_at = now()").execute(&db).await.unwrap();
    let mut registry = workbench_engine::builtin_registry();
    workbench_scheduler::register(&mut registry);
    let engine = std::sync::Arc::new(workbench_engine::Engine::new(
        std::sync::Arc::new(registry),
        std::sync::Arc::new(workbench_engine::NoConnections),
        workbench_engine::Limits::default(),
    ));
    let in_place = workbench_engine::runs::InPlace::new(engine, Default::default());
    let (stop, stopped) = watch::channel(false);
    let one_lane = SchedulerConfig { lanes: 1, ..SchedulerConfig::default() };
    let scheduler = workbench_scheduler::start(db.clone(), one_lane, Some(in_place), stopped);

    // Generous: storing 1.2 GB of step records takes about two minutes on a 2-core machine in
    // a debug build. Without pieces, no run is ever stored.
    let deadline = Instant::now() + Duration::from_secs(300);
    let stored = loop {
        let stored: Vec<(String, i32)> = sqlx::query_as(
            "SELECT status, (SELECT count(*)::int FROM run_records s WHERE s.run_id = r.id) \
             FROM runs r WHERE run_model = 'auto'",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        if stored.len() >= ids.len() || Instant::now() > deadline {
            break stored;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    stop.send(true).unwrap();
    scheduler.await.unwrap();
    assert_eq!(stored.len(), ids.len(), "runs stored: {}", stored.len());
    for (status, steps) in &stored {
        assert_eq!((status.as_str(), *steps), ("success", 5), "executed in place in full");
    }
}
