//! Connections C1–C5, and our extension `POST …/connections/{connect_id}/test`.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use workbench_engine::connections::{self, ConnectionError, ConnectionInput, DbConnections, Owner};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Code};
use crate::extract::{Json, Path, Query};
use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_connection, list_connections))
        .routes(routes!(update_connection, delete_connection, show_connection))
        .routes(routes!(test_connection))
}

fn connection_error(err: ConnectionError) -> ApiError {
    match err {
        ConnectionError::NotFound => ApiError::code(Code::ConnectionNotFound),
        ConnectionError::DuplicateName(_) => ApiError::with(Code::DuplicateConnectionName, err),
        ConnectionError::InUse(_) => ApiError::with(Code::ConnectionInUse, err),
        ConnectionError::Invalid(_) => ApiError::with(Code::ParamInvalid, err),
        ConnectionError::Sealed => ApiError::Internal(anyhow::anyhow!(err)),
        ConnectionError::Database(e) => ApiError::from(e),
    }
}

fn connection_id(text: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(text).map_err(|_| ApiError::code(Code::ConnectionNotFound))
}

fn res_msg() -> Json<Value> {
    Json(json!({"res_code": 200, "res_msg": "success", "res_log": null}))
}

/// C1: create a connection (BaseConnectionInfo). Secret values are stored sealed.
#[utoipa::path(post, path = "/v1/{project_id}/connections", tag = "connections",
    params(("project_id" = String, Path)),
    request_body = Object,
    responses((status = 200, description = "ResMsg", body = Object)))]
async fn create_connection(
    State(state): State<AppState>,
    caller: Caller,
    Path(_project): Path<String>,
    Json(body): Json<ConnectionInput>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:connection:create", Code::NoPermission)?;
    let owner = Owner {
        project_id: caller.project_id.clone(),
        domain_id: caller.domain_id.clone(),
        user_id: caller.user_id.clone(),
    };
    let id = connections::create(&state.db, &state.sealer, &owner, body)
        .await
        .map_err(connection_error)?;
    let mut answer = res_msg();
    answer.0["id"] = json!(id);
    Ok(answer)
}

/// C2: change a connection (ConnectionInfo); a secret sent back as `****` is kept.
#[utoipa::path(put, path = "/v1/{project_id}/connections/{connect_id}", tag = "connections",
    params(("project_id" = String, Path), ("connect_id" = String, Path)),
    request_body = Object,
    responses((status = 200, description = "ResMsg", body = Object)))]
async fn update_connection(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, id)): Path<(String, String)>,
    Json(body): Json<ConnectionInput>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:connection:update", Code::NoPermission)?;
    let id = connection_id(&id)?;
    connections::update(&state.db, &state.sealer, &caller.project_id, id, body)
        .await
        .map_err(connection_error)?;
    Ok(res_msg())
}

/// C3: delete a connection no enabled flow uses.
#[utoipa::path(delete, path = "/v1/{project_id}/connections/{connect_id}", tag = "connections",
    params(("project_id" = String, Path), ("connect_id" = String, Path)),
    responses((status = 200, description = "ResMsg", body = Object)))]
async fn delete_connection(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:connection:delete", Code::NoPermission)?;
    let id = connection_id(&id)?;
    connections::delete(&state.db, &caller.project_id, id).await.map_err(connection_error)?;
    Ok(res_msg())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Page number, from 1.
    offset: Option<i64>,
    /// Connections per page, 1 to 1000.
    limit: Option<i64>,
    /// Connection name substring.
    name: Option<String>,
}

/// C4: list connections, secrets masked.
#[utoipa::path(get, path = "/v1/{project_id}/connections", tag = "connections",
    params(("project_id" = String, Path), ListQuery),
    responses((status = 200, description = "Connections", body = Object)))]
async fn list_connections(
    State(state): State<AppState>,
    caller: Caller,
    Path(_project): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:connection:list", Code::NoPermission)?;
    let page = query.offset.unwrap_or(1);
    let limit = query.limit.unwrap_or(10);
    if page < 0 || limit < 1 {
        return Err(ApiError::with(Code::ParamInvalid, "offset must be >= 1 and limit >= 1"));
    }
    let name = query.name.as_deref().filter(|n| !n.is_empty());
    let (total, infos) =
        connections::list(&state.db, &caller.project_id, name, page, limit.min(1000))
            .await
            .map_err(connection_error)?;
    Ok(Json(json!({"total": total, "count": infos.len(), "connections": infos})))
}

/// C5: one connection (ConnectionInfo), secrets masked.
#[utoipa::path(get, path = "/v1/{project_id}/connections/{connect_id}", tag = "connections",
    params(("project_id" = String, Path), ("connect_id" = String, Path)),
    responses((status = 200, description = "ConnectionInfo", body = Object)))]
async fn show_connection(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:connection:get", Code::NoPermission)?;
    let id = connection_id(&id)?;
    let info =
        connections::get(&state.db, &caller.project_id, id).await.map_err(connection_error)?;
    Ok(Json(info))
}

/// Our extension: check the connection's credentials (OAuth2 token fetch, or a GET to
/// `host_config.test_url` with the connection's authentication).
#[utoipa::path(post, path = "/v1/{project_id}/connections/{connect_id}/test",
    tag = "connections",
    params(("project_id" = String, Path), ("connect_id" = String, Path)),
    responses((status = 200, description = "`{success, message}`", body = Object)))]
async fn test_connection(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:connection:test", Code::NoPermission)?;
    let id = connection_id(&id)?;
    let resolver = DbConnections::new(state.db.clone(), state.sealer.clone());
    let outcome = resolver.test(&caller.project_id, id).await.map_err(connection_error)?;
    Ok(Json(json!({"success": outcome.success, "message": outcome.message})))
}
