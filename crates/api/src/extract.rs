//! Extractors whose failures answer in the MSSI envelope instead of axum's plain text.
//!
//! JSON bodies are read whatever their Content-Type says (clients send `application/json`
//! with and without parameters, and some send none), bounded by the configured body limit.

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

fn too_large(limit: usize) -> ApiError {
    ApiError::with(Code::PayloadTooLarge, format_args!("the limit is {limit} bytes"))
}

/// A JSON request body or response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = read_body(body, &parts.headers, state.config.body_limit).await?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses JSON, telling malformed text (`MSSI.00017001`) from well-formed JSON of the wrong
/// shape (`MSSI.00017006`). serde_json's recursion limit turns absurd nesting into an error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::with(Code::BindFailed, e),
            Category::Syntax | Category::Eof | Category::Io => ApiError::with(Code::DataFormat, e),
        }
    })
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
        let raw = parts.uri.query().unwrap_or("").replace('+', "%2B");
        serde_urlencoded::from_str(&raw)
            .map(Query)
            .map_err(|e| ApiError::with(Code::ParamInvalid, e))
    }
}
