//! Connections: named credentials a step uses through `authentication.connectionId`.
//!
//! `auth_info` (and `auth_dynamic`) are sealed with the server's encryption key before they
//! are stored; reads show secret values as `****`. [`DbConnections`] opens them again when a
//! step runs, fetching OAuth2 tokens as needed, and keeps the result briefly in memory.

mod oauth;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use connector_api::{Connection, Connector, Invocation};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use uuid::Uuid;
use workbench_secrets::Sealer;

use self::oauth::{ClientCredentials, TokenCache};
use self::store::ConnectionRow;
use crate::executor::ConnectionResolver;

/// What reads show instead of a secret value.
pub const MASK: &str = "****";

/// `auth_info` keys whose values are not secret and are shown as they are.
const PUBLIC_KEYS: [&str; 10] = [
    "username",
    "user",
    "name",
    "in",
    "token_url",
    "client_id",
    "scope",
    "test_url",
    "grant_type",
    "header",
];

/// Why a connection operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("connection not found")]
    NotFound,
    #[error("a connection named `{0}` already exists in this project")]
    DuplicateName(String),
    #[error("the connection is used by enabled flows: {}", .0.join(", "))]
    InUse(Vec<String>),
    #[error("{0}")]
    Invalid(String),
    #[error("a stored secret cannot be opened with the current encryption key")]
    Sealed,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The supported authentication types, by their normalized name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    None,
    Basic,
    ApiKey,
    Bearer,
    OAuth2,
}

impl AuthType {
    /// Accepts the spellings clients use (`API_KEY`, `apikey`, `token`, `oauth2`, ...).
    pub fn parse(text: &str) -> Option<AuthType> {
        let norm = text.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        let parsed = match norm.as_str() {
            "" | "none" | "no_auth" | "noauth" | "anonymous" => AuthType::None,
            "basic" | "basic_auth" => AuthType::Basic,
            "api_key" | "apikey" | "app_key" => AuthType::ApiKey,
            "bearer" | "token" | "bearer_token" => AuthType::Bearer,
            "oauth2" | "oauth" | "oauth2_client_credentials" | "client_credentials" => {
                AuthType::OAuth2
            }
            _ => return None,
        };
        Some(parsed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::None => "none",
            AuthType::Basic => "basic",
            AuthType::ApiKey => "api_key",
            AuthType::Bearer => "bearer",
            AuthType::OAuth2 => "oauth2",
        }
    }

    /// The `auth_info` fields this type needs (any one of each alternative group).
    fn required(self) -> &'static [&'static [&'static str]] {
        match self {
            AuthType::None => &[],
            AuthType::Basic => &[&["username", "user"]],
            AuthType::ApiKey => &[&["api_key", "value", "key"]],
            AuthType::Bearer => &[&["token"]],
            AuthType::OAuth2 => &[&["token_url"], &["client_id"], &["client_secret"]],
        }
    }
}

/// A BaseConnectionInfo / ConnectionInfo body (C1, C2). Unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConnectionInput {
    pub connection_name: Option<String>,
    pub connector_id: Option<String>,
    pub description: Option<String>,
    pub auth_type: Option<String>,
    pub auth_info: Option<Map<String, Value>>,
    pub auth_dynamic: Option<Value>,
    pub auth_config: Option<Value>,
    pub auth_config_id: Option<String>,
    pub auth_prop: Option<Value>,
    pub cdm_params_config: Option<Value>,
    pub host_config: Option<Value>,
}

/// The non-secret objects kept in the `settings` column.
const SETTINGS: [&str; 5] =
    ["auth_config", "auth_config_id", "auth_prop", "cdm_params_config", "host_config"];

/// Who creates a connection.
#[derive(Debug, Clone)]
pub struct Owner {
    pub project_id: String,
    pub domain_id: String,
    pub user_id: String,
}

/// The secret part of a connection, as sealed.
#[derive(Debug, Default, Clone, serde::Serialize, Deserialize)]
struct Secrets {
    auth_info: BTreeMap<String, String>,
    #[serde(default)]
    auth_dynamic: Value,
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_public(key: &str) -> bool {
    PUBLIC_KEYS.contains(&key.to_ascii_lowercase().as_str())
}

/// `value` with every leaf replaced by the mask (objects and arrays keep their shape).
fn mask_all(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), mask_all(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(mask_all).collect()),
        _ => Value::String(MASK.into()),
    }
}

fn masked(secrets: &Secrets) -> Value {
    let info: Map<String, Value> = secrets
        .auth_info
        .iter()
        .map(|(k, v)| {
            let shown = if is_public(k) { v.clone() } else { MASK.to_owned() };
            (k.clone(), Value::String(shown))
        })
        .collect();
    json!({"auth_info": info, "auth_dynamic": mask_all(&secrets.auth_dynamic)})
}

fn seal(sealer: &Sealer, secrets: &Secrets) -> Vec<u8> {
    let plain = serde_json::to_vec(secrets).expect("secrets serialize");
    sealer.seal(&plain)
}

fn open(sealer: &Sealer, sealed: &[u8]) -> Result<Secrets, ConnectionError> {
    let plain = sealer.open(sealed).map_err(|_| ConnectionError::Sealed)?;
    serde_json::from_slice(&plain).map_err(|_| ConnectionError::Sealed)
}

fn check_name(name: &str) -> Result<String, ConnectionError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(ConnectionError::Invalid(
            "`connection_name` must be a string of 1 to 255 characters".into(),
        ));
    }
    Ok(name.to_owned())
}

fn check_auth(auth_type: AuthType, info: &BTreeMap<String, String>) -> Result<(), ConnectionError> {
    for group in auth_type.required() {
        if !group.iter().any(|k| info.get(*k).is_some_and(|v| !v.is_empty())) {
            return Err(ConnectionError::Invalid(format!(
                "auth_type `{}` needs `auth_info.{}`",
                auth_type.as_str(),
                group[0]
            )));
        }
    }
    if auth_type == AuthType::ApiKey {
        if let Some(place) = info.get("in").filter(|p| !matches!(p.as_str(), "header" | "query")) {
            return Err(ConnectionError::Invalid(format!(
                "`auth_info.in` must be `header` or `query`, not `{place}`"
            )));
        }
    }
    Ok(())
}

/// Merges a submitted `auth_info` over the stored one: a masked value keeps the stored value.
fn merge_info(
    submitted: &Map<String, Value>,
    stored: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    submitted
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let text = text_of(v);
            let kept = match (text == MASK, stored.get(k)) {
                (true, Some(old)) => old.clone(),
                _ => text,
            };
            (k.clone(), kept)
        })
        .collect()
}

fn merge_settings(mut settings: Map<String, Value>, input: &ConnectionInput) -> Value {
    let given = [
        ("auth_config", input.auth_config.clone()),
        ("auth_config_id", input.auth_config_id.clone().map(Value::String)),
        ("auth_prop", input.auth_prop.clone()),
        ("cdm_params_config", input.cdm_params_config.clone()),
        ("host_config", input.host_config.clone()),
    ];
    for (key, value) in given {
        if let Some(value) = value {
            settings.insert(key.into(), value);
        }
    }
    Value::Object(settings)
}

fn unique_name(name: &str) -> impl FnOnce(sqlx::Error) -> ConnectionError + '_ {
    move |e| match &e {
        sqlx::Error::Database(d) if d.constraint() == Some("connections_name_key") => {
            ConnectionError::DuplicateName(name.to_owned())
        }
        _ => ConnectionError::Database(e),
    }
}

fn parse_auth_type(text: Option<&str>) -> Result<AuthType, ConnectionError> {
    let text = text.unwrap_or("none");
    AuthType::parse(text).ok_or_else(|| {
        ConnectionError::Invalid(format!(
            "unsupported auth_type `{text}`: use none, basic, api_key, bearer or oauth2"
        ))
    })
}

/// C1: stores a new connection; returns its id.
pub async fn create(
    db: &PgPool,
    sealer: &Sealer,
    owner: &Owner,
    input: ConnectionInput,
) -> Result<Uuid, ConnectionError> {
    let Some(name) = input.connection_name.as_deref() else {
        return Err(ConnectionError::Invalid("`connection_name` is required".into()));
    };
    let name = check_name(name)?;
    let auth_type = parse_auth_type(input.auth_type.as_deref())?;
    let secrets = Secrets {
        auth_info: merge_info(&input.auth_info.clone().unwrap_or_default(), &BTreeMap::new()),
        auth_dynamic: input.auth_dynamic.clone().unwrap_or(Value::Null),
    };
    check_auth(auth_type, &secrets.auth_info)?;
    let now = Utc::now();
    let row = ConnectionRow {
        id: Uuid::new_v4(),
        project_id: owner.project_id.clone(),
        name,
        connector_id: input.connector_id.clone().unwrap_or_default(),
        description: input.description.clone().unwrap_or_default(),
        auth_type: auth_type.as_str().into(),
        auth_sealed: seal(sealer, &secrets),
        auth_masked: masked(&secrets),
        settings: merge_settings(Map::new(), &input),
        domain_id: owner.domain_id.clone(),
        user_id: owner.user_id.clone(),
        created_at: now,
        updated_at: now,
    };
    store::insert(db, &row).await.map_err(unique_name(&row.name))?;
    Ok(row.id)
}

/// C2: changes a connection. Absent fields keep their value, and so does a secret sent back
/// masked (`****`), so a client can send what C5 showed.
pub async fn update(
    db: &PgPool,
    sealer: &Sealer,
    project_id: &str,
    id: Uuid,
    input: ConnectionInput,
) -> Result<(), ConnectionError> {
    let mut tx = db.begin().await?;
    let mut row =
        store::find(&mut *tx, project_id, id, true).await?.ok_or(ConnectionError::NotFound)?;
    if let Some(name) = input.connection_name.as_deref() {
        row.name = check_name(name)?;
    }
    let auth_type = match input.auth_type.as_deref() {
        Some(text) => parse_auth_type(Some(text))?,
        None => parse_auth_type(Some(&row.auth_type))?,
    };
    let mut secrets = open(sealer, &row.auth_sealed)?;
    if let Some(info) = &input.auth_info {
        secrets.auth_info = merge_info(info, &secrets.auth_info);
    }
    if let Some(dynamic) = &input.auth_dynamic {
        if mask_all(dynamic) != *dynamic || dynamic.is_null() {
            secrets.auth_dynamic = dynamic.clone();
        }
    }
    check_auth(auth_type, &secrets.auth_info)?;
    row.auth_type = auth_type.as_str().into();
    row.auth_sealed = seal(sealer, &secrets);
    row.auth_masked = masked(&secrets);
    if let Some(connector) = &input.connector_id {
        row.connector_id = connector.clone();
    }
    if let Some(description) = &input.description {
        row.description = description.clone();
    }
    let settings = match std::mem::take(&mut row.settings) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    row.settings = merge_settings(settings, &input);
    row.updated_at = Utc::now();
    store::update(&mut *tx, &row).await.map_err(unique_name(&row.name))?;
    tx.commit().await?;
    Ok(())
}

/// C3: deletes a connection no enabled flow uses.
pub async fn delete(db: &PgPool, project_id: &str, id: Uuid) -> Result<(), ConnectionError> {
    let mut tx = db.begin().await?;
    store::find(&mut *tx, project_id, id, true).await?.ok_or(ConnectionError::NotFound)?;
    let users = store::enabled_flows_using(&mut *tx, project_id, id).await?;
    if !users.is_empty() {
        return Err(ConnectionError::InUse(users));
    }
    store::delete(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(())
}

/// C5: one connection as ConnectionInfo, secrets masked.
pub async fn get(db: &PgPool, project_id: &str, id: Uuid) -> Result<Value, ConnectionError> {
    let row = store::find(db, project_id, id, false).await?.ok_or(ConnectionError::NotFound)?;
    Ok(render(&row))
}

/// C4: a page of connections (`page` is 1-based) and the total.
pub async fn list(
    db: &PgPool,
    project_id: &str,
    name: Option<&str>,
    page: i64,
    limit: i64,
) -> Result<(i64, Vec<Value>), ConnectionError> {
    let offset = (page.max(1) - 1).saturating_mul(limit);
    let (total, rows) = store::list(db, project_id, name, offset, limit).await?;
    Ok((total, rows.iter().map(render).collect()))
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// ConnectionInfo, with masked secrets.
pub fn render(row: &ConnectionRow) -> Value {
    let setting = |key: &str| row.settings.get(key).cloned().unwrap_or(Value::Null);
    json!({
        "id": row.id,
        "connection_name": row.name,
        "connector_id": row.connector_id,
        "connector_name": row.connector_id,
        "description": row.description,
        "auth_type": row.auth_type,
        "auth_info": row.auth_masked.get("auth_info").cloned().unwrap_or_else(|| json!({})),
        "auth_dynamic": row.auth_masked.get("auth_dynamic").cloned().unwrap_or(Value::Null),
        "auth_config": setting("auth_config"),
        "auth_config_id": setting("auth_config_id"),
        "auth_prop": setting("auth_prop"),
        "cdm_params_config": setting("cdm_params_config"),
        "host_config": setting("host_config"),
        "auth_id": row.id,
        "auth_key": "",
        "auth_name": row.name,
        "create_time": iso(row.created_at),
        "updated_time": iso(row.updated_at),
        "created_by": row.user_id,
        "updated_by": row.user_id,
        "domain_id": row.domain_id,
        "project_id": row.project_id,
        "user_id": row.user_id,
        "is_open": 1,
        "logo": "",
        "status": "normal",
        "type": row.auth_type,
    })
}

/// The connection as a connector receives it; no OAuth2 token yet.
fn plain_connection(row: &ConnectionRow, secrets: Secrets) -> Connection {
    let mut settings = row.settings.clone();
    if let Value::Object(m) = &mut settings {
        m.retain(|k, _| SETTINGS.contains(&k.as_str()));
        m.insert("auth_dynamic".into(), secrets.auth_dynamic);
    }
    Connection {
        id: row.id.to_string(),
        auth_type: row.auth_type.clone(),
        auth_info: secrets.auth_info,
        settings,
    }
}

/// How long a resolved connection is reused before it is read again.
const RESOLVE_TTL: Duration = Duration::from_secs(10);

/// The [`ConnectionResolver`] of a server: connections from the database, opened with the
/// server's key, OAuth2 tokens fetched and cached.
pub struct DbConnections {
    db: PgPool,
    sealer: Arc<Sealer>,
    client: reqwest::Client,
    tokens: TokenCache,
    recent: Mutex<HashMap<(String, String), (Instant, Connection)>>,
}

impl std::fmt::Debug for DbConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbConnections").finish_non_exhaustive()
    }
}

impl DbConnections {
    pub fn new(db: PgPool, sealer: Arc<Sealer>) -> Self {
        DbConnections {
            db,
            sealer,
            client: reqwest::Client::new(),
            tokens: TokenCache::default(),
            recent: Mutex::default(),
        }
    }

    async fn load(&self, project_id: &str, id: &str) -> Result<Connection, String> {
        let key = (project_id.to_owned(), id.to_owned());
        let cached = {
            let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            recent.get(&key).filter(|(at, _)| at.elapsed() < RESOLVE_TTL).map(|(_, c)| c.clone())
        };
        if let Some(connection) = cached {
            return Ok(connection);
        }
        let uuid = Uuid::parse_str(id).map_err(|_| "no such connection".to_string())?;
        let row = store::find(&self.db, project_id, uuid, false)
            .await
            .map_err(|e| format!("loading the connection failed: {e}"))?
            .ok_or_else(|| "no such connection".to_string())?;
        let secrets = open(&self.sealer, &row.auth_sealed).map_err(|e| e.to_string())?;
        let mut connection = plain_connection(&row, secrets);
        // The row's version is part of the token key, so a changed secret fetches anew.
        connection.settings["version"] = json!(row.updated_at.timestamp_micros());
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() > 10_000 {
            recent.clear();
        }
        recent.insert(key, (Instant::now(), connection.clone()));
        Ok(connection)
    }

    /// Adds the access token of an OAuth2 connection.
    async fn authorize(&self, mut connection: Connection) -> Result<Connection, String> {
        if AuthType::parse(&connection.auth_type) != Some(AuthType::OAuth2) {
            return Ok(connection);
        }
        let key = format!("{}@{}", connection.id, connection.settings["version"]);
        let info = &connection.auth_info;
        let field = |k: &str| info.get(k).map(String::as_str).unwrap_or_default();
        let creds = ClientCredentials {
            token_url: field("token_url"),
            client_id: field("client_id"),
            client_secret: field("client_secret"),
            scope: info.get("scope").map(String::as_str).filter(|s| !s.is_empty()),
        };
        let token = self.tokens.token(&self.client, &key, &creds).await?;
        connection.auth_info.insert("token".into(), token);
        Ok(connection)
    }

    /// Checks a connection's credentials (our extension of C*): an OAuth2 connection fetches
    /// a token; a connection with a `test_url` (in `host_config` or `auth_info`) sends a GET
    /// there with its authentication, and any 2xx answer passes.
    pub async fn test(&self, project_id: &str, id: Uuid) -> Result<TestOutcome, ConnectionError> {
        let row =
            store::find(&self.db, project_id, id, false).await?.ok_or(ConnectionError::NotFound)?;
        let secrets = open(&self.sealer, &row.auth_sealed)?;
        let mut connection = plain_connection(&row, secrets);
        let mut checks = Vec::new();
        if AuthType::parse(&row.auth_type) == Some(AuthType::OAuth2) {
            let info = &connection.auth_info;
            let field = |k: &str| info.get(k).map(String::as_str).unwrap_or_default();
            let creds = ClientCredentials {
                token_url: field("token_url"),
                client_id: field("client_id"),
                client_secret: field("client_secret"),
                scope: info.get("scope").map(String::as_str).filter(|s| !s.is_empty()),
            };
            match oauth::fetch(&self.client, &creds).await {
                Ok((token, lifetime)) => {
                    checks.push(format!("token fetched (valid {} s)", lifetime.as_secs()));
                    connection.auth_info.insert("token".into(), token);
                }
                Err(message) => return Ok(TestOutcome { success: false, message }),
            }
        }
        let test_url = row
            .settings
            .pointer("/host_config/test_url")
            .and_then(Value::as_str)
            .or_else(|| connection.auth_info.get("test_url").map(String::as_str))
            .map(str::to_owned);
        if let Some(url) = test_url {
            let call = Invocation {
                operation: "request".into(),
                input: json!({"method": "GET", "url": url}),
                config: Value::Null,
                idempotency_key: format!("connection-test/{id}/{}", Uuid::new_v4()),
                connection: Some(connection),
                timeout: Duration::from_secs(15),
            };
            let http = crate::connectors::HttpConnector::new();
            match http.invoke(call).await {
                Ok(out) => checks.push(format!("GET {url} answered HTTP {}", out["status"])),
                Err(e) => return Ok(TestOutcome { success: false, message: e.to_string() }),
            }
        }
        if checks.is_empty() {
            let message = "nothing to test: set `host_config.test_url` (or use oauth2)".into();
            return Ok(TestOutcome { success: false, message });
        }
        Ok(TestOutcome { success: true, message: checks.join("; ") })
    }
}

/// The result of a connection test.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub success: bool,
    pub message: String,
}

#[async_trait]
impl ConnectionResolver for DbConnections {
    async fn resolve(&self, project_id: &str, connection_id: &str) -> Result<Connection, String> {
        let connection = self.load(project_id, connection_id).await?;
        self.authorize(connection).await
    }
}

/// Re-seals every connection's secrets under `to`, in the caller's transaction.
pub async fn reseal_all(
    tx: &mut sqlx::PgConnection,
    from: &Sealer,
    to: &Sealer,
) -> Result<usize, ConnectionError> {
    let rows = store::all_sealed(&mut *tx).await?;
    for (id, sealed) in &rows {
        let plain = from.open(sealed).map_err(|_| ConnectionError::Sealed)?;
        store::set_sealed(&mut *tx, *id, &to.seal(&plain)).await?;
    }
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_types_accept_common_spellings() {
        assert_eq!(AuthType::parse("API_KEY"), Some(AuthType::ApiKey));
        assert_eq!(AuthType::parse("apikey"), Some(AuthType::ApiKey));
        assert_eq!(AuthType::parse("Token"), Some(AuthType::Bearer));
        assert_eq!(AuthType::parse("oauth2"), Some(AuthType::OAuth2));
        assert_eq!(AuthType::parse("kerberos"), None);
    }

    #[test]
    fn secrets_are_masked_and_public_fields_shown() {
        let secrets = Secrets {
            auth_info: [("username", "bob"), ("password", "hunter2")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            auth_dynamic: json!({"extra": "x"}),
        };
        let shown = masked(&secrets);
        assert_eq!(shown["auth_info"]["username"], "bob");
        assert_eq!(shown["auth_info"]["password"], MASK);
        assert_eq!(shown["auth_dynamic"]["extra"], MASK);
    }

    #[test]
    fn a_masked_value_keeps_the_stored_one() {
        let stored: BTreeMap<_, _> = [("api_key".to_string(), "k1".to_string())].into();
        let sent = json!({"api_key": MASK, "name": "X-Key"});
        let merged = merge_info(sent.as_object().unwrap(), &stored);
        assert_eq!(merged["api_key"], "k1");
        assert_eq!(merged["name"], "X-Key");
    }
}
