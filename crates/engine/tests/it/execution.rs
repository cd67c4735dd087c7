//! Data mapping, retries, timeouts, limits, test mode, replay and checkpoints.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use workbench_engine::{Limits, RunMode, RunStatus, StepStatus};

use crate::{action, echo, trigger, Harness, RecordingJournal};

#[tokio::test]
async fn expressions_keep_types_interpolate_and_address_odd_keys() {
    let steps = json!([
        trigger("t", &["a"]),
        echo(
            "a",
            json!({
                "whole": "{{ $.trigger.body['😀'] }}",
                "dotted": "{{ $.trigger.body['a.b'] }}",
                "text": "n={{ $.trigger.body.n }} s={{ $.trigger.body.s }}",
                "all": "{{ $.trigger.body.list[*].id }}",
                "short": "{{ steps.t.body.n }}",
                "run": "{{ $.run.mode }}",
            }),
            &[]
        )
    ]);
    let input = json!({"😀": {"x": 1}, "a.b": [true], "n": 2, "s": "hi",
        "list": [{"id": 1}, {"id": 2}]});
    let ran = Harness::new().run(steps, input).await;
    ran.assert_success();
    assert_eq!(
        ran.output("a"),
        json!({"whole": {"x": 1}, "dotted": [true], "text": "n=2 s=hi",
        "all": [1, 2], "short": 2, "run": "manual"})
    );
    assert_eq!(ran.records()[1].input, ran.output("a"), "the evaluated input is recorded");
}

#[tokio::test]
async fn a_path_that_selects_nothing_fails_the_step() {
    let steps =
        json!([trigger("t", &["a"]), echo("a", json!({"v": "{{ $.trigger.body.nope }}"}), &[])]);
    let ran = Harness::new().run(steps, json!({})).await;
    assert_eq!(ran.outcome.status, RunStatus::Fail);
    let message = ran.outcome.message.unwrap();
    assert!(message.contains("`a`") && message.contains("$.trigger.body.nope"), "{message}");
}

#[tokio::test]
async fn retryable_failures_are_retried_with_backoff() {
    let h = Harness::new();
    let mut step = action("f", "Test", "flaky", json!({"fails": 2}), &[]);
    step["call"]["actionRef"]["config"] =
        json!({"retry": {"attempts": 3, "backoff": "exponential", "delay_ms": 5}});
    let ran = h.run(json!([trigger("t", &["f"]), step]), json!({})).await;
    ran.assert_success();
    let record = ran.records().into_iter().find(|r| r.step_id == "f").unwrap();
    assert_eq!(record.attempt, 3);
    let keys = h.test.keys.lock().unwrap().clone();
    let nil = uuid::Uuid::nil();
    assert_eq!(keys, vec![format!("{nil}/f/0/1"), format!("{nil}/f/0/2"), format!("{nil}/f/0/3")]);

    // A fatal error is not retried.
    let mut step = action("g", "Test", "fail", json!({}), &[]);
    step["call"]["actionRef"]["config"] = json!({"retry": {"attempts": 3, "delay_ms": 1}});
    let ran = h.run(json!([trigger("t", &["g"]), step]), json!({})).await;
    assert_eq!(ran.records().last().unwrap().attempt, 1);
}

#[tokio::test]
async fn step_timeout_fails_the_step() {
    let mut step = action("s", "Test", "sleep", json!({"ms": 5000}), &[]);
    step["call"]["actionRef"]["config"] = json!({"timeout_ms": 20});
    let ran = Harness::new().run(json!([trigger("t", &["s"]), step]), json!({})).await;
    assert_eq!(ran.outcome.status, RunStatus::Fail);
    assert!(ran.outcome.message.unwrap().contains("timed out after 20 ms"));
}

#[tokio::test]
async fn run_timeout_fails_the_run() {
    let limits = Limits { run_timeout: Duration::from_millis(30), ..Limits::default() };
    let steps =
        json!([trigger("t", &["s"]), action("s", "Test", "sleep", json!({"ms": 5000}), &[])]);
    let ran = Harness::with_limits(limits).run(steps, json!({})).await;
    assert_eq!(ran.outcome.status, RunStatus::Fail);
    assert!(ran.outcome.message.unwrap().contains("timed out"));
}

#[tokio::test]
async fn oversized_output_fails_the_step() {
    let limits = Limits { max_output_bytes: 100, ..Limits::default() };
    let steps =
        json!([trigger("t", &["b"]), action("b", "Test", "big", json!({"bytes": 500}), &[])]);
    let ran = Harness::with_limits(limits).run(steps, json!({})).await;
    assert_eq!(ran.outcome.status, RunStatus::Fail);
    let message = ran.outcome.message.unwrap();
    assert!(message.contains("`b`") && message.contains("100-byte limit"), "{message}");
}

#[tokio::test]
async fn test_mode_uses_mock_output() {
    let h = Harness::new();
    let mut a = action("a", "Test", "fail", json!({}), &["b"]);
    a["mockOutput"] = json!("{\"v\": 7}");
    let mut b = echo("b", json!({"v": "{{ $.steps.a.v }}"}), &["c"]);
    b["mockOutput"] = json!("plain text");
    let c = echo("c", json!({"b": "{{ $.steps.b }}"}), &[]);
    let steps = json!([trigger("t", &["a"]), a, b, c]);
    let mut req = h.request(&steps, json!({}));
    req.mode = RunMode::Test;
    let outcome = h.engine.run(req, &RecordingJournal::default()).await;
    assert_eq!(outcome.status, RunStatus::Success, "{:?}", outcome.message);
    let c = outcome.pending.iter().find(|r| r.step_id == "c").unwrap();
    assert_eq!(c.output, json!({"b": "plain text"}));
    // Outside test mode the mock is ignored.
    let ran = h.run(steps, json!({})).await;
    assert_eq!(ran.outcome.status, RunStatus::Fail);
}

#[tokio::test]
async fn checkpoints_happen_only_around_external_steps() {
    let steps = json!([
        trigger("t", &["x"]),
        echo("x", json!({}), &["e"]),
        action("e", "Test", "ext", json!({"v": 1}), &["y"]),
        echo("y", json!({}), &["z"]),
        echo("z", json!({}), &[])
    ]);
    let ran = Harness::new().run(steps, json!({})).await;
    ran.assert_success();
    assert_eq!(ran.journal.keys(), vec![vec!["t", "x"], vec!["e"]]);
    let pending: Vec<&str> = ran.outcome.pending.iter().map(|r| r.step_key.as_str()).collect();
    assert_eq!(pending, vec!["y", "z"]);
    let seqs: Vec<i32> = ran.records().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn replay_skips_completed_steps() {
    let h = Harness::new();
    let steps = json!([
        trigger("t", &["a"]),
        action("a", "Test", "ext", json!({"n": 1}), &["b"]),
        echo("b", json!({"from_a": "{{ $.steps.a.n }}"}), &[])
    ]);
    let first = h.run(steps.clone(), json!({})).await;
    first.assert_success();
    assert_eq!(h.test.calls.load(Ordering::SeqCst), 2);

    // Resume as if the process died after the external step's checkpoint.
    let durable: HashMap<_, _> = first
        .journal
        .batches
        .lock()
        .unwrap()
        .iter()
        .flatten()
        .map(|r| (r.step_key.clone(), r.clone()))
        .collect();
    assert!(durable.contains_key("a"));
    let mut req = h.request(&steps, json!({}));
    req.completed = durable;
    let outcome = h.engine.run(req, &RecordingJournal::default()).await;
    assert_eq!(outcome.status, RunStatus::Success);
    assert_eq!(h.test.calls.load(Ordering::SeqCst), 3, "only `b` ran again");
    let keys: Vec<&str> = outcome.pending.iter().map(|r| r.step_key.as_str()).collect();
    assert_eq!(keys, vec!["b"]);
    assert_eq!(outcome.pending[0].output, json!({"from_a": 1}));
    assert_eq!(outcome.pending[0].seq, 3, "seq continues after the replayed records");
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn flaky(
    State(hits): State<Arc<AtomicUsize>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let n = hits.fetch_add(1, Ordering::SeqCst);
    if n < 2 {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "busy"})));
    }
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default();
    (StatusCode::OK, Json(json!({"echo": body, "key": key, "attempt": n + 1})))
}

#[tokio::test]
async fn http_step_retries_a_flaky_server() {
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve(Router::new().route("/x", post(flaky)).with_state(hits.clone())).await;
    let mut step = action(
        "h",
        "HTTP",
        "request",
        json!({"method": "post",
        "url": format!("{base}/x"), "query": {"a": ["1", "2"]},
        "body": {"k": "{{ $.trigger.body.k }}"}}),
        &[],
    );
    step["call"]["actionRef"]["config"] = json!({"retry": {"attempts": 4, "delay_ms": 5,
        "backoff": "exponential", "jitter": true}});
    let ran = Harness::new().run(json!([trigger("t", &["h"]), step]), json!({"k": "v"})).await;
    ran.assert_success();
    let out = ran.output("h");
    assert_eq!(out["status"], 200);
    assert_eq!(out["body"]["echo"], json!({"k": "v"}));
    assert_eq!(out["body"]["key"], format!("{}/h/0/3", uuid::Uuid::nil()));
    let record = ran.records().into_iter().find(|r| r.step_id == "h").unwrap();
    assert_eq!((record.attempt, record.status), (3, StepStatus::Success));
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn http_client_errors_fail_without_retry_unless_told_not_to() {
    let base =
        serve(Router::new().route("/x", post(|| async { (StatusCode::NOT_FOUND, "gone") }))).await;
    let request = |fail: bool| {
        let mut step = action(
            "h",
            "HTTP",
            "request",
            json!({"method": "POST", "url": format!("{base}/x"), "text": "hi",
                "fail_on_error": fail}),
            &[],
        );
        step["call"]["actionRef"]["config"] = json!({"retry": {"attempts": 3, "delay_ms": 1}});
        json!([trigger("t", &["h"]), step])
    };
    let h = Harness::new();
    let ran = h.run(request(true), json!({})).await;
    assert_eq!(ran.outcome.status, RunStatus::Fail);
    assert!(ran.outcome.message.as_deref().unwrap().contains("HTTP 404"));
    assert_eq!(ran.records().last().unwrap().attempt, 1);
    let ran = h.run(request(false), json!({})).await;
    ran.assert_success();
    assert_eq!(ran.output("h")["body"], "gone");
}

#[tokio::test]
async fn text_connector_and_transform_need_no_engine_change() {
    let steps = json!([
        trigger("t", &["up"]),
        action("up", "Text", "upper", json!({"text": "{{ $.trigger.body.s }}"}), &["shape"]),
        action(
            "shape",
            "DataTransform",
            "transform",
            json!({"value": {"loud": "{{ $.steps.up.result }}", "n": 1}}),
            &[]
        )
    ]);
    let ran = Harness::new().run(steps, json!({"s": "abc"})).await;
    ran.assert_success();
    assert_eq!(ran.output("shape"), json!({"loud": "ABC", "n": 1}));
    assert_eq!(ran.output("t"), json!({"body": {"s": "abc"}}));
}

#[test]
fn run_future_is_send_so_workers_can_spawn_it() {
    fn assert_send<T: Send>(_: &T) {}
    let h = Harness::new();
    let req = h.request(&json!([trigger("t", &[])]), json!({}));
    let journal = workbench_engine::NullJournal;
    let run = h.engine.run(req, &journal);
    assert_send(&run);
}

/// HTTP step failures used to read "invalid input: builder error" (a `file:` URL, method
/// `BREW`) or "request failed: error sending request" (nothing listening), without the cause.
#[tokio::test]
async fn http_step_failures_name_their_cause_but_not_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let request = |method: &str, url: &str| {
        let mut step = action("h", "HTTP", "request", json!({"method": method, "url": url}), &[]);
        step["call"]["actionRef"]["config"] = json!({"retry": {"attempts": 1}});
        json!([trigger("t", &["h"]), step])
    };
    let cases = [
        ("GET", "file:///etc/passwd".to_owned(), "must be an http or https URL"),
        ("BREW", "http://127.0.0.1/".to_owned(), "bad method `BREW`"),
        ("GET", format!("http://127.0.0.1:{port}/x?api_key=S3CRET"), "connection refused"),
    ];
    let h = Harness::new();
    for (method, url, expected) in cases {
        let ran = h.run(request(method, &url), json!({})).await;
        assert_eq!(ran.outcome.status, RunStatus::Fail);
        let message = ran.outcome.message.clone().unwrap();
        assert!(message.to_lowercase().contains(&expected.to_lowercase()), "{message}");
        assert!(!message.contains("S3CRET"), "{message}");
    }
}
