//! The main job end to end: a flow fetches orders from a local HTTP server, loops over them,
//! posts each order over 100 back to the server, and summarises; every step is read back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::{get, post};
use axum::Json;
use serde_json::{json, Value};

use crate::support::TestApp;

/// The example flow shipped in `examples/`, pointed at `base`.
pub(crate) fn orders_flow(base: &str) -> Value {
    let text =
        include_str!("../../examples/orders-flow.json").replace("http://127.0.0.1:9999", base);
    serde_json::from_str(&text).unwrap()
}

async fn order_server() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let app = axum::Router::new()
        .route(
            "/orders",
            get(|| async {
                Json(json!([
                    {"id": 1, "amount": 50},
                    {"id": 2, "amount": 150},
                    {"id": 3, "amount": "250"},
                    {"id": 4, "amount": 100},
                    {"id": 5}
                ]))
            }),
        )
        .route(
            "/accepted",
            post(move |Json(order): Json<Value>| async move {
                sink.lock().unwrap().push(order);
                Json(json!({"ok": true}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, received)
}

#[tokio::test]
async fn orders_over_100_are_posted_and_every_step_is_recorded() {
    let app = TestApp::spawn().await;
    let (base, received) = order_server().await;
    let (flow_id, run_id) = app.start_run(&orders_flow(&base), json!({"min": 100})).await;
    let detail = app.wait_run(&flow_id, &run_id, Duration::from_secs(30)).await;
    assert_eq!(detail["status"], "success", "{detail}");

    let mut ids: Vec<i64> =
        received.lock().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, [2, 3], "only orders over 100 are posted; a missing amount never passes");

    let steps = detail["steps"].as_array().unwrap();
    let by_id = |id: &str| steps.iter().find(|s| s["stepId"] == id).unwrap().clone();
    for id in ["trigger", "fetch", "each_order", "over_100", "accept", "summary"] {
        let s = by_id(id);
        assert_eq!(s["lastRunningStatus"], "success", "{id}: {s}");
        assert!(s["cost"].as_i64().unwrap() >= 0, "{id}");
    }
    assert_eq!(by_id("over_100")["executions"], 5);
    assert_eq!(by_id("accept")["executions"], 2);
    assert_eq!(by_id("fetch")["output"]["status"], 200);
    let summary = by_id("summary")["output"].clone();
    assert_eq!(summary["fetched"], json!([1, 2, 3, 4, 5]), "{summary}");
}
