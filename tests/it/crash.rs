//! Processes that die or stop: a killed worker's run is finished by another process without
//! repeating finished steps (P6), and a stopped server starts again with its data intact.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use serde_json::json;

use crate::support::{flow, step, temp_dir, trigger, TestApp};

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A `workbench` process, killed if a test ends without stopping it.
pub(crate) struct Process(pub(crate) Child);

impl Drop for Process {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts the `workbench` binary and waits until it is ready.
pub(crate) async fn start_process(
    data_dir: &Path,
    database_url: Option<&str>,
) -> (Process, SocketAddr) {
    start_process_with(data_dir, database_url, &[]).await
}

/// Starts the `workbench` binary with extra environment variables and waits until it is ready.
pub(crate) async fn start_process_with(
    data_dir: &Path,
    database_url: Option<&str>,
    env: &[(&str, &str)],
) -> (Process, SocketAddr) {
    let addr = free_addr();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_workbench"));
    cmd.args(["serve", "--bind", &addr.to_string(), "--run-lease-secs", "2", "--workers", "2"])
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .env("WORKBENCH_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd.envs(env.iter().copied());
    let child = Process(cmd.spawn().expect("spawn workbench"));
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = client.get(format!("http://{addr}/ready")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return (child, addr);
        }
        assert!(Instant::now() < deadline, "workbench did not become ready on {addr}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A process on a database of its own, with a client for it; also its data directory and
/// database URL, for a second process on the same data.
async fn start_on_fresh_database(name: &str) -> (Process, TestApp, std::path::PathBuf, String) {
    let database_url = workbench_test_support::fresh_database_url().await;
    let data_dir = temp_dir(name);
    let (process, addr) = start_process(&data_dir, Some(&database_url)).await;
    let app = TestApp::attach(addr, &data_dir);
    (process, app, data_dir, database_url)
}

pub(crate) fn terminate(process: &mut Process) -> std::process::ExitStatus {
    let child = &mut process.0;
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "workbench did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn a_killed_workers_run_is_resumed_by_another_process() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let target = axum::Router::new().route(
        "/hit",
        post(move || async move {
            counter.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({"ok": true}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, target).await.unwrap() });

    let (mut first, app, data_dir, database_url) = start_on_fresh_database("crash").await;
    let f = flow(
        "survives a crash",
        vec![
            trigger(&["hit"]),
            step(
                "hit",
                "HTTP",
                "request",
                json!({"method": "POST", "url": format!("{target_base}/hit")}),
                &["wait"],
            ),
            step("wait", "Delay", "delay", json!({"ms": 3000}), &["done"]),
            step(
                "done",
                "DataTransform",
                "transform",
                json!({"value": "{{ $.steps.hit.status }}"}),
                &[],
            ),
        ],
    );
    let (flow_id, run_id) = app.start_run(&f, json!({})).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    while hits.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the first step never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The checkpoint after the external step is written right after it returns.
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.0.kill().unwrap();
    first.0.wait().unwrap();

    let (mut second, addr) = start_process(&data_dir, Some(&database_url)).await;
    let app = TestApp::attach(addr, &data_dir);
    let detail = app.wait_run(&flow_id, &run_id, Duration::from_secs(40)).await;
    assert_eq!(detail["status"], "success", "{detail}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the finished HTTP step ran again");
    let steps = detail["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["lastRunningStatus"] == "success"), "{detail}");
    assert_eq!(steps[3]["output"], 200);
    assert!(terminate(&mut second).success());
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_a_restart_keeps_everything() {
    // No DATABASE_URL: the server runs its own PostgreSQL under the data directory.
    let data_dir = temp_dir("embedded");
    let (mut first, addr) = start_process(&data_dir, None).await;
    let app = TestApp::attach(addr, &data_dir);
    let id = app
        .create_flow(&flow(
            "kept",
            vec![trigger(&["x"]), step("x", "DataTransform", "transform", json!({}), &[])],
        ))
        .await;
    assert!(terminate(&mut first).success(), "SIGTERM must end with exit status 0");

    let (mut second, addr) = start_process(&data_dir, None).await;
    let app = TestApp::attach(addr, &data_dir);
    let (status, meta) = app.get(&format!("/v2/{{p}}/flows/{id}")).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{meta}");
    assert_eq!(meta["name"], "kept");
    assert!(terminate(&mut second).success());
}

/// A run still executing when the grace period ends is stopped with the process, not left
/// running detached: the process exits, and the run's lease is handed back for another process
/// to resume.
#[tokio::test]
async fn sigterm_stops_a_long_run_after_the_grace_period() {
    let (mut process, app, _, database_url) = start_on_fresh_database("long-run").await;
    let f = flow(
        "outlives the grace period",
        vec![trigger(&["wait"]), step("wait", "Delay", "delay", json!({"ms": 600_000}), &[])],
    );
    let (_, run_id) = app.start_run(&f, json!({})).await;
    let db = sqlx::PgPool::connect(&database_url).await.unwrap();
    let status = |db: sqlx::PgPool| {
        let run_id = run_id.clone();
        async move {
            sqlx::query_as::<_, (String, Option<uuid::Uuid>)>(
                "SELECT status, lease_owner FROM runs WHERE id = $1::uuid",
            )
            .bind(&run_id)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(db.clone()).await.0 != "running" {
        assert!(Instant::now() < deadline, "the run never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert!(terminate(&mut process).success(), "SIGTERM must end with exit status 0");
    let (after, owner) = status(db.clone()).await;
    assert_eq!(after, "running", "the run is left to be resumed");
    let expired: bool =
        sqlx::query_scalar("SELECT lease_until <= now() FROM runs WHERE id = $1::uuid")
            .bind(&run_id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(owner.is_some() && expired, "its lease is handed back at once");
}
