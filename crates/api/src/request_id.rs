//! The request id: taken from `X-Request-Id` when the client sends a sane one, generated
//! otherwise, echoed on every response, recorded on the request span, and readable anywhere
//! inside the request (the error envelope carries it).

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, or an empty string outside of one.
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

pub async fn middleware(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let value = HeaderValue::from_str(&id).expect("checked to be visible ASCII");
    tracing::Span::current().record("request_id", id.as_str());
    let mut response = REQUEST_ID.scope(id, next.run(req)).await;
    response.headers_mut().insert("x-request-id", value);
    response
}
