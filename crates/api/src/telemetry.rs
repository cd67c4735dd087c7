//! Request metrics and the one place where failed requests are logged.
//!
//! Each request gets a `request` span (opened by the trace layer in `routes`); this middleware
//! counts it, times it, and logs a 5xx with the detail the error left in the response
//! extensions. Refusals (4xx) are logged at debug where they are decided.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::error::{FullMessage, InternalDetail};

/// The process-wide Prometheus recorder. Metrics are global by nature (the `metrics` facade
/// has one recorder per process), so every server in a process shares it.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (by an embedding program); then these
        // metrics go there and this handle renders an empty page.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

pub async fn middleware(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status();
    let elapsed = started.elapsed();

    if let Some(detail) = response.extensions().get::<InternalDetail>() {
        tracing::error!(%status, error = %detail.0, "request failed");
    }
    if let Some(full) = response.extensions().get::<FullMessage>() {
        tracing::debug!(%status, error_msg = %full.0, "error_msg was cut to 512 characters");
    }
    tracing::info!(
        %method,
        %route,
        status = status.as_u16(),
        latency_ms = elapsed.as_secs_f64() * 1e3,
        "request"
    );
    let labels = [("method", method), ("route", route), ("status", status.as_u16().to_string())];
    metrics::counter!("workbench_http_requests_total", &labels).increment(1);
    metrics::histogram!("workbench_http_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
    response
}
