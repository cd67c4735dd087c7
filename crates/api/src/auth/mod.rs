//! Authentication (AK/SK signatures and tokens), project isolation and IAM actions.
//!
//! [`authenticate`] runs before every MSSI route: it establishes who calls, checks that the
//! `{project_id}` of the path is the caller's project, and stores the [`Caller`] in the request
//! extensions, where handlers take it with the `Caller` extractor and check their action.

pub mod signature;
pub mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDateTime, Utc};

use crate::error::{ApiError, ApiResult, Code};
use crate::{store, AppState};

/// Every IAM action an endpoint checks (contract §4.8). A grant is one of these names or a
/// prefix pattern ending in `*` that matches at least one of them.
pub const ACTIONS: &[&str] = &[
    "mssi:abm:admin",
    "mssi:abm:create",
    "mssi:abm:delete",
    "mssi:abm:get",
    "mssi:abm:list",
    "mssi:abm:update",
    "mssi:connection:create",
    "mssi:connection:delete",
    "mssi:connection:get",
    "mssi:connection:list",
    "mssi:connection:test",
    "mssi:connection:update",
    "mssi:connector:create",
    "mssi:connector:delete",
    "mssi:connector:list",
    "mssi:connector:release",
    "mssi:flow:create",
    "mssi:flow:delete",
    "mssi:flow:disable",
    "mssi:flow:enable",
    "mssi:flow:get",
    "mssi:flow:getRunHistory",
    "mssi:flow:list",
    "mssi:flow:listFlowRunHistory",
    "mssi:flow:listRunHistory",
    "mssi:flow:start",
    "mssi:flow:update",
    "mssi:template:create",
    "mssi:template:list",
];

/// Whether `grant` names a known action, or is a `*` pattern that matches at least one.
pub fn is_known_grant(grant: &str) -> bool {
    match grant.strip_suffix('*') {
        Some(prefix) => ACTIONS.iter().any(|action| action.starts_with(prefix)),
        None => ACTIONS.contains(&grant),
    }
}

/// Who is calling, established once per request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub domain_id: String,
    pub project_id: String,
    pub is_admin: bool,
    pub actions: Arc<[String]>,
}

impl Caller {
    /// Whether the caller holds `action` (`mssi:flow:start`). Grants may end in `*`.
    pub fn may(&self, action: &str) -> bool {
        self.is_admin
            || self.actions.iter().any(|grant| match grant.strip_suffix('*') {
                Some(prefix) => action.starts_with(prefix),
                None => grant == action,
            })
    }

    /// Fails with `denied` (the permission code of the endpoint's domain) unless allowed.
    pub fn require(&self, action: &str, denied: Code) -> ApiResult<()> {
        if self.may(action) {
            return Ok(());
        }
        Err(ApiError::with(denied, format_args!("action {action} is not granted")))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthenticated("no authentication information"))
    }
}

/// Secret keys recently read from the database, so that a busy client does not cost a query
/// and a decryption per request. Entries live for a minute, which bounds how long a deleted
/// key keeps working.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (Instant, Arc<KnownKey>)>>,
}

#[derive(Debug)]
pub struct KnownKey {
    secret: String,
    caller: Caller,
}

const KEY_TTL: Duration = Duration::from_secs(60);

impl KeyCache {
    fn get(&self, ak: &str) -> Option<Arc<KnownKey>> {
        let entries = self.entries.lock().expect("key cache lock");
        entries.get(ak).filter(|(at, _)| at.elapsed() < KEY_TTL).map(|(_, k)| k.clone())
    }

    fn put(&self, ak: &str, key: Arc<KnownKey>) {
        let mut entries = self.entries.lock().expect("key cache lock");
        if entries.len() > 10_000 {
            entries.clear();
        }
        entries.insert(ak.to_owned(), (Instant::now(), key));
    }
}

/// The middleware in front of every MSSI route.
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match authenticate_inner(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(err) => {
            tracing::debug!(error = %err, "request refused");
            err.into_response()
        }
    }
}

async fn authenticate_inner(state: &AppState, req: Request) -> ApiResult<Request> {
    let project = path_project(req.uri().path())?;
    let (mut parts, body) = req.into_parts();

    let (caller, body) = if let Some(token) = header(&parts.headers, "x-auth-token") {
        (token_caller(state, token)?, body)
    } else if let Some(auth) = header(&parts.headers, "authorization") {
        let auth = auth.to_owned();
        let bytes =
            crate::extract::read_body(body, &parts.headers, state.config.body_limit).await?;
        let caller = verify_signature(state, &parts, &auth, &bytes).await?;
        (caller, Body::from(bytes))
    } else {
        return Err(ApiError::unauthenticated("no authentication information"));
    };

    let header_project = header(&parts.headers, "x-project-id");
    if caller.project_id != project || header_project.is_some_and(|p| p != project) {
        return Err(ApiError::code(Code::Forbidden));
    }
    parts.extensions.insert(caller);
    Ok(Request::from_parts(parts, body))
}

/// The caller an `X-Auth-Token` names.
pub(crate) fn token_caller(state: &AppState, token: &str) -> ApiResult<Caller> {
    let claims =
        state.tokens.check(token).ok_or_else(|| ApiError::unauthenticated("decrypt token fail"))?;
    Ok(Caller {
        user_id: claims.sub,
        domain_id: claims.domain_id,
        project_id: claims.project_id,
        is_admin: claims.admin,
        actions: claims.actions.into(),
    })
}

/// The caller whose AK/SK signature (`Authorization: SDK-HMAC-SHA256 ...`) covers this
/// request and `body`.
pub(crate) async fn signed_caller(
    state: &AppState,
    parts: &Parts,
    body: &[u8],
) -> ApiResult<Caller> {
    let Some(auth) = header(&parts.headers, "authorization") else {
        return Err(ApiError::unauthenticated("no authentication information"));
    };
    verify_signature(state, parts, auth, body).await
}

async fn verify_signature(
    state: &AppState,
    parts: &Parts,
    authorization: &str,
    body: &[u8],
) -> ApiResult<Caller> {
    let fail = || ApiError::unauthenticated("verify aksk signature fail");
    let auth = signature::parse_authorization(authorization).map_err(|_| fail())?;
    if parts.headers.contains_key("x-security-token") {
        // Temporary credentials are not issued by this server, so none can be valid.
        return Err(ApiError::unauthenticated("verify security token fail"));
    }
    let date = header(&parts.headers, "x-sdk-date").ok_or_else(fail)?;
    let signed_at = NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ").map_err(|_| fail())?;
    let skew = (Utc::now().naive_utc() - signed_at).abs();
    if skew.to_std().map_or(true, |s| s > state.config.clock_skew) {
        return Err(ApiError::unauthenticated("verify aksk signature fail, sdk date expired"));
    }

    let key = match state.keys.get(&auth.access_key) {
        Some(key) => key,
        None => {
            let row =
                store::find_access_key(&state.db, &auth.access_key).await?.ok_or_else(|| {
                    ApiError::unauthenticated("Get secretKey failed,ak:***,err:ak not exist")
                })?;
            let secret = state.sealer.open(&row.secret_sealed).map_err(|e| anyhow::anyhow!(e))?;
            let key = Arc::new(KnownKey {
                secret: String::from_utf8(secret).map_err(|e| anyhow::anyhow!(e))?,
                caller: Caller {
                    user_id: row.user_id,
                    domain_id: row.domain_id,
                    project_id: row.project_id,
                    is_admin: row.is_admin,
                    actions: row.actions.into(),
                },
            });
            state.keys.put(&auth.access_key, key.clone());
            key
        }
    };

    let received = signature::Received {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body,
    };
    match signature::verify(&received, &auth, date, &key.secret) {
        Ok(true) => Ok(key.caller.clone()),
        Ok(false) | Err(_) => Err(fail()),
    }
}

/// The decoded `{project_id}` segment of `/{version}/{project_id}/...`.
fn path_project(path: &str) -> ApiResult<String> {
    let segment = path.split('/').nth(2).unwrap_or("");
    let project = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
    // An SDK client without a project id sends its path template unfilled.
    if project.is_empty() || project.len() > 64 || project.contains(['{', '}']) {
        return Err(ApiError::with(Code::ParamInvalid, "project_id is missing or malformed"));
    }
    Ok(project.into_owned())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(actions: &[&str]) -> Caller {
        Caller {
            user_id: "u".into(),
            domain_id: "d".into(),
            project_id: "p".into(),
            is_admin: false,
            actions: actions.iter().map(|a| a.to_string()).collect::<Vec<_>>().into(),
        }
    }

    #[test]
    fn actions_match_exactly_or_by_prefix() {
        let c = caller(&["mssi:flow:start", "mssi:abm:*"]);
        assert!(c.may("mssi:flow:start"));
        assert!(!c.may("mssi:flow:enable"));
        assert!(c.may("mssi:abm:create"));
        assert!(c.require("mssi:flow:list", Code::NoPermission).is_err());
        assert!(Caller { is_admin: true, ..caller(&[]) }.may("anything"));
    }

    #[test]
    fn grants_must_name_a_known_action_or_prefix() {
        for grant in ["mssi:flow:start", "mssi:flow:*", "mssi:*", "*", "mssi:abm:admin"] {
            assert!(is_known_grant(grant), "{grant}");
        }
        for grant in ["", "bogus action!!", "mssi:flow:fly", "mssi:nothing:*", "mssi:flow:start*x"]
        {
            assert!(!is_known_grant(grant), "{grant}");
        }
    }

    /// Every action a route checks is in [`ACTIONS`], so a user can be granted it.
    #[test]
    fn every_checked_action_is_listed() {
        let routes = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
        for entry in std::fs::read_dir(routes).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for literal in text.split('"').skip(1).step_by(2) {
                let is_action = literal.starts_with("mssi:") && !literal.ends_with('*');
                if is_action && !literal.contains(' ') {
                    assert!(ACTIONS.contains(&literal), "{literal} is missing from ACTIONS");
                }
            }
        }
    }

    #[test]
    fn project_comes_from_the_second_segment() {
        assert_eq!(path_project("/v1/abc/flows").unwrap(), "abc");
        assert!(path_project("/v1/%7Bproject_id%7D/flows").is_err());
        assert!(path_project("/v1//flows").is_err());
    }
}
