//! Runs executed in place: a flow with no external step is run by the process that accepts it
//! and stored finished in the same commit, and a process's cached copy of a flow never lets a
//! changed, disabled or deleted flow run as it was.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{flow, step, temp_dir, trigger, TestApp};

fn tagged(tag: &str) -> Value {
    flow(
        "tagged",
        vec![
            trigger(&["x"]),
            step("x", "DataTransform", "transform", json!({"value": {"tag": tag}}), &[]),
        ],
    )
}

/// Two servers on one database, as two replicas would be.
async fn two_replicas() -> (TestApp, TestApp) {
    let database_url = workbench_test_support::fresh_database_url().await;
    let data_dir = temp_dir("replicas");
    let mut apps = Vec::new();
    for _ in 0..2 {
        let settings = workbench::Settings {
            bind: "127.0.0.1:0".parse().unwrap(),
            database_url: Some(database_url.clone()),
            data_dir: data_dir.clone(),
            workers: 2,
            ..workbench::Settings::default()
        };
        let server = workbench::server::start(settings).await.expect("server starts");
        let mut app = TestApp::attach(server.addr, &data_dir);
        app.server = Some(server);
        apps.push(app);
    }
    let second = apps.pop().unwrap();
    (apps.pop().unwrap(), second)
}

async fn run_now(app: &TestApp, flow_id: &str) -> (StatusCode, Value) {
    let path = format!("/v1/{{p}}/flows/{flow_id}/run");
    app.post(&path, &json!({"run_mode": "manual", "input": {}})).await
}

async fn detail(app: &TestApp, flow_id: &str, run_id: &str) -> Value {
    let (status, detail) =
        app.get(&format!("/v2/{{p}}/flows/{flow_id}/running-history/{run_id}")).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    detail
}

#[tokio::test]
async fn a_self_contained_run_is_finished_when_accepted() {
    let app = TestApp::spawn().await;
    let (flow_id, run_id) = app.start_run(&tagged("now"), json!({})).await;
    // No waiting: the run was executed before its acceptance was committed.
    let detail = detail(&app, &flow_id, &run_id).await;
    assert_eq!(detail["status"], "success", "{detail}");
    assert_eq!(detail["steps"][1]["output"], json!({"tag": "now"}));
    assert_eq!(detail["steps"][1]["lastRunningStatus"], "success");
}

#[tokio::test]
async fn a_flow_with_an_external_step_still_goes_through_the_queue() {
    let app = TestApp::spawn().await;
    let slow = flow(
        "slow",
        vec![
            trigger(&["wait"]),
            step("wait", "Delay", "delay", json!({"ms": 1000}), &["x"]),
            step("x", "DataTransform", "transform", json!({"value": 1}), &[]),
        ],
    );
    let (flow_id, run_id) = app.start_run(&slow, json!({})).await;
    assert_eq!(detail(&app, &flow_id, &run_id).await["status"], "running");
    let done = app.wait_run(&flow_id, &run_id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "success", "{done}");
}

#[tokio::test]
async fn a_replica_never_runs_its_stale_copy_of_a_flow() {
    let (a, b) = two_replicas().await;
    let flow_id = a.create_flow(&tagged("v1")).await;
    let (status, body) = a.post(&format!("/v1/{{p}}/flows/{flow_id}/enable"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // B reads the flow once and keeps it.
    let (status, body) = run_now(&b, &flow_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = detail(&b, &flow_id, body["running_id"].as_str().unwrap()).await;
    assert_eq!(first["steps"][1]["output"], json!({"tag": "v1"}));

    // A new version saved through A: B runs the new one.
    let (status, body) = a.put(&format!("/v1/{{p}}/flows/{flow_id}"), &tagged("v2")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = run_now(&b, &flow_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = detail(&b, &flow_id, body["running_id"].as_str().unwrap()).await;
    assert_eq!(second["steps"][1]["output"], json!({"tag": "v2"}), "{second}");

    // Disabled through A: B refuses.
    let (status, body) = a.post(&format!("/v1/{{p}}/flows/{flow_id}/disable"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = run_now(&b, &flow_id).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MSSI.00020018"))
    );

    // Enabled again: B runs it (its copy said disabled, so it reads the flow again).
    let (status, body) = a.post(&format!("/v1/{{p}}/flows/{flow_id}/enable"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = run_now(&b, &flow_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Deleted through A: B refuses.
    a.post(&format!("/v1/{{p}}/flows/{flow_id}/disable"), &json!({})).await;
    let (status, body) = a.delete(&format!("/v1/{{p}}/flows/{flow_id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = run_now(&b, &flow_id).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MSSI.00020001"))
    );
}

/// A sync HTTP-trigger flow answering `{"tag": tag}`, with the trigger's `config`.
fn hook(tag: &str, config: Value) -> Value {
    let mut trigger = json!({"stepId": "trigger", "name": "http", "call": {
        "connectorRef": "HttpTrigger", "connectorVersion": "1", "triggerRef": {
        "refId": "http_request", "type": "http", "input": {}}}, "transmit": ["reply"]});
    trigger["call"]["triggerRef"]["config"] = config;
    flow(
        "hooked",
        vec![trigger, step("reply", "Response", "response", json!({"body": {"tag": tag}}), &[])],
    )
}

#[tokio::test]
async fn a_replica_checks_a_hook_with_the_flows_current_settings() {
    let (a, b) = two_replicas().await;
    let (status, created) = a.post("/v1/{p}/flows", &hook("v1", json!({"auth": "none"}))).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let flow_id = created["flow_id"].as_str().unwrap().to_owned();
    let url = format!("{}{}", b.base, created["apig_url"].as_str().unwrap());
    a.post(&format!("/v1/{{p}}/flows/{flow_id}/enable"), &json!({})).await;

    let call = || async { b.client.post(&url).json(&json!({})).send().await.unwrap() };
    let answer = call().await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.json::<Value>().await.unwrap(), json!({"tag": "v1"}));

    // The new version asks for an HMAC of the body: B's cached copy did not, and must not
    // let an unsigned call through.
    let signed = hook("v2", json!({"auth": "hmac", "secret": "s3cret-value"}));
    let (status, body) = a.put(&format!("/v1/{{p}}/flows/{flow_id}"), &signed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer = call().await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{:?}", answer.text().await);
}

#[tokio::test]
async fn runs_beyond_the_free_slots_wait_in_the_queue() {
    // One worker slot: the first run is handed to it directly, the others are queued and
    // claimed as the slot frees.
    let app = TestApp::spawn_with(|s| s.workers = 1).await;
    let slow = flow(
        "one slot",
        vec![
            trigger(&["wait"]),
            step("wait", "Delay", "delay", json!({"ms": 300}), &["x"]),
            step(
                "x",
                "DataTransform",
                "transform",
                json!({"value": "{{ $.trigger.body.n }}"}),
                &[],
            ),
        ],
    );
    let flow_id = app.create_flow(&slow).await;
    app.post(&format!("/v1/{{p}}/flows/{flow_id}/enable"), &json!({})).await;
    let runs = futures::future::join_all((0..4).map(|n| app.run(&flow_id, json!({"n": n})))).await;
    for (n, run_id) in runs.iter().enumerate() {
        let done = app.wait_run(&flow_id, run_id, Duration::from_secs(30)).await;
        assert_eq!(done["status"], "success", "{done}");
        assert_eq!(done["steps"][2]["output"], n, "{done}");
    }
}

/// Runs executed in place carry their step records into the accepting statement, so a batch
/// of large runs can outgrow what PostgreSQL takes in one statement (1 GB of parameters). The
/// batch must be stored in pieces, not failed as a whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_large_runs_is_stored_in_pieces() {
    let app = TestApp::spawn().await;
    let flow_id = app.create_flow(&tagged("big")).await;
    let (status, body) = app.post(&format!("/v1/{{p}}/flows/{flow_id}/enable"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The accept writer blocks on the flow's count rows (every slot it may have taken), so
    // the runs submitted meanwhile gather into one batch.
    let pool = &app.server.as_ref().unwrap().pool;
    let flow: uuid::Uuid = flow_id.parse().unwrap();
    sqlx::query(
        "INSERT INTO flow_run_counts (flow_id, slot, runs) \
         SELECT $1, slot, 0 FROM generate_series(1, 16) AS slot",
    )
    .bind(flow)
    .execute(pool)
    .await
    .unwrap();
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM flow_run_counts WHERE flow_id = $1 FOR UPDATE")
        .bind(flow)
        .execute(&mut *lock)
        .await
        .unwrap();

    // Each run is about 23 MB in the statement: its input, and the trigger's output again.
    let big = "y".repeat(11 * 1024 * 1024 + 512 * 1024);
    let body = axum::body::Bytes::from(
        serde_json::to_vec(&json!({"run_mode": "manual", "input": {"big": big}})).unwrap(),
    );
    let url = format!("{}{}", app.base, app.path(&format!("/v1/{{p}}/flows/{flow_id}/run")));
    let token = app.token().await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..52 {
        let request = app
            .client
            .post(&url)
            .header("X-Auth-Token", &token)
            .header("Content-Type", "application/json")
            .body(body.clone());
        calls.spawn(async move { request.send().await.unwrap().status() });
    }
    // Let the submissions arrive and queue up behind the blocked writers.
    tokio::time::sleep(Duration::from_secs(15)).await;
    lock.rollback().await.unwrap();
    let statuses = calls.join_all().await;
    let failed = statuses.iter().filter(|s| **s != StatusCode::OK).count();
    assert_eq!(failed, 0, "{statuses:?}");
}
