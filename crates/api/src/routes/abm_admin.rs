//! Administration of the application model (Workbench extension): creating instances,
//! registering packages, reading an instance's catalog, and importing entities whose URNs the
//! caller chooses (connectors that build composite keys).
//!
//! Every handler needs the action `mssi:abm:admin`. Packages are shared by every project of
//! the server, instances belong to the project of the path.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use workbench_metamodel::package::Package;
use workbench_metamodel::wire::{AddEntitiesRequest, AddEntitiesResponse, EntityInput};
use workbench_metamodel::{Metamodel, Scope};

use super::abm::abm_error;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Code};
use crate::extract::{read_body, Json, Path};
use crate::AppState;

/// The action every endpoint of this module requires.
const ADMIN: &str = "mssi:abm:admin";

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_instance))
        .routes(routes!(register_package))
        .routes(routes!(show_catalog))
        .routes(routes!(import_entities))
}

/// Body of the instance creation.
#[derive(Debug, Deserialize)]
struct NewInstance {
    instance_id: Option<String>,
    #[serde(default)]
    packages: Option<Vec<String>>,
}

/// An instance and the packages it holds, in order.
#[derive(Debug, Serialize)]
struct InstanceView {
    instance_id: String,
    packages: Vec<String>,
}

/// An instance's packages with their full definitions.
#[derive(Debug, Serialize)]
struct CatalogView {
    instance_id: String,
    packages: Vec<Package>,
}

/// One entity to import: an A1 item plus the URN to store it under.
#[derive(Debug, Deserialize)]
struct ImportItem {
    #[serde(default)]
    entity_urn: Option<String>,
    #[serde(flatten)]
    entity: EntityInput,
}

#[derive(Debug, Deserialize)]
struct ImportRequest {
    #[serde(default)]
    entities: Option<Vec<ImportItem>>,
}

/// Create an instance holding packages (default: `Metamodel3`).
#[utoipa::path(post, path = "/v3/{project_id}/abm/instances", tag = "abm-admin",
    request_body = Object, responses((status = 201, body = Object)))]
async fn create_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(project_id): Path<String>,
    Json(body): Json<NewInstance>,
) -> ApiResult<(StatusCode, Json<InstanceView>)> {
    caller.require(ADMIN, Code::AbmNoPermission)?;
    let Some(instance_id) = body.instance_id else {
        return Err(ApiError::with(Code::AbmParamsInvalid, "instance_id is required"));
    };
    let packages = body.packages.unwrap_or_else(|| vec!["Metamodel3".to_owned()]);

    let scope = Scope::new(project_id, instance_id);
    service(&state).create_instance(&scope, &packages).await.map_err(abm_error)?;
    let view = InstanceView { instance_id: scope.instance_id, packages };
    Ok((StatusCode::CREATED, Json(view)))
}

/// Register a package definition, JSON or YAML text; the same `package_id` again replaces it.
#[utoipa::path(post, path = "/v3/{project_id}/abm/packages", tag = "abm-admin",
    request_body(content = String, content_type = "text/plain"),
    responses((status = 200, body = Object)))]
async fn register_package(
    State(state): State<AppState>,
    caller: Caller,
    Path(_project_id): Path<String>,
    request: Request<Body>,
) -> ApiResult<Json<Package>> {
    caller.require(ADMIN, Code::AbmNoPermission)?;
    let (parts, body) = request.into_parts();
    let bytes = read_body(body, &parts.headers, state.config.body_limit).await?;
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Err(ApiError::with(Code::AbmParamsInvalid, "the package is not UTF-8 text"));
    };
    service(&state).register_package(text).await.map(Json).map_err(abm_error)
}

/// The packages of an instance with their entity types, signature types and relationships.
#[utoipa::path(get, path = "/v3/{project_id}/abm/instances/{instance_id}/catalog",
    tag = "abm-admin", responses((status = 200, body = Object)))]
async fn show_catalog(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, instance_id)): Path<(String, String)>,
) -> ApiResult<Json<CatalogView>> {
    caller.require(ADMIN, Code::AbmNoPermission)?;
    let scope = Scope::new(project_id, instance_id);
    let packages = service(&state).instance_packages(&scope).await.map_err(abm_error)?;
    let packages = packages.iter().map(|p| Package::clone(p)).collect();
    Ok(Json(CatalogView { instance_id: scope.instance_id, packages }))
}

/// Add entities under URNs the caller chooses (A1 rules otherwise; an item without
/// `entity_urn` gets a generated one). The URN's type must be the item's `entity_type`.
#[utoipa::path(post,
    path = "/v3/{project_id}/abm/instances/{instance_id}/metadata3/entities/import",
    tag = "abm-admin", request_body = Object, responses((status = 200, body = Object)))]
async fn import_entities(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, instance_id)): Path<(String, String)>,
    Json(body): Json<ImportRequest>,
) -> ApiResult<Json<AddEntitiesResponse>> {
    caller.require(ADMIN, Code::AbmNoPermission)?;
    // `EntityInput` never takes `entity_urn` from JSON; `ImportItem` does.
    let entities = body.entities.map(|items| {
        items
            .into_iter()
            .map(|item| EntityInput { entity_urn: item.entity_urn, ..item.entity })
            .collect()
    });

    let scope = Scope::new(project_id, instance_id);
    let request = AddEntitiesRequest { entities };
    service(&state).add_entities(&scope, request).await.map(Json).map_err(abm_error)
}

fn service(state: &AppState) -> Metamodel {
    Metamodel::new(state.db.clone())
}
