//! Flow definitions: F1–F5 (the SDK's flow endpoints) and R8/R9 (enable, disable).

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use workbench_engine::flows::{self, FlowChange, FlowError, Owner};
use workbench_engine::store::FlowFilter;
use workbench_engine::ValidationKind;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Code};
use crate::extract::{Json, Path, Query};
use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_flow, list_flows))
        .routes(routes!(update_flow, delete_flow))
        .routes(routes!(show_flow))
        .routes(routes!(enable_flow))
        .routes(routes!(disable_flow))
}

/// Maps a flow failure; `missing` is the code of the endpoint group for an unknown flow.
pub(super) fn flow_error(err: FlowError, missing: Code) -> ApiError {
    match err {
        FlowError::NotFound => ApiError::code(missing),
        FlowError::VersionNotFound(_) => ApiError::with(missing, err),
        FlowError::DuplicateName(_) => ApiError::with(Code::DuplicateFlowName, err),
        FlowError::Enabled => ApiError::code(Code::FlowIsEnabled),
        FlowError::Invalid(_) => ApiError::with(Code::ParamInvalid, err),
        FlowError::WrongType(_) => ApiError::with(Code::BindFailed, err),
        FlowError::Graph(_) => {
            let code = match err.graph_kind() {
                Some(ValidationKind::NoTrigger) => Code::NoTriggerStep,
                Some(ValidationKind::InvalidTriggerType) => Code::TriggerTypeInvalid,
                Some(ValidationKind::UnknownConnector) => Code::ConnectorNotExist,
                Some(ValidationKind::UnknownOperation) => Code::ActionNotExist,
                _ => Code::ParamInvalid,
            };
            ApiError::with(code, err)
        }
        FlowError::Database(e) => ApiError::from(e),
    }
}

/// A flow id from the path; a malformed one names no flow.
pub(super) fn flow_id(text: &str, missing: Code) -> ApiResult<Uuid> {
    Uuid::parse_str(text).map_err(|_| ApiError::code(missing))
}

fn change(c: &FlowChange) -> Json<Value> {
    Json(json!({"flow_id": c.flow_id, "apig_url": c.apig_url, "webhook": c.webhook, "steps": []}))
}

/// F1: create a flow (FlowMeta body).
#[utoipa::path(post, path = "/v1/{project_id}/flows", tag = "flows",
    params(("project_id" = String, Path)),
    request_body = Object,
    responses((status = 200, description = "FlowChangeResp", body = Object)))]
async fn create_flow(
    State(state): State<AppState>,
    caller: Caller,
    Path(_project): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:flow:create", Code::NoPermission)?;
    let owner = Owner {
        project_id: caller.project_id.clone(),
        domain_id: caller.domain_id.clone(),
        user_id: caller.user_id.clone(),
    };
    let created = flows::create(&state.db, &state.registry, &owner, body)
        .await
        .map_err(|e| flow_error(e, Code::FlowNotFound))?;
    Ok(change(&created))
}

/// F2: replace a flow's definition with a new version.
#[utoipa::path(put, path = "/v1/{project_id}/flows/{flow_id}", tag = "flows",
    params(("project_id" = String, Path), ("flow_id" = String, Path)),
    request_body = Object,
    responses((status = 200, description = "FlowChangeResp", body = Object)))]
async fn update_flow(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, id)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:flow:update", Code::NoPermission)?;
    let id = flow_id(&id, Code::FlowNotFound)?;
    let changed = flows::update(&state.db, &state.registry, &caller.project_id, id, body)
        .await
        .map_err(|e| flow_error(e, Code::FlowNotFound))?;
    Ok(change(&changed))
}

/// F3: delete a disabled flow.
#[utoipa::path(delete, path = "/v1/{project_id}/flows/{flow_id}", tag = "flows",
    params(("project_id" = String, Path), ("flow_id" = String, Path)),
    responses((status = 200, description = "ResMsg", body = Object)))]
async fn delete_flow(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:flow:delete", Code::NoPermission)?;
    let id = flow_id(&id, Code::FlowNotFound)?;
    flows::delete(&state.db, &caller.project_id, id)
        .await
        .map_err(|e| flow_error(e, Code::FlowNotFound))?;
    Ok(Json(json!({"res_code": 200, "res_msg": "success", "res_log": null})))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Rows to skip.
    offset: Option<i64>,
    /// Rows to return, 1 to 1000.
    limit: Option<i64>,
    /// Flow name substring.
    name: Option<String>,
    /// Flow type (`instant`, `scheduled`, `api`, `automated`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    flow_type: Option<String>,
    /// Accepted for SDK compatibility; flows have no children here.
    have_child_flow: Option<bool>,
    /// Comma-separated flow ids.
    ids: Option<String>,
}

/// F4: list flows (`count` is a string, as the SDKs model it).
#[utoipa::path(get, path = "/v1/{project_id}/flows", tag = "flows",
    params(("project_id" = String, Path), ListQuery),
    responses((status = 200, description = "Flows", body = Object)))]
async fn list_flows(
    State(state): State<AppState>,
    caller: Caller,
    Path(_project): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:flow:list", Code::NoPermission)?;
    let _ = query.have_child_flow;
    let offset = query.offset.unwrap_or(0);
    let limit = query.limit.unwrap_or(10);
    if offset < 0 || limit < 1 {
        return Err(ApiError::with(Code::ParamInvalid, "offset must be >= 0 and limit >= 1"));
    }
    let ids = match query.ids.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(text) => Some(
            text.split(',')
                .map(|id| Uuid::parse_str(id.trim()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| ApiError::with(Code::ParamInvalid, "ids must be flow ids"))?,
        ),
        None => None,
    };
    let filter = FlowFilter {
        name: query.name.filter(|n| !n.is_empty()),
        flow_type: query.flow_type.filter(|t| !t.is_empty()),
        ids,
        offset,
        limit: limit.min(1000),
    };
    let (total, metas) = flows::list(&state.db, &caller.project_id, &filter)
        .await
        .map_err(|e| flow_error(e, Code::FlowNotFound))?;
    Ok(Json(json!({"count": total.to_string(), "flow_metas": metas})))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ShowQuery {
    /// A saved version; the latest when absent.
    version: Option<String>,
}

/// F5: one flow as FlowMeta, at its latest or a given version.
#[utoipa::path(get, path = "/v2/{project_id}/flows/{flow_id}", tag = "flows",
    params(("project_id" = String, Path), ("flow_id" = String, Path), ShowQuery),
    responses((status = 200, description = "FlowMeta", body = Object)))]
async fn show_flow(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, id)): Path<(String, String)>,
    Query(query): Query<ShowQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:flow:get", Code::NoPermission)?;
    let id = flow_id(&id, Code::FlowNotFound)?;
    let version = match query.version.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => Some(
            v.parse::<i32>()
                .map_err(|_| ApiError::with(Code::ParamInvalid, "version must be a number"))?,
        ),
        None => None,
    };
    let meta = flows::get(&state.db, &caller.project_id, id, version)
        .await
        .map_err(|e| flow_error(e, Code::FlowNotFound))?;
    Ok(Json(meta))
}

/// R8: enable a flow (arms its automatic triggers).
#[utoipa::path(post, path = "/v1/{project_id}/flows/{flow_id}/enable", tag = "flows",
    params(("project_id" = String, Path), ("flow_id" = String, Path)),
    responses((status = 200, description = "Enabled", body = Object)))]
async fn enable_flow(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:flow:enable", Code::NoPermission)?;
    set_enabled(&state, &caller, &id, true).await
}

/// R9: disable a flow.
#[utoipa::path(post, path = "/v1/{project_id}/flows/{flow_id}/disable", tag = "flows",
    params(("project_id" = String, Path), ("flow_id" = String, Path)),
    responses((status = 200, description = "Disabled", body = Object)))]
async fn disable_flow(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:flow:disable", Code::NoPermission)?;
    set_enabled(&state, &caller, &id, false).await
}

async fn set_enabled(
    state: &AppState,
    caller: &Caller,
    id: &str,
    enabled: bool,
) -> ApiResult<Json<Value>> {
    let id = flow_id(id, Code::FlowNotExist)?;
    flows::set_enabled(&state.db, &caller.project_id, id, enabled)
        .await
        .map_err(|e| flow_error(e, Code::FlowNotExist))?;
    Ok(Json(json!({"success": true, "message": null})))
}
