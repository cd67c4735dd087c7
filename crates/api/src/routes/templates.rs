//! Flow templates: F6 (a template from a flow), and our extensions to list templates and to
//! make a flow from one.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use workbench_engine::flows::Owner;
use workbench_engine::templates::{self, TemplateError, TemplateMessage};

use super::flows::{flow_error, flow_id};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Code};
use crate::extract::{Json, Path, Query};
use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_template))
        .routes(routes!(list_templates))
        .routes(routes!(create_flow_from_template))
}

fn template_error(err: TemplateError) -> ApiError {
    match err {
        TemplateError::NotFound => ApiError::code(Code::TemplateNotFound),
        TemplateError::Invalid(_) => ApiError::with(Code::ParamInvalid, err),
        TemplateError::Flow(e) => flow_error(e, Code::FlowNotFound),
        TemplateError::Database(e) => ApiError::from(e),
    }
}

/// F6: a template from a flow (TemplateMessage). Answers FlowChangeResp whose `flow_id` is
/// the new template's id (also given as `template_id`).
#[utoipa::path(post, path = "/v1/{project_id}/flows/{flow_id}/templates", tag = "templates",
    params(("project_id" = String, Path), ("flow_id" = String, Path)),
    request_body = Object,
    responses((status = 200, description = "FlowChangeResp", body = Object)))]
async fn create_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, id)): Path<(String, String)>,
    Json(body): Json<TemplateMessage>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:template:create", Code::NoPermission)?;
    let id = flow_id(&id, Code::FlowNotFound)?;
    let template = templates::from_flow(&state.db, &caller.project_id, id, body)
        .await
        .map_err(template_error)?;
    Ok(Json(json!({"flow_id": template.to_string(), "template_id": template.to_string(),
        "apig_url": null, "webhook": null, "steps": []})))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Rows to skip.
    offset: Option<i64>,
    /// Rows to return, 1 to 1000.
    limit: Option<i64>,
    /// Template name substring.
    name: Option<String>,
}

/// Our extension: list templates.
#[utoipa::path(get, path = "/v1/{project_id}/templates", tag = "templates",
    params(("project_id" = String, Path), ListQuery),
    responses((status = 200, description = "`{count, templates}`", body = Object)))]
async fn list_templates(
    State(state): State<AppState>,
    caller: Caller,
    Path(_project): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:template:list", Code::NoPermission)?;
    let offset = query.offset.unwrap_or(0);
    let limit = query.limit.unwrap_or(10);
    if offset < 0 || limit < 1 {
        return Err(ApiError::with(Code::ParamInvalid, "offset must be >= 0 and limit >= 1"));
    }
    let name = query.name.as_deref().filter(|n| !n.is_empty());
    let (count, items) =
        templates::list(&state.db, &caller.project_id, name, offset, limit.min(1000))
            .await
            .map_err(template_error)?;
    Ok(Json(json!({"count": count, "templates": items})))
}

/// The body of a flow made from a template.
#[derive(Debug, Deserialize)]
struct NewFlow {
    name: String,
}

/// Our extension: a new (disabled) flow from a template, named by `name` in the body.
#[utoipa::path(post, path = "/v1/{project_id}/templates/{template_id}/flows", tag = "templates",
    params(("project_id" = String, Path), ("template_id" = String, Path)),
    request_body = Object,
    responses((status = 200, description = "FlowChangeResp", body = Object)))]
async fn create_flow_from_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, id)): Path<(String, String)>,
    Json(body): Json<NewFlow>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:flow:create", Code::NoPermission)?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::code(Code::TemplateNotFound))?;
    let owner = Owner {
        project_id: caller.project_id.clone(),
        domain_id: caller.domain_id.clone(),
        user_id: caller.user_id.clone(),
    };
    let created = templates::instantiate(&state.db, &state.registry, &owner, id, &body.name)
        .await
        .map_err(template_error)?;
    Ok(Json(json!({"flow_id": created.flow_id, "apig_url": null, "webhook": created.webhook,
        "steps": []})))
}
