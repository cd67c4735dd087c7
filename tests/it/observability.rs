//! Trace export: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, request spans reach the collector.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::routing::post;

use crate::crash::{start_process_with, terminate};
use crate::support::temp_dir;

// Multi-threaded: the collector must keep answering while the test blocks waiting for the
// process to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_http() {
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let collector = axum::Router::new().route(
        "/v1/traces",
        post(move |body: axum::body::Bytes| async move {
            if !body.is_empty() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            ""
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, collector).await.unwrap() });

    let database_url = workbench_test_support::fresh_database_url().await;
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("WORKBENCH_LOG", "info")];
    let (mut process, addr) =
        start_process_with(&temp_dir("otel"), Some(&database_url), &env).await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        client.get(format!("http://{addr}/health")).send().await.unwrap();
    }
    assert!(terminate(&mut process).success());
    assert!(received.load(Ordering::SeqCst) >= 1, "no span batch reached the collector");
}
