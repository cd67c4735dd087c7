//! Extractors whose failures answer in the MSSI envelope instead of axum's plain text.
//!
//! JSON bodies are read whatever their Content-Type says (clients send `application/json`
//! with and without parameters, and some send none), bounded by the configured body limit.
//!
//! PostgreSQL text cannot hold U+0000, so a NUL anywhere in a JSON body, a query or a path is
//! refused here as bad input instead of failing later in the database.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ApiError, Code};
use crate::AppState;

/// Reads a whole body, refusing more than `limit` bytes without buffering them.
pub async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    axum::body::to_bytes(body, limit).await.map_err(|_| too_large(limit))
}

async fn request_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let (parts, body) = req.into_parts();
    read_body(body, &parts.headers, state.config.body_limit).await
}

fn too_large(limit: usize) -> ApiError {
    ApiError::with(Code::PayloadTooLarge, format_args!("the limit is {limit} bytes"))
}

/// A JSON request body or response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        parse_json(&request_body(req, state).await?).map(Json)
    }
}

/// A JSON body of a batch endpoint whose items are judged one by one: a NUL fails only the
/// item holding it (the application model checks every stored text itself), so it is not
/// refused here.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for BatchJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        parse_json_text(&request_body(req, state).await?).map(BatchJson)
    }
}

/// Parses JSON, telling malformed text (`MSSI.00017001`) from well-formed JSON of the wrong
/// shape (`MSSI.00017006`). serde_json's recursion limit turns absurd nesting into an error.
///
/// FIXME: integers beyond what an f64 holds exactly (a 30-digit id in a run's input) are
/// rounded, because `serde_json::Value` keeps them as floats. serde_json's
/// `arbitrary_precision` feature would keep their digits; every crate that matches on
/// `Value::Number` would need checking under it, since it changes how numbers compare.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if json_has_nul(bytes) {
        return Err(ApiError::with(Code::DataFormat, "text may not contain NUL (\\u0000)"));
    }
    parse_json_text(bytes)
}

fn parse_json_text<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::with(Code::BindFailed, e),
            Category::Syntax | Category::Eof | Category::Io => ApiError::with(Code::DataFormat, e),
        }
    })
}

/// Whether JSON text holds a NUL: raw control bytes are invalid JSON anyway, so only the
/// `\u0000` escape counts, and an escaped backslash before `u0000` does not.
fn json_has_nul(bytes: &[u8]) -> bool {
    let mut i = 0;
    while let Some(at) = bytes[i..].iter().position(|&b| b == b'\\') {
        let escape = &bytes[i + at + 1..];
        if escape.starts_with(b"u0000") {
            return true;
        }
        // Skip the escaped character, so `\\` never starts an escape of its own.
        i += at + 2;
        if i >= bytes.len() {
            return false;
        }
    }
    false
}

/// Percent-encoded text holding `%00`, which decodes to NUL.
fn encodes_nul(text: &str) -> bool {
    text.contains("%00")
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters, percent-decoded.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if encodes_nul(parts.uri.path()) {
            return Err(ApiError::with(Code::ParamInvalid, "the path may not contain NUL (%00)"));
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::with(Code::ParamInvalid, e.body_text()))
    }
}

/// Query parameters. A literal `+` is kept as a plus (the MSSI SDKs encode spaces as `%20`),
/// and a value that does not parse as its field's type is `MSSI.00020011`.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        if encodes_nul(raw) {
            return Err(ApiError::with(Code::ParamInvalid, "the query may not contain NUL (%00)"));
        }
        let raw = raw.replace('+', "%2B");
        serde_urlencoded::from_str(&raw)
            .map(Query)
            .map_err(|e| ApiError::with(Code::ParamInvalid, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_escapes_are_found_but_escaped_backslashes_are_not() {
        assert!(json_has_nul(br#"{"a":"x\u0000"}"#));
        assert!(json_has_nul(br#"{"\u0000":1}"#));
        assert!(json_has_nul(br#"["\\\u0000"]"#));
        assert!(!json_has_nul(br#"{"a":"\\u0000"}"#));
        assert!(!json_has_nul(br#""\u000"#));
        assert!(!json_has_nul(br#"{"a":"\n\u0041"}"#));
        assert!(!json_has_nul(b"\\"));
    }
}
