//! The connector catalog K1 and custom connectors K2–K5.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use workbench_engine::custom::{self, CatalogFilter, CustomError, CustomInput};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Code};
use crate::extract::{Json, Path, Query};
use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_catalog))
        .routes(routes!(create_custom, list_custom))
        .routes(routes!(delete_custom))
        .routes(routes!(release_custom))
}

fn custom_error(err: CustomError) -> ApiError {
    match err {
        CustomError::NotFound => ApiError::code(Code::ConnectorNotFound),
        CustomError::BuiltIn(_) => ApiError::with(Code::ConnectorCannotDelete, err),
        CustomError::InUse(_) => ApiError::with(Code::ConnectorInUse, err),
        CustomError::NoName => ApiError::with(Code::ConnectorNameEmpty, err),
        CustomError::Document(_) => ApiError::with(Code::NotSwagger, err),
        CustomError::Database(e) => ApiError::from(e),
    }
}

fn page(offset: Option<i64>, limit: Option<i64>) -> ApiResult<(i64, i64)> {
    let offset = offset.unwrap_or(0);
    let limit = limit.unwrap_or(10);
    if offset < 0 || limit < 1 {
        return Err(ApiError::with(Code::ParamInvalid, "offset must be >= 0 and limit >= 1"));
    }
    Ok((offset, limit.min(1000)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CatalogQuery {
    /// Rows to skip.
    offset: Option<i64>,
    /// Rows to return, 1 to 1000.
    limit: Option<i64>,
    /// `onboard` (built-in connectors) or `custom` (this project's); both when absent.
    scope: Option<String>,
    /// Category substring.
    category: Option<String>,
    /// Name substring.
    name: Option<String>,
    /// Accepted for SDK compatibility.
    operation_type: Option<String>,
}

/// K1: the connector catalog.
#[utoipa::path(get, path = "/v2/{project_id}/connectors", tag = "connectors",
    params(("project_id" = String, Path), CatalogQuery),
    responses((status = 200, description = "`{count, connectors}`", body = Object)))]
async fn list_catalog(
    State(state): State<AppState>,
    caller: Caller,
    Path(_project): Path<String>,
    Query(query): Query<CatalogQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:connector:list", Code::NoPermission)?;
    let _ = query.operation_type;
    let (offset, limit) = page(query.offset, query.limit)?;
    let filter = CatalogFilter {
        scope: query.scope.filter(|s| !s.is_empty()),
        category: query.category.filter(|s| !s.is_empty()),
        name: query.name.filter(|s| !s.is_empty()),
        offset,
        limit,
    };
    let (count, connectors) =
        custom::catalog(&state.db, &state.registry, &caller.project_id, &filter)
            .await
            .map_err(custom_error)?;
    Ok(Json(json!({"count": count, "connectors": connectors})))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CustomQuery {
    /// Rows to skip.
    offset: Option<i64>,
    /// Rows to return, 1 to 1000.
    limit: Option<i64>,
    /// Name substring.
    name: Option<String>,
}

/// K2: this project's custom connectors (ConnectorInfo0).
#[utoipa::path(get, path = "/v2/{project_id}/connectors/custom-connectors", tag = "connectors",
    params(("project_id" = String, Path), CustomQuery),
    responses((status = 200, description = "`{count, connector_infos}`", body = Object)))]
async fn list_custom(
    State(state): State<AppState>,
    caller: Caller,
    Path(_project): Path<String>,
    Query(query): Query<CustomQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:connector:list", Code::NoPermission)?;
    let (offset, limit) = page(query.offset, query.limit)?;
    let name = query.name.as_deref().filter(|n| !n.is_empty());
    let (count, infos) = custom::list(&state.db, &caller.project_id, name, offset, limit)
        .await
        .map_err(custom_error)?;
    Ok(Json(json!({"count": count, "connector_infos": infos})))
}

/// K3: a custom connector from an OpenAPI 3.x or Swagger 2.0 document (`swagger`: an object,
/// or JSON/YAML text).
#[utoipa::path(post, path = "/v2/{project_id}/connectors/custom-connectors", tag = "connectors",
    params(("project_id" = String, Path)),
    request_body = Object,
    responses((status = 200, description = "The new connector", body = Object)))]
async fn create_custom(
    State(state): State<AppState>,
    caller: Caller,
    Path(_project): Path<String>,
    Json(body): Json<CustomInput>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:connector:create", Code::NoPermission)?;
    let created =
        custom::create(&state.db, &caller.project_id, body).await.map_err(custom_error)?;
    let at = created.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Ok(Json(json!({
        "id": created.id.to_string(),
        "name": created.name,
        "description": created.description,
        "version": created.version,
        "connector_version_id": created.version_id.to_string(),
        "created_time": at,
        "updated_time": at,
    })))
}

/// K4: delete a custom connector no flow or template uses.
#[utoipa::path(delete, path = "/v2/{project_id}/connectors/custom-connectors/{connector_id}",
    tag = "connectors",
    params(("project_id" = String, Path), ("connector_id" = String, Path)),
    responses((status = 200, description = "ResMsg", body = Object)))]
async fn delete_custom(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:connector:delete", Code::NoPermission)?;
    custom::delete(&state.db, &state.registry, &caller.project_id, &id)
        .await
        .map_err(custom_error)?;
    Ok(Json(json!({"res_code": 200, "res_msg": "success", "res_log": null})))
}

/// K5: publish a custom connector (status `released`).
#[utoipa::path(post,
    path = "/v2/{project_id}/connectors/custom-connectors/{connector_id}/release",
    tag = "connectors",
    params(("project_id" = String, Path), ("connector_id" = String, Path)),
    responses((status = 200, description = "ResMsg", body = Object)))]
async fn release_custom(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:connector:release", Code::NoPermission)?;
    custom::release(&state.db, &state.registry, &caller.project_id, &id).await.map_err(
        |e| match e {
            CustomError::BuiltIn(_) => ApiError::with(Code::ConnectorNotFound, e),
            other => custom_error(other),
        },
    )?;
    Ok(Json(json!({"res_code": 200, "res_msg": "success", "res_log": null})))
}
