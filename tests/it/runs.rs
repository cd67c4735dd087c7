//! Runs and their history: R1–R7, R10.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{flow, step, trigger, TestApp};

fn echo_flow(name: &str) -> Value {
    flow(
        name,
        vec![
            trigger(&["x"]),
            step(
                "x",
                "DataTransform",
                "transform",
                json!({"value": {"got": "{{ $.trigger.body.n }}"}}),
                &[],
            ),
        ],
    )
}

#[tokio::test]
async fn a_manual_run_is_recorded_step_by_step() {
    let app = TestApp::spawn().await;
    let (flow_id, run_id) = app.start_run(&echo_flow("echo"), json!({"n": 5})).await;
    let detail = app.wait_run(&flow_id, &run_id, Duration::from_secs(20)).await;
    assert_eq!(detail["status"], "success", "{detail}");
    assert_eq!(detail["run_model"], "manual");
    assert!(detail["start_time"].as_str().unwrap().parse::<i64>().is_ok());
    let steps = detail["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1]["stepId"], "x");
    assert_eq!(steps[1]["lastRunningStatus"], "success");
    assert_eq!(steps[1]["output"], json!({"got": 5}));
    assert!(steps[1]["cost"].is_i64());

    let (_, runs) = app.get(&format!("/v2/{{p}}/flows/{flow_id}/running-history")).await;
    assert_eq!((runs["total"].as_i64(), runs["count"].as_i64()), (Some(1), Some(1)));
    assert_eq!(runs["histories"][0]["id"], run_id);
    assert_eq!(runs["histories"][0]["running_times"], Value::Null);
    let (_, latest) = app.get("/v2/{p}/flows/running-history").await;
    assert_eq!(latest["histories"][0]["running_times"], 1);
    let (_, v1) = app.get(&format!("/v1/{{p}}/flows/{flow_id}/running-history/{run_id}")).await;
    assert_eq!(v1["id"], run_id);
}

#[tokio::test]
async fn disabled_flows_run_only_in_test_mode() {
    let app = TestApp::spawn().await;
    let mut f = echo_flow("mocked");
    f["steps"][1]["mockOutput"] = json!("{\"mocked\": true}");
    let id = app.create_flow(&f).await;
    let path = format!("/v1/{{p}}/flows/{id}/run");
    let (status, body) = app.post(&path, &json!({"run_mode": "manual"})).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MSSI.00020018"))
    );
    let (status, body) = app.post(&path, &json!({"run_mode": "sideways"})).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MSSI.00020011"))
    );

    let (status, body) = app
        .post(&path, &json!({"run_mode": "test", "input": {"n": 1}, "trigger_timing": "editFlow"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    let run = body["running_id"].as_str().unwrap();
    let detail = app.wait_run(&id, run, Duration::from_secs(20)).await;
    assert_eq!(detail["status"], "success");
    assert_eq!(detail["run_model"], "test");
    assert_eq!(detail["steps"][1]["output"], json!({"mocked": true}));
}

#[tokio::test]
async fn a_failing_step_fails_the_run_with_its_message() {
    let app = TestApp::spawn().await;
    let f = flow(
        "fails",
        vec![
            trigger(&["x"]),
            step(
                "x",
                "DataTransform",
                "transform",
                json!({"value": "{{ $.trigger.body.missing }}"}),
                &[],
            ),
        ],
    );
    let (flow_id, run_id) = app.start_run(&f, json!({})).await;
    let detail = app.wait_run(&flow_id, &run_id, Duration::from_secs(20)).await;
    assert_eq!(detail["status"], "fail");
    assert!(detail["message"].as_str().unwrap().contains('x'), "{detail}");
    assert_eq!(detail["steps"][1]["lastRunningStatus"], "fail");

    let (_, failed) =
        app.get(&format!("/v2/{{p}}/flows/{flow_id}/running-history?status=fail")).await;
    assert_eq!(failed["count"], 1);
    let (_, ok) =
        app.get(&format!("/v2/{{p}}/flows/{flow_id}/running-history?status=success")).await;
    assert_eq!(ok["count"], 0);
}

#[tokio::test]
async fn history_filters_are_checked() {
    let app = TestApp::spawn().await;
    let (flow_id, run_id) = app.start_run(&echo_flow("filters"), json!({"n": 1})).await;
    app.wait_run(&flow_id, &run_id, Duration::from_secs(20)).await;
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let range = format!(
        "{}to{}",
        fmt(now - chrono::TimeDelta::hours(1)),
        fmt(now + chrono::TimeDelta::hours(1))
    );
    let (status, body) =
        app.get(&format!("/v2/{{p}}/flows/running-history?time_range={range}")).await;
    assert_eq!((status, body["count"].as_i64()), (StatusCode::OK, Some(1)), "{body}");
    let old = "2020-11-10T00:00:00Z%20to%202020-11-12T00:00:00Z";
    let (_, body) = app.get(&format!("/v2/{{p}}/flows/running-history?time_range={old}")).await;
    assert_eq!(body["count"], 0);

    for (query, code) in [
        ("time_range=yesterday", "MSSI.00020005"),
        ("time_range=2020-11-12T00:00:00Zto2020-11-10T00:00:00Z", "MSSI.00020005"),
        ("time_range=2020-01-01T00:00:00Zto2020-03-01T00:00:00Z", "MSSI.00020015"),
        ("status=maybe", "MSSI.00020011"),
        ("limit=0", "MSSI.00020011"),
        ("offset=x", "MSSI.00020011"),
    ] {
        let (status, body) = app.get(&format!("/v2/{{p}}/flows/running-history?{query}")).await;
        assert_eq!(
            (status, body["error_code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{query}"
        );
    }
    let (_, paged) = app.get("/v2/{p}/flows/running-history?offset=2&limit=1").await;
    assert_eq!(
        (paged["count"].as_i64(), paged["histories"].as_array().map(Vec::len)),
        (Some(1), Some(0))
    );

    let ghost = uuid::Uuid::new_v4();
    let (_, body) = app.get(&format!("/v2/{{p}}/flows/{flow_id}/running-history/{ghost}")).await;
    assert_eq!(body["error_code"], "MSSI.00020012");
    let other = app.create_flow(&echo_flow("other")).await;
    let (_, body) = app.get(&format!("/v2/{{p}}/flows/{other}/running-history/{run_id}")).await;
    assert_eq!(body["error_code"], "MSSI.00020012");
}

#[tokio::test]
async fn the_legacy_webhook_starts_an_auto_run() {
    let app = TestApp::spawn().await;
    let id = app.create_flow(&echo_flow("hooked")).await;
    let (_, meta) = app.get(&format!("/v2/{{p}}/flows/{id}")).await;
    let hook = meta["webhook"].as_str().unwrap().to_owned();
    let path = format!("/v1/{{p}}/flows/webhook/trigger/{hook}");
    let (_, body) = app.post(&path, &json!({"input": "{\"n\": 9}"})).await;
    assert_eq!(body["error_code"], "MSSI.00020018", "disabled flows do not fire");
    app.post(&format!("/v1/{{p}}/flows/{id}/enable"), &json!({})).await;
    let (status, body) = app.post(&path, &json!({"input": "{\"n\": 9}"})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true, "message": null})));

    let (_, runs) = app.get(&format!("/v2/{{p}}/flows/{id}/running-history")).await;
    let run = runs["histories"][0]["id"].as_str().unwrap().to_owned();
    let detail = app.wait_run(&id, &run, Duration::from_secs(20)).await;
    assert_eq!(detail["run_model"], "auto");
    assert_eq!(detail["steps"][1]["output"], json!({"got": 9}));
    let (_, body) = app.post("/v1/{p}/flows/webhook/trigger/nope", &json!({"input": "x"})).await;
    assert_eq!(body["error_code"], "MSSI.00020001");
}

#[tokio::test]
async fn a_run_keeps_the_version_it_started_on() {
    let app = TestApp::spawn().await;
    let versioned = |tag: &str| {
        flow(
            "versioned",
            vec![
                trigger(&["wait"]),
                step("wait", "Delay", "delay", json!({"ms": 1500}), &["x"]),
                step("x", "DataTransform", "transform", json!({"value": tag}), &[]),
            ],
        )
    };
    let (flow_id, run_id) = app.start_run(&versioned("v1"), json!({})).await;
    let (status, _) = app.put(&format!("/v1/{{p}}/flows/{flow_id}"), &versioned("v2")).await;
    assert_eq!(status, StatusCode::OK);

    let detail = app.wait_run(&flow_id, &run_id, Duration::from_secs(20)).await;
    assert_eq!(detail["status"], "success", "{detail}");
    assert_eq!(detail["steps"][2]["output"], "v1");
    assert_eq!(detail["steps"][2]["call"]["actionRef"]["input"]["value"], "v1");
    let (_, runs) = app.get(&format!("/v2/{{p}}/flows/{flow_id}/running-history")).await;
    assert_eq!(runs["histories"][0]["flow_version_id"], "1");

    let next = app.run(&flow_id, json!({})).await;
    let detail = app.wait_run(&flow_id, &next, Duration::from_secs(20)).await;
    assert_eq!(detail["steps"][2]["output"], "v2");
}

#[tokio::test]
async fn pruning_removes_old_finished_runs_only() {
    let app = TestApp::spawn().await;
    let (flow_id, old) = app.start_run(&echo_flow("pruned"), json!({"n": 1})).await;
    app.wait_run(&flow_id, &old, Duration::from_secs(20)).await;
    let recent = app.run(&flow_id, json!({"n": 2})).await;
    app.wait_run(&flow_id, &recent, Duration::from_secs(20)).await;

    let pool = &app.server.as_ref().unwrap().pool;
    let old_id: uuid::Uuid = old.parse().unwrap();
    sqlx::query("UPDATE runs SET start_time = now() - interval '40 days' WHERE id = $1")
        .bind(old_id)
        .execute(pool)
        .await
        .unwrap();
    let cutoff = chrono::Utc::now() - chrono::TimeDelta::days(30);
    let pruned = workbench_engine::store::prune_runs(pool, cutoff).await.unwrap();
    assert_eq!(pruned, 1);

    let (_, runs) = app.get(&format!("/v2/{{p}}/flows/{flow_id}/running-history")).await;
    assert_eq!((runs["count"].as_i64(), runs["total"].as_i64()), (Some(1), Some(1)), "{runs}");
    assert_eq!(runs["histories"][0]["id"], recent);
    let (_, latest) = app.get("/v2/{p}/flows/running-history").await;
    assert_eq!(latest["histories"][0]["running_times"], 1, "the flow's counter follows");
    let (_, gone) = app.get(&format!("/v2/{{p}}/flows/{flow_id}/running-history/{old}")).await;
    assert_eq!(gone["error_code"], "MSSI.00020012");
    let steps: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT DISTINCT run_id FROM run_records")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(steps, [recent.parse::<uuid::Uuid>().unwrap()], "the pruned run's steps went too");
}

#[tokio::test]
async fn pruning_the_runs_of_a_deleted_flow_leaves_no_counts_behind() {
    let app = TestApp::spawn().await;
    let (flow_id, run_id) = app.start_run(&echo_flow("deleted"), json!({"n": 1})).await;
    app.wait_run(&flow_id, &run_id, Duration::from_secs(20)).await;
    let (status, body) = app.post(&format!("/v1/{{p}}/flows/{flow_id}/disable"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.delete(&format!("/v1/{{p}}/flows/{flow_id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The run outlives its flow, and is pruned later.
    let pool = &app.server.as_ref().unwrap().pool;
    let flow: uuid::Uuid = flow_id.parse().unwrap();
    sqlx::query("UPDATE runs SET start_time = now() - interval '40 days' WHERE flow_id = $1")
        .bind(flow)
        .execute(pool)
        .await
        .unwrap();
    let cutoff = chrono::Utc::now() - chrono::TimeDelta::days(30);
    assert_eq!(workbench_engine::store::prune_runs(pool, cutoff).await.unwrap(), 1);

    let counts: i64 = sqlx::query_scalar("SELECT count(*) FROM flow_run_counts WHERE flow_id = $1")
        .bind(flow)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(counts, 0, "a deleted flow keeps no count rows");
}

#[tokio::test]
async fn finished_runs_keep_records_too_large_for_their_row_as_rows() {
    use workbench_engine::store::{self, Acceptance, Executed, NewRun, RunEnd};
    use workbench_engine::{StepRecord, StepStatus};

    let app = TestApp::spawn().await;
    let flow_id = app.create_flow(&echo_flow("large records")).await;
    let pool = &app.server.as_ref().unwrap().pool;
    let flow: uuid::Uuid = flow_id.parse().unwrap();
    let (project_id, version, name): (String, i32, String) =
        sqlx::query_as("SELECT project_id, version, name FROM flows WHERE id = $1")
            .bind(flow)
            .fetch_one(pool)
            .await
            .unwrap();
    // PostgreSQL keeps microseconds.
    let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
    let new_run = |n: i64| NewRun {
        id: workbench_engine::runs::new_run_id(),
        project_id: project_id.clone(),
        flow_id: flow,
        flow_version: version,
        flow_name: name.clone(),
        run_model: "test".into(),
        input: json!({"n": n}),
        start_time: now,
    };
    let finished = |run: &NewRun, text: &str| Executed {
        end: RunEnd { run_id: run.id, success: true, message: None, response: None },
        end_time: now,
        records: ["trigger", "x"]
            .iter()
            .zip(1..)
            .map(|(id, seq)| StepRecord {
                step_key: id.to_string(),
                step_id: id.to_string(),
                seq,
                status: StepStatus::Success,
                attempt: 1,
                cost_ms: 0,
                input: json!({"text": text}),
                output: json!({"got": text}),
                error: None,
                started_at: now,
            })
            .collect(),
    };
    // Two records of twice 9 MB each: past what one run's row holds (32 MB of JSON).
    let large = "x".repeat(9 << 20);
    let (small_run, large_run) = (new_run(1), new_run(2));
    let (small_done, large_done) = (finished(&small_run, "small"), finished(&large_run, &large));
    let runs = [
        (&small_run, Acceptance::Executed(&small_done)),
        (&large_run, Acceptance::Executed(&large_done)),
    ];
    let stored = store::accept_runs(pool, store::SHARED_SLOT, &runs).await.unwrap();
    assert_eq!(stored.len(), 2, "both runs are stored");

    let in_row = |id: uuid::Uuid| {
        sqlx::query_scalar::<_, bool>("SELECT steps IS NOT NULL FROM runs WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
    };
    assert!(in_row(small_run.id).await.unwrap(), "small records ride in the run's row");
    assert!(!in_row(large_run.id).await.unwrap(), "large records do not");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM run_steps WHERE run_id = $1")
        .bind(large_run.id)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(rows, 2, "one row per record");
    for (run, done) in [(&small_run, &small_done), (&large_run, &large_done)] {
        let read = store::load_steps(pool, run.id).await.unwrap();
        assert_eq!(read, done.records, "the records read back as they were");
    }

    let (_, detail) =
        app.get(&format!("/v2/{{p}}/flows/{flow_id}/running-history/{}", small_run.id)).await;
    assert_eq!(detail["steps"][1]["output"], json!({"got": "small"}), "{detail}");
}

#[tokio::test]
async fn a_checkpoint_is_stored_only_while_its_worker_holds_the_run() {
    use std::collections::HashSet;
    use workbench_engine::store::{self, Acceptance, NewRun};
    use workbench_engine::{StepRecord, StepStatus};

    let app = TestApp::spawn().await;
    let flow_id = app.create_flow(&echo_flow("checkpoints")).await;
    let pool = &app.server.as_ref().unwrap().pool;
    let flow: uuid::Uuid = flow_id.parse().unwrap();
    let (project_id, version, name): (String, i32, String) =
        sqlx::query_as("SELECT project_id, version, name FROM flows WHERE id = $1")
            .bind(flow)
            .fetch_one(pool)
            .await
            .unwrap();
    let new_run = || NewRun {
        id: workbench_engine::runs::new_run_id(),
        project_id: project_id.clone(),
        flow_id: flow,
        flow_version: version,
        flow_name: name.clone(),
        run_model: "test".into(),
        input: json!({}),
        start_time: chrono::Utc::now(),
    };
    let (run, theirs) = (new_run(), new_run());
    let (worker, other) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let leased = Acceptance::Leased(worker, Duration::from_secs(60));
    let leased_to_other = Acceptance::Leased(other, Duration::from_secs(60));
    let accepting = [(&run, leased), (&theirs, leased_to_other)];
    store::accept_runs(pool, store::SHARED_SLOT, &accepting).await.unwrap();
    let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
    let record = |output: Value| StepRecord {
        step_key: "trigger".into(),
        step_id: "trigger".into(),
        seq: 1,
        status: StepStatus::Success,
        attempt: 1,
        cost_ms: 0,
        input: json!({}),
        output,
        error: None,
        started_at: now,
    };

    let first = [record(json!("first"))];
    assert!(store::checkpoint_runs(pool, other, &[(run.id, &first[..])]).await.unwrap().is_empty());
    assert!(store::load_steps(pool, run.id).await.unwrap().is_empty(), "another worker's is not");
    // One statement for both runs stores the records of the one this worker holds.
    let held =
        store::checkpoint_runs(pool, worker, &[(run.id, &first[..]), (theirs.id, &first[..])])
            .await
            .unwrap();
    assert_eq!(held, HashSet::from([run.id]));
    assert!(store::load_steps(pool, theirs.id).await.unwrap().is_empty());
    let again = [record(json!("again"))];
    assert_eq!(
        store::checkpoint_runs(pool, worker, &[(run.id, &again[..])]).await.unwrap(),
        HashSet::from([run.id])
    );
    assert_eq!(store::load_steps(pool, run.id).await.unwrap(), first, "a durable record stays");

    sqlx::query("UPDATE runs SET lease_owner = $2 WHERE id = $1")
        .bind(run.id)
        .bind(other)
        .execute(pool)
        .await
        .unwrap();
    let later = [StepRecord { step_key: "x".into(), step_id: "x".into(), ..record(json!(2)) }];
    assert!(
        store::checkpoint_runs(pool, worker, &[(run.id, &later[..])]).await.unwrap().is_empty(),
        "taken over"
    );
    assert_eq!(store::load_steps(pool, run.id).await.unwrap(), first);
    let both =
        store::checkpoint_runs(pool, other, &[(run.id, &later[..]), (theirs.id, &later[..])])
            .await
            .unwrap();
    assert_eq!(both, HashSet::from([run.id, theirs.id]));
    assert_eq!(store::load_steps(pool, theirs.id).await.unwrap(), later);
}
