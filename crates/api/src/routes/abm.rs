//! ABM metadata endpoints A1–A6 (contract §4.7) and Workbench's read extensions, all under
//! `/v3/{project_id}/abm/instances/{instance_id}/metadata3/`.
//!
//! Each handler checks its IAM action, then calls `workbench_metamodel`, which validates,
//! writes and shapes the response. IAM actions *(decision, §4.8)*: A1 `mssi:abm:create`; A2,
//! A5 and A6 `mssi:abm:update`; A3 and A4 `mssi:abm:delete`; reading one entity, its edges or
//! its lineage `mssi:abm:get`; the listing `mssi:abm:list`.
//!
//! `{entity_urn}` arrives percent-encoded (`urn%3Aabm%3A…%28…%2C…%29`); the `Path` extractor
//! decodes it, and a `%2F` stays inside its segment.

use axum::extract::State;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use workbench_metamodel::wire::{
    AddEntitiesRequest, AddEntitiesResponse, DeleteEntitiesRequest, DeleteResponse, EntityInput,
    EntityResponse, RelationshipView, RelationshipsRequest, RelationshipsResponse,
    SignaturesRequest, SignaturesResponse,
};
use workbench_metamodel::{
    Direction, EntityPage, EntityQuery, Graph, Metamodel, MetamodelError, Scope, WalkQuery,
};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Code, Domain};
use crate::extract::{BatchJson, Json, Path, Query};
use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_entities, list_entities))
        .routes(routes!(update_entity, delete_entity, get_entity))
        .routes(routes!(delete_entities))
        .routes(routes!(change_relationships))
        .routes(routes!(change_signatures))
        .routes(routes!(entity_relationships))
        .routes(routes!(entity_lineage))
}

/// A1: add entities.
#[utoipa::path(post, path = "/v3/{project_id}/abm/instances/{instance_id}/metadata3/entities",
    tag = "abm", request_body = Object, responses((status = 200, body = Object)))]
async fn add_entities(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, instance_id)): Path<(String, String)>,
    BatchJson(body): BatchJson<AddEntitiesRequest>,
) -> ApiResult<Json<AddEntitiesResponse>> {
    caller.require("mssi:abm:create", Code::AbmNoPermission)?;
    let scope = Scope::new(project_id, instance_id);
    service(&state).add_entities(&scope, body).await.map(Json).map_err(abm_error)
}

/// A2: update one entity.
#[utoipa::path(put,
    path = "/v3/{project_id}/abm/instances/{instance_id}/metadata3/entities/{entity_urn}",
    tag = "abm", request_body = Object, responses((status = 200, body = Object)))]
async fn update_entity(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, instance_id, urn)): Path<(String, String, String)>,
    BatchJson(body): BatchJson<EntityInput>,
) -> ApiResult<Json<EntityResponse>> {
    caller.require("mssi:abm:update", Code::AbmNoPermission)?;
    let scope = Scope::new(project_id, instance_id);
    service(&state).update_entity(&scope, &urn, body).await.map(Json).map_err(abm_error)
}

/// A3: delete one entity.
#[utoipa::path(delete,
    path = "/v3/{project_id}/abm/instances/{instance_id}/metadata3/entities/{entity_urn}",
    tag = "abm", responses((status = 200, body = Object)))]
async fn delete_entity(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, instance_id, urn)): Path<(String, String, String)>,
) -> ApiResult<Json<DeleteResponse>> {
    caller.require("mssi:abm:delete", Code::AbmNoPermission)?;
    let scope = Scope::new(project_id, instance_id);
    service(&state).delete_entity(&scope, &urn).await.map(Json).map_err(abm_error)
}

/// A4: delete a batch of entities.
#[utoipa::path(post,
    path = "/v3/{project_id}/abm/instances/{instance_id}/metadata3/entities/delete",
    tag = "abm", request_body = Object, responses((status = 200, body = Object)))]
async fn delete_entities(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, instance_id)): Path<(String, String)>,
    BatchJson(body): BatchJson<DeleteEntitiesRequest>,
) -> ApiResult<Json<DeleteResponse>> {
    caller.require("mssi:abm:delete", Code::AbmNoPermission)?;
    let scope = Scope::new(project_id, instance_id);
    service(&state).delete_entities(&scope, body).await.map(Json).map_err(abm_error)
}

/// A5: upsert or delete relationships.
#[utoipa::path(post,
    path = "/v3/{project_id}/abm/instances/{instance_id}/metadata3/relationships",
    tag = "abm", request_body = Object, responses((status = 200, body = Object)))]
async fn change_relationships(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, instance_id)): Path<(String, String)>,
    BatchJson(body): BatchJson<RelationshipsRequest>,
) -> ApiResult<Json<RelationshipsResponse>> {
    caller.require("mssi:abm:update", Code::AbmNoPermission)?;
    let scope = Scope::new(project_id, instance_id);
    service(&state).change_relationships(&scope, body).await.map(Json).map_err(abm_error)
}

/// A6: change the signatures of one entity.
#[utoipa::path(post,
    path = "/v3/{project_id}/abm/instances/{instance_id}/metadata3/signatures",
    tag = "abm", request_body = Object, responses((status = 200, body = Object)))]
async fn change_signatures(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, instance_id)): Path<(String, String)>,
    BatchJson(body): BatchJson<SignaturesRequest>,
) -> ApiResult<Json<SignaturesResponse>> {
    caller.require("mssi:abm:update", Code::AbmNoPermission)?;
    let scope = Scope::new(project_id, instance_id);
    service(&state).change_signatures(&scope, body).await.map(Json).map_err(abm_error)
}

/// Read one entity with its signatures (Workbench extension).
#[utoipa::path(get,
    path = "/v3/{project_id}/abm/instances/{instance_id}/metadata3/entities/{entity_urn}",
    tag = "abm", responses((status = 200, body = Object)))]
async fn get_entity(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, instance_id, urn)): Path<(String, String, String)>,
) -> ApiResult<Json<EntityResponse>> {
    caller.require("mssi:abm:get", Code::AbmNoPermission)?;
    let scope = Scope::new(project_id, instance_id);
    service(&state).get_entity(&scope, &urn).await.map(Json).map_err(abm_error)
}

/// Query of the listing; every value is read as text and checked here so that a bad value
/// answers with the ABM code rather than the flow domain's.
#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(rename = "type")]
    entity_type: Option<String>,
    name: Option<String>,
    offset: Option<String>,
    limit: Option<String>,
}

/// List entities by type and name substring (Workbench extension).
#[utoipa::path(get, path = "/v3/{project_id}/abm/instances/{instance_id}/metadata3/entities",
    tag = "abm", responses((status = 200, body = Object)))]
async fn list_entities(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, instance_id)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<EntityPage>> {
    caller.require("mssi:abm:list", Code::AbmNoPermission)?;
    let query = EntityQuery {
        entity_type: query.entity_type,
        name: query.name,
        offset: number("offset", query.offset.as_deref())?,
        limit: number("limit", query.limit.as_deref())?,
    };
    let scope = Scope::new(project_id, instance_id);
    service(&state).list_entities(&scope, &query).await.map(Json).map_err(abm_error)
}

#[derive(Debug, Deserialize)]
struct EdgeQuery {
    direction: Option<String>,
}

/// The edges of one entity: `direction` is `out`, `in` or `both` (default).
#[utoipa::path(get,
    path = "/v3/{project_id}/abm/instances/{instance_id}/metadata3/entities/{entity_urn}/\
            relationships",
    tag = "abm", responses((status = 200, body = Object)))]
async fn entity_relationships(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, instance_id, urn)): Path<(String, String, String)>,
    Query(query): Query<EdgeQuery>,
) -> ApiResult<Json<Vec<RelationshipView>>> {
    caller.require("mssi:abm:get", Code::AbmNoPermission)?;
    let direction = direction(query.direction.as_deref())?;
    let scope = Scope::new(project_id, instance_id);
    let edges = service(&state).relationships_of(&scope, &urn, direction).await;
    edges.map(Json).map_err(abm_error)
}

#[derive(Debug, Deserialize)]
struct LineageQuery {
    hops: Option<String>,
    direction: Option<String>,
    relationship_code: Option<String>,
}

/// Walk relationships from one entity: `hops` 1–5 (default 1), `direction` (default both),
/// optionally only edges of `relationship_code`.
#[utoipa::path(get,
    path = "/v3/{project_id}/abm/instances/{instance_id}/metadata3/entities/{entity_urn}/lineage",
    tag = "abm", responses((status = 200, body = Object)))]
async fn entity_lineage(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, instance_id, urn)): Path<(String, String, String)>,
    Query(query): Query<LineageQuery>,
) -> ApiResult<Json<Graph>> {
    caller.require("mssi:abm:get", Code::AbmNoPermission)?;
    let hops = number("hops", query.hops.as_deref())?.unwrap_or(1);
    let Ok(hops) = u32::try_from(hops) else {
        return Err(ApiError::with(Code::AbmParamsInvalid, "hops must be 1-5"));
    };
    let walk = WalkQuery {
        entity_urn: urn,
        hops,
        direction: direction(query.direction.as_deref())?,
        relationship_code: query.relationship_code,
    };
    let scope = Scope::new(project_id, instance_id);
    service(&state).walk(&scope, &walk).await.map(Json).map_err(abm_error)
}

fn service(state: &AppState) -> Metamodel {
    Metamodel::new(state.db.clone())
}

fn number(field: &str, value: Option<&str>) -> ApiResult<Option<i64>> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let parsed = value.parse::<i64>().map_err(|_| {
        ApiError::with(Code::AbmParamsInvalid, format_args!("{field} must be an integer"))
    })?;
    Ok(Some(parsed))
}

fn direction(value: Option<&str>) -> ApiResult<Direction> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("both") => Ok(Direction::Both),
        Some("out") => Ok(Direction::Out),
        Some("in") => Ok(Direction::In),
        Some(other) => Err(ApiError::with(
            Code::AbmParamsInvalid,
            format_args!("direction {other} is not in, out or both"),
        )),
    }
}

/// Maps the metamodel's errors onto the ABM codes of contract §3.3.
pub(super) fn abm_error(err: MetamodelError) -> ApiError {
    match err {
        MetamodelError::TooManyItems { .. } | MetamodelError::InvalidRequest(_) => {
            ApiError::with(Code::AbmParamsInvalid, err)
        }
        MetamodelError::InstanceNotFound(_) | MetamodelError::EntityNotFound(_) => {
            ApiError::with(Code::AbmNotFound, err)
        }
        // The detail goes to the response extensions and is logged once by the telemetry
        // middleware; the client sees the generic ABM 500.
        MetamodelError::Database(source) => ApiError::internal_in(Domain::Abm, source),
    }
}

#[cfg(test)]
#[path = "abm_tests.rs"]
mod tests;
