//! Operational endpoints: liveness, readiness, Prometheus metrics and the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::extract::Json;
use crate::{telemetry, AppState};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(ready)).routes(routes!(metrics))
}

/// Serves the generated document itself.
pub(super) fn openapi_router(doc: &utoipa::openapi::OpenApi) -> Router<AppState> {
    let text: Arc<str> = doc.to_json().expect("the OpenAPI document serialises").into();
    Router::new().route(
        "/openapi.json",
        get(
            move || async move { ([(header::CONTENT_TYPE, "application/json")], text.to_string()) },
        ),
    )
}

/// The process is up.
#[utoipa::path(get, path = "/health", tag = "system",
    responses((status = 200, description = "Alive", body = Object)))]
async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers.
#[utoipa::path(get, path = "/ready", tag = "system", responses(
    (status = 200, description = "Ready", body = Object),
    (status = 503, description = "Database unreachable", body = Object)))]
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let ok = sqlx::query("SELECT 1").execute(&state.db).await.is_ok();
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({"status": if ok { "ready" } else { "database unreachable" }})))
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Metrics", body = String, content_type = "text/plain")))]
async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], telemetry::prometheus().render())
}
