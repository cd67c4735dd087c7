//! A local stand-in for the IAM token service: password login issues a project-scoped token,
//! returned in `X-Subject-Token` as Huawei Cloud IAM does, so SDK clients configured for
//! token auth work unchanged.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::token::{timestamp, Claims};
use crate::error::{ApiError, ApiResult, Code};
use crate::extract::{Json, Query};
use crate::{store, tenancy, AppState};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_token, check_token)).routes(routes!(list_projects))
}

#[derive(Deserialize)]
struct TokenRequest {
    auth: AuthBody,
}

#[derive(Deserialize)]
struct AuthBody {
    identity: Identity,
    #[serde(default)]
    scope: Option<Scope>,
}

#[derive(Deserialize)]
struct Identity {
    methods: Vec<String>,
    password: Option<PasswordIdentity>,
}

#[derive(Deserialize)]
struct PasswordIdentity {
    user: PasswordUser,
}

#[derive(Deserialize)]
struct PasswordUser {
    name: String,
    password: String,
    domain: NamedRef,
}

#[derive(Deserialize)]
struct NamedRef {
    name: Option<String>,
    id: Option<String>,
}

#[derive(Deserialize)]
struct Scope {
    project: Option<ProjectRef>,
    domain: Option<NamedRef>,
}

/// `scope.project`: by `id`, or by `name` within the user's domain (named or not).
#[derive(Deserialize)]
struct ProjectRef {
    id: Option<String>,
    name: Option<String>,
    domain: Option<NamedRef>,
}

#[derive(Deserialize)]
struct TokenQuery {
    nocatalog: Option<String>,
}

/// Issues a token for a user name and password (IAM's password method).
#[utoipa::path(post, path = "/v3/auth/tokens", tag = "iam",
    request_body = Object,
    responses((status = 201, description = "Token in X-Subject-Token", body = Object,
        headers(("X-Subject-Token" = String)))))]
async fn create_token(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
    Json(req): Json<TokenRequest>,
) -> ApiResult<Response> {
    let identity = req.auth.identity;
    let password = match identity.password {
        Some(p) if identity.methods.iter().any(|m| m == "password") => p,
        _ => return Err(ApiError::with(Code::ParamInvalid, "only the password method is served")),
    };
    let user = password.user;
    let domain = user.domain.name.or(user.domain.id).unwrap_or_default();
    let wrong = || ApiError::unauthenticated("The username or password is wrong.");
    let row = tenancy::login(&state.db, &domain, &user.name, &user.password)
        .await
        .map_err(|e| anyhow::anyhow!(e))?
        .ok_or_else(wrong)?;

    let wanted = project_scope(req.auth.scope)?;
    let projects = store::user_projects(&state.db, &row).await?;
    let in_users_domain = |domain: &Option<NamedRef>| match domain {
        None => true,
        Some(d) => {
            d.id.as_ref().is_none_or(|id| *id == row.domain_id)
                && d.name.as_ref().is_none_or(|name| *name == row.domain_name)
        }
    };
    let project = match &wanted {
        ProjectRef { id: Some(id), .. } => projects.iter().find(|p| &p.id == id),
        ProjectRef { name: Some(name), domain, .. } if in_users_domain(domain) => {
            projects.iter().find(|p| &p.name == name)
        }
        _ => None,
    }
    .ok_or_else(|| ApiError::unauthenticated("The user has no access to the requested project."))?;

    let issued = Utc::now();
    let expires =
        issued + Duration::from_std(state.config.token_ttl).unwrap_or(Duration::hours(24));
    let claims = Claims {
        sub: row.id.clone(),
        name: row.name.clone(),
        domain_id: row.domain_id.clone(),
        domain_name: row.domain_name.clone(),
        project_id: project.id.clone(),
        project_name: project.name.clone(),
        admin: row.is_admin,
        actions: row.actions.clone(),
        iat: issued.timestamp(),
        exp: expires.timestamp(),
    };
    let token = state.tokens.issue(&claims);
    let mut body = token_body(&claims, issued.timestamp(), expires.timestamp());
    if query.nocatalog.is_some_and(|v| !v.is_empty()) {
        body["token"].as_object_mut().map(|t| t.remove("catalog"));
    }
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    let header = HeaderValue::from_str(&token).map_err(|e| anyhow::anyhow!(e))?;
    response.headers_mut().insert("x-subject-token", header);
    Ok(response)
}

/// The project a token request is scoped to. Only project-scoped tokens are issued, so a
/// missing scope, a domain scope and a project named by neither `id` nor `name` are refused.
fn project_scope(scope: Option<Scope>) -> ApiResult<ProjectRef> {
    let refuse = |why: &str| {
        ApiError::with(
            Code::ParamInvalid,
            format_args!(
                "{why}: give \"scope\": {{\"project\": {{\"id\": ...}}}} or \
                 {{\"project\": {{\"name\": ...}}}}"
            ),
        )
    };
    let Some(scope) = scope else {
        return Err(refuse("a project scope is required"));
    };
    match scope.project {
        Some(project) if project.id.is_some() || project.name.is_some() => Ok(project),
        Some(_) => Err(refuse("the project scope names no project")),
        None if scope.domain.is_some() => Err(refuse("only project-scoped tokens are issued")),
        None => Err(refuse("a project scope is required")),
    }
}

/// Validates the token in `X-Subject-Token` for a caller holding a valid `X-Auth-Token`.
#[utoipa::path(get, path = "/v3/auth/tokens", tag = "iam",
    responses((status = 200, description = "The token is valid", body = Object)))]
async fn check_token(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let get = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let caller = get("x-auth-token").and_then(|t| state.tokens.check(t));
    if caller.is_none() {
        return Err(ApiError::unauthenticated("decrypt token fail"));
    }
    let subject = get("x-subject-token")
        .and_then(|t| state.tokens.check(t))
        .ok_or_else(|| ApiError::with(Code::RouteNotFound, "the token is not valid"))?;
    Ok(Json(token_body(&subject, subject.iat, subject.exp)))
}

#[derive(Deserialize)]
struct ProjectsQuery {
    name: Option<String>,
}

/// The caller's projects, optionally filtered by name (what SDKs ask to resolve a region).
#[utoipa::path(get, path = "/v3/projects", tag = "iam",
    responses((status = 200, description = "Projects", body = Object)))]
async fn list_projects(
    State(state): State<AppState>,
    Query(query): Query<ProjectsQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let claims = headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| state.tokens.check(t))
        .ok_or_else(|| ApiError::unauthenticated("decrypt token fail"))?;
    let user = store::UserRow {
        id: claims.sub,
        name: claims.name,
        domain_id: claims.domain_id.clone(),
        domain_name: claims.domain_name,
        password_hash: String::new(),
        is_admin: claims.admin,
        actions: claims.actions,
    };
    let projects: Vec<Value> = store::user_projects(&state.db, &user)
        .await?
        .into_iter()
        .filter(|p| query.name.as_ref().is_none_or(|n| &p.name == n))
        .map(|p| json!({"id": p.id, "name": p.name, "domain_id": p.domain_id, "enabled": true}))
        .collect();
    Ok(Json(json!({"projects": projects})))
}

fn token_body(claims: &Claims, iat: i64, exp: i64) -> Value {
    let at = |s: i64| chrono::DateTime::from_timestamp(s, 0).map(timestamp);
    let domain = json!({"id": claims.domain_id, "name": claims.domain_name});
    json!({"token": {
        "expires_at": at(exp),
        "issued_at": at(iat),
        "methods": ["password"],
        "catalog": [],
        "project": {"id": claims.project_id, "name": claims.project_name, "domain": domain},
        "user": {"id": claims.sub, "name": claims.name, "domain": domain,
                 "password_expires_at": null},
        "roles": [{"id": "0", "name": if claims.admin { "te_admin" } else { "readonly" }}],
    }})
}
