//! The HTTP trigger (MSSI's "API flow"): `/hooks/{webhook}` starts a run of the enabled flow
//! whose trigger is `HttpTrigger` and, in `sync` mode, answers with what its `Response` step
//! set once the run ends.
//!
//! The route sits outside the authenticated MSSI prefix: each flow's trigger says how callers
//! authenticate (none, AK/SK, token or an HMAC of the body). `docs/http-triggers.md` has the
//! rules.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;
use workbench_engine::completion::RunResult;
use workbench_engine::connectors::HookAuth;
use workbench_engine::runs::{self, Hook, SubmitError};
use workbench_engine::RunStatus;

use crate::auth::{self, Caller};
use crate::error::{ApiError, ApiResult, Code};
use crate::extract::{read_body, Path};
use crate::{hook_input, request_id, AppState};

/// The header carrying the HMAC of the body in `hmac` mode: `sha256=<lower-case hex>`.
const SIGNATURE_HEADER: &str = "x-workbench-signature";

/// Headers a `Response` step may not set.
const FRAMING_HEADERS: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

/// The header naming the run on every answer of a hook.
const RUN_HEADER: &str = "x-workbench-run-id";

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/hooks/{webhook}", any(call_hook))
}

/// The hook in the OpenAPI document. The route takes every method (the flow's trigger says
/// which one it serves); the document lists POST, the default.
#[derive(utoipa::OpenApi)]
#[openapi(paths(call_hook))]
pub(super) struct HookDoc;

/// Starts a run of the enabled flow whose HTTP trigger has this webhook id
/// (`docs/http-triggers.md`). The flow's trigger decides how callers authenticate.
#[utoipa::path(post, path = "/hooks/{webhook}", tag = "hooks",
    params(("webhook" = String, Path, description = "The flow's webhook id")),
    request_body(content = Object,
        description = "Any body; its Content-Type decides how it is read"),
    responses(
        (status = 200, description = "The run's answer (sync mode)", body = Object),
        (status = 202, description = "The run was queued (async mode)", body = Object),
        (status = 400, description = "The body or path cannot be read", body = Object),
        (status = 404, description = "No enabled flow serves this webhook", body = Object),
        (status = 405, description = "Not the method the flow serves", body = Object),
        (status = 500, description = "The run failed without a Response step", body = Object)))]
async fn call_hook(
    State(state): State<AppState>,
    Path(webhook): Path<String>,
    req: Request,
) -> Response {
    match serve(&state, &webhook, req).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

#[tracing::instrument(skip_all, fields(webhook = %webhook))]
async fn serve(state: &AppState, webhook: &str, req: Request) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let mut hook = state.runs.find_hook(webhook, false).await.map_err(hook_error)?;
    // The method and a token are checked before the body is read: a stranger costs no upload.
    check_before_body(state, &hook, &parts)?;
    let bytes = read_body(body, &parts.headers, state.config.body_limit).await?;
    check_with_body(state, &hook, &parts, &bytes).await?;
    let mut input = hook_input::trigger_input(&parts, &bytes)?;

    let mut attempts = 0;
    let (run_id, submitted, waiter) = loop {
        let run_id = runs::new_run_id();
        let waiter = (!hook.settings.asynchronous).then(|| state.completions.register(run_id));
        match state.runs.submit_hook(&hook, run_id, input).await {
            Ok(submitted) => break (run_id, submitted, waiter),
            // The flow changed since it was cached: its settings may be new, so check again
            // (and read the input again, which the refused attempt took).
            Err(SubmitError::Stale) if attempts < 3 => {
                attempts += 1;
                hook = state.runs.find_hook(webhook, true).await.map_err(hook_error)?;
                check_before_body(state, &hook, &parts)?;
                check_with_body(state, &hook, &parts, &bytes).await?;
                input = hook_input::trigger_input(&parts, &bytes)?;
            }
            Err(e) => return Err(hook_error(e)),
        }
    };
    drop(bytes);
    // No waiter: async mode. A run executed in place has ended already.
    let Some(waiter) = waiter else { return Ok(accepted(run_id)) };
    let end = match submitted.ended {
        Some(end) => Some(end),
        None => waiter.wait(&state.db, hook.settings.deadline).await?,
    };
    Ok(end.map_or_else(|| accepted(run_id), |end| answer(run_id, end)))
}

/// The checks that need no body: the method, and the token in `token` mode.
fn check_before_body(state: &AppState, hook: &Hook, parts: &Parts) -> ApiResult<()> {
    if !hook.settings.method.allows(parts.method.as_str()) {
        return Err(ApiError::with(Code::MethodNotAllowed, parts.method.clone()));
    }
    if hook.settings.auth == HookAuth::Token {
        let token = header(parts, "x-auth-token")
            .ok_or_else(|| ApiError::unauthenticated("no authentication information"))?;
        admit(&auth::token_caller(state, token)?, hook)?;
    }
    Ok(())
}

/// The checks that sign the body: AK/SK and HMAC.
async fn check_with_body(
    state: &AppState,
    hook: &Hook,
    parts: &Parts,
    bytes: &[u8],
) -> ApiResult<()> {
    match &hook.settings.auth {
        HookAuth::None | HookAuth::Token => Ok(()),
        HookAuth::AkSk => admit(&auth::signed_caller(state, parts, bytes).await?, hook),
        HookAuth::Hmac { secret } => check_hmac(parts, secret, bytes),
    }
}

fn hook_error(err: SubmitError) -> ApiError {
    match err {
        SubmitError::FlowNotFound => ApiError::code(Code::HookNotFound),
        SubmitError::Disabled => ApiError::code(Code::HookDisabled),
        SubmitError::BadTrigger(e) => ApiError::Internal(anyhow::anyhow!(e)),
        SubmitError::Database(e) => ApiError::from(e),
        SubmitError::Write(e) => ApiError::Internal(anyhow::anyhow!(e)),
        SubmitError::Stale => ApiError::Internal(anyhow::anyhow!("the flow kept changing")),
    }
}

/// Whether an authenticated caller may start the hook's flow.
fn admit(caller: &Caller, hook: &Hook) -> ApiResult<()> {
    if caller.project_id != hook.flow.project_id {
        return Err(ApiError::code(Code::Forbidden));
    }
    caller.require("mssi:flow:start", Code::NoPermission)
}

fn check_hmac(parts: &Parts, secret: &str, body: &[u8]) -> ApiResult<()> {
    let fail = || ApiError::unauthenticated("verify hmac signature fail");
    let given = header(parts, SIGNATURE_HEADER).ok_or_else(fail)?;
    let hex_text = given.trim().strip_prefix("sha256=").ok_or_else(fail)?;
    let given = hex::decode(hex_text).map_err(|_| fail())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| fail())?;
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| fail())
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// `202 {"running_id"}`: the run goes on without the caller.
fn accepted(run_id: Uuid) -> Response {
    let mut response =
        (StatusCode::ACCEPTED, axum::Json(json!({"running_id": run_id}))).into_response();
    tag(&mut response, run_id);
    response
}

/// What the caller of a finished run gets: the `Response` step's answer if one ran, else 200
/// with the running id for a success, or the error envelope with the run's message.
fn answer(run_id: Uuid, end: RunResult) -> Response {
    let mut response = match (end.response, end.status) {
        (Some(set), _) => respond(&set),
        (None, RunStatus::Success) => {
            let body = json!({"running_id": run_id, "status": "success"});
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        (None, RunStatus::Fail) => {
            let (code, status, text) = Code::FlowUnknown.parts();
            let message = end.message.unwrap_or_default();
            let body = json!({
                "error_code": code,
                "error_msg": format!("{text}: {message}"),
                "request_id": request_id::current(),
                "running_id": run_id,
            });
            (status, axum::Json(body)).into_response()
        }
    };
    tag(&mut response, run_id);
    response
}

/// Renders a `Response` step output `{status, headers, body}`: a text body as it is, anything
/// else as JSON, each with a default Content-Type the step's headers may override. A status
/// that has no content (1xx, 204, 304) is sent without a body and without content headers.
fn respond(set: &Value) -> Response {
    let status = set["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let (bytes, content_type) = match &set["body"] {
        _ if bodiless => (Vec::new(), None),
        Value::Null => (Vec::new(), None),
        Value::String(text) => (text.clone().into_bytes(), Some("text/plain; charset=utf-8")),
        other => (other.to_string().into_bytes(), Some("application/json")),
    };
    let body = if bytes.is_empty() { Body::empty() } else { Body::from(bytes) };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(content_type) = content_type {
        headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    for (name, value) in set["headers"].as_object().into_iter().flatten() {
        let (Ok(name), Some(Ok(value))) =
            (HeaderName::from_bytes(name.as_bytes()), value.as_str().map(HeaderValue::from_str))
        else {
            continue;
        };
        // The framing is the server's business, not the flow's.
        if FRAMING_HEADERS.contains(&name.as_str()) {
            continue;
        }
        if bodiless && name == axum::http::header::CONTENT_TYPE {
            continue;
        }
        headers.insert(name, value);
    }
    response
}

fn tag(response: &mut Response, run_id: Uuid) {
    if let Ok(value) = HeaderValue::from_str(&run_id.to_string()) {
        response.headers_mut().insert(RUN_HEADER, value);
    }
}
