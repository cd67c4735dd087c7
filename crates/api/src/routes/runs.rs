//! Runs: R7 (submit), R10 (legacy webhook), and the run history R1–R6.

use axum::extract::State;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use workbench_engine::history::{self, HistoryFilter, RunSummary, TimeRangeError};
use workbench_engine::runs::{self, SubmitError};

use super::flows::flow_id;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Code};
use crate::extract::{Json, Path, Query};
use crate::{AppState, DetailTimeFormat};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(run_flow))
        .routes(routes!(trigger_webhook))
        .routes(routes!(list_latest_runs))
        .routes(routes!(list_latest_runs_v1))
        .routes(routes!(list_flow_runs))
        .routes(routes!(list_flow_runs_v1))
        .routes(routes!(show_run))
        .routes(routes!(show_run_v1))
}

fn submit_error(err: SubmitError) -> ApiError {
    match err {
        SubmitError::FlowNotFound => ApiError::code(Code::FlowNotExist),
        SubmitError::Disabled => ApiError::code(Code::FlowDisabled),
        SubmitError::BadTrigger(e) => ApiError::Internal(anyhow::anyhow!(e)),
        SubmitError::Database(e) => ApiError::from(e),
        SubmitError::Write(e) => ApiError::Internal(anyhow::anyhow!(e)),
        SubmitError::Stale => ApiError::Internal(anyhow::anyhow!("the flow kept changing")),
    }
}

#[derive(Debug, Deserialize)]
struct RunBody {
    run_mode: Option<String>,
    #[serde(default)]
    input: Value,
    /// Sent by the MSSI editor (`editFlow`); carries no meaning here.
    #[allow(dead_code)]
    trigger_timing: Option<Value>,
}

/// R7: queue a run; the answer comes once the run is stored, its outcome is read with R3.
#[utoipa::path(post, path = "/v1/{project_id}/flows/{flow_id}/run", tag = "runs",
    params(("project_id" = String, Path), ("flow_id" = String, Path)),
    request_body = Object,
    responses((status = 200, description = "Accepted", body = Object)))]
async fn run_flow(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, id)): Path<(String, String)>,
    Json(body): Json<RunBody>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:flow:start", Code::NoPermission)?;
    let id = flow_id(&id, Code::FlowNotExist)?;
    let mode = body.run_mode.as_deref().and_then(runs::parse_mode).ok_or_else(|| {
        ApiError::with(Code::ParamInvalid, "run_mode must be manual, auto or test")
    })?;
    let input = if body.input.is_null() { json!({}) } else { body.input };
    let run = state.runs.submit(&caller.project_id, id, mode, input).await.map_err(submit_error)?;
    Ok(Json(json!({
        "running_id": run.running_id,
        "flow_id": run.flow_id,
        "success": true,
        "flow_name": run.flow_name,
        "message": "",
    })))
}

#[derive(Debug, Deserialize)]
struct WebhookBody {
    input: Option<Value>,
}

/// R10: start an automatic run of the flow whose webhook id is `id` (deprecated upstream).
#[utoipa::path(post, path = "/v1/{project_id}/flows/webhook/trigger/{id}", tag = "runs",
    params(("project_id" = String, Path), ("id" = String, Path)),
    request_body = Object,
    responses((status = 200, description = "Started", body = Object)))]
async fn trigger_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, id)): Path<(String, String)>,
    Json(body): Json<WebhookBody>,
) -> ApiResult<Json<Value>> {
    // The input is documented as a string; JSON text in it is taken as the JSON it spells.
    let input = match body.input {
        Some(Value::String(text)) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        Some(other) => other,
        None => json!({}),
    };
    state.runs.submit_webhook(&caller.project_id, &id, input).await.map_err(submit_error)?;
    Ok(Json(json!({"success": true, "message": null})))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// `<start>to<end>`, `<start> to <end>` or `<start>到<end>`; at most 30 days.
    time_range: Option<String>,
    /// Flow name substring (per-flow summary only).
    name: Option<String>,
    /// `success` or `fail`.
    status: Option<String>,
    /// Page number, from 1.
    offset: Option<i64>,
    /// Rows per page, 1 to 1000.
    limit: Option<i64>,
}

impl HistoryQuery {
    fn into_filter(self) -> ApiResult<HistoryFilter> {
        let time_range = match self.time_range.as_deref().filter(|t| !t.is_empty()) {
            Some(text) => Some(history::parse_time_range(text).map_err(|e| match e {
                TimeRangeError::Invalid => ApiError::code(Code::TimeRangeInvalid),
                TimeRangeError::TooLong => ApiError::code(Code::TimeRangeTooLong),
            })?),
            None => None,
        };
        let status = match self.status.as_deref() {
            None | Some("") => None,
            Some(s @ ("success" | "fail")) => Some(s.to_owned()),
            Some(_) => {
                return Err(ApiError::with(Code::ParamInvalid, "status must be success or fail"))
            }
        };
        let page = self.offset.unwrap_or(1).max(1);
        let limit = self.limit.unwrap_or(10);
        if self.offset.is_some_and(|o| o < 0) || limit < 1 {
            return Err(ApiError::with(Code::ParamInvalid, "offset must be >= 0, limit >= 1"));
        }
        let limit = limit.min(1000);
        Ok(HistoryFilter {
            time_range,
            name: self.name.filter(|n| !n.is_empty()),
            status,
            offset: (page - 1).saturating_mul(limit),
            limit,
        })
    }
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn summary(run: &RunSummary) -> Value {
    json!({
        "id": run.id,
        "flow_id": run.flow_id,
        "flow_name": run.flow_name,
        "flow_version_id": run.flow_version.to_string(),
        "run_model": run.run_model,
        "status": run.wire_status(),
        "icon": run.icon,
        "start_time": iso(run.start_time),
        "end_time": run.end_time.map(iso),
        "exec_time": run.exec_time(),
        "running_times": run.running_times,
        "last_time": run.last_time.map(iso),
        "message": run.message,
    })
}

fn page(total: i64, rows: &[RunSummary]) -> Json<Value> {
    let histories: Vec<Value> = rows.iter().map(summary).collect();
    Json(json!({"total": total, "count": total, "histories": histories}))
}

/// R1: the latest run of each flow.
#[utoipa::path(get, path = "/v2/{project_id}/flows/running-history", tag = "runs",
    params(("project_id" = String, Path), HistoryQuery),
    responses((status = 200, description = "One row per flow", body = Object)))]
async fn list_latest_runs(
    State(state): State<AppState>,
    caller: Caller,
    Path(_project): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:flow:listRunHistory", Code::NoPermission)?;
    let filter = query.into_filter()?;
    let (total, rows) = history::latest_per_flow(&state.db, &caller.project_id, &filter).await?;
    Ok(page(total, &rows))
}

/// R4: the v1 spelling of R1.
#[utoipa::path(get, path = "/v1/{project_id}/flows/running-history", tag = "runs",
    params(("project_id" = String, Path), HistoryQuery),
    responses((status = 200, description = "One row per flow", body = Object)))]
async fn list_latest_runs_v1(
    state: State<AppState>,
    caller: Caller,
    project: Path<String>,
    query: Query<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    list_latest_runs(state, caller, project, query).await
}

/// R2: the runs of one flow.
#[utoipa::path(get, path = "/v2/{project_id}/flows/{flow_id}/running-history", tag = "runs",
    params(("project_id" = String, Path), ("flow_id" = String, Path), HistoryQuery),
    responses((status = 200, description = "One row per run", body = Object)))]
async fn list_flow_runs(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, id)): Path<(String, String)>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:flow:listFlowRunHistory", Code::NoPermission)?;
    let id = flow_id(&id, Code::FlowNotExist)?;
    let filter = query.into_filter()?;
    let (total, rows) = history::runs_of_flow(&state.db, &caller.project_id, id, &filter)
        .await?
        .ok_or_else(|| ApiError::code(Code::FlowNotExist))?;
    Ok(page(total, &rows))
}

/// R5: the v1 spelling of R2.
#[utoipa::path(get, path = "/v1/{project_id}/flows/{flow_id}/running-history", tag = "runs",
    params(("project_id" = String, Path), ("flow_id" = String, Path), HistoryQuery),
    responses((status = 200, description = "One row per run", body = Object)))]
async fn list_flow_runs_v1(
    state: State<AppState>,
    caller: Caller,
    path: Path<(String, String)>,
    query: Query<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    list_flow_runs(state, caller, path, query).await
}

/// R3: one run with what each step did.
#[utoipa::path(get, path = "/v2/{project_id}/flows/{flow_id}/running-history/{running_id}",
    tag = "runs",
    params(("project_id" = String, Path), ("flow_id" = String, Path),
        ("running_id" = String, Path)),
    responses((status = 200, description = "The run and its steps", body = Object)))]
async fn show_run(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, flow, run)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:flow:getRunHistory", Code::NoPermission)?;
    let flow = flow_id(&flow, Code::FlowNotExist)?;
    let run = Uuid::parse_str(&run).map_err(|_| ApiError::code(Code::RunNotFound))?;
    let detail = history::run_detail(&state.db, &caller.project_id, flow, run)
        .await?
        .ok_or_else(|| ApiError::code(Code::RunNotFound))?;
    let time = |at: DateTime<Utc>| match state.config.detail_time_format {
        DetailTimeFormat::EpochMsString => json!(at.timestamp_millis().to_string()),
        DetailTimeFormat::EpochMsNumber => json!(at.timestamp_millis()),
        DetailTimeFormat::Iso => json!(iso(at)),
    };
    let r = &detail.run;
    Ok(Json(json!({
        "id": r.id,
        "flow_id": r.flow_id,
        "flow_name": r.flow_name,
        "run_model": r.run_model,
        "status": r.wire_status(),
        "icon": r.icon,
        "start_time": time(r.start_time),
        "end_time": r.end_time.map(time),
        "exec_time": r.exec_time(),
        "message": r.message,
        "steps": detail.steps,
    })))
}

/// R6: the v1 spelling of R3.
#[utoipa::path(get, path = "/v1/{project_id}/flows/{flow_id}/running-history/{running_id}",
    tag = "runs",
    params(("project_id" = String, Path), ("flow_id" = String, Path),
        ("running_id" = String, Path)),
    responses((status = 200, description = "The run and its steps", body = Object)))]
async fn show_run_v1(
    state: State<AppState>,
    caller: Caller,
    path: Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    show_run(state, caller, path).await
}
