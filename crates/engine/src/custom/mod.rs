//! The connector catalog (K1) and custom connectors made from OpenAPI documents (K2–K5).
//!
//! A custom connector belongs to one project. Flows of that project see it beside the
//! built-ins: [`registry_for`] gives the registry a project's flows are validated and run
//! against, the built-in registry plus an [`OpenApiConnector`] per stored document (parsed
//! documents are kept in memory by connector version).

pub mod openapi;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, SecondsFormat, Utc};
use connector_api::{Descriptor, Operation, Registry};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

pub use self::openapi::{DocumentError, OpenApiConnector};
use self::store::CustomRow;

/// Why a connector operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CustomError {
    #[error("connector not found")]
    NotFound,
    #[error("`{0}` is a built-in connector")]
    BuiltIn(String),
    #[error("the connector is used by {}", .0.join(", "))]
    InUse(Vec<String>),
    #[error("the connector has no name: set `api_config.name` or the document's `info.title`")]
    NoName,
    #[error("{0}")]
    Document(#[from] DocumentError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The K3 body (CustomConnectorInfoV2). Unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CustomInput {
    pub api_config: Option<Value>,
    pub auth_content: Option<Value>,
    pub connector_created_type: Option<String>,
    pub connector_type: Option<String>,
    pub icon: Option<String>,
    pub swagger: Value,
}

/// What K3 answers.
#[derive(Debug, Clone)]
pub struct Created {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub version: String,
    pub version_id: Uuid,
    pub at: DateTime<Utc>,
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// K3: checks the document and stores the connector in status `dev`.
pub async fn create(
    db: &PgPool,
    project_id: &str,
    input: CustomInput,
) -> Result<Created, CustomError> {
    let document = openapi::normalize(&input.swagger)?;
    let api = openapi::parse(&document)?;
    let given = input.api_config.as_ref().and_then(|c| c.get("name")).and_then(Value::as_str);
    let name = given.map(str::trim).filter(|n| !n.is_empty()).unwrap_or(api.title.trim());
    if name.is_empty() {
        return Err(CustomError::NoName);
    }
    let now = Utc::now();
    let row = CustomRow {
        id: Uuid::new_v4(),
        project_id: project_id.to_owned(),
        name: name.chars().take(255).collect(),
        description: api.description.clone(),
        version: 1,
        version_id: Uuid::new_v4(),
        status: "dev".into(),
        release_version: None,
        icon: input.icon.unwrap_or_default(),
        auth_content: input.auth_content.unwrap_or_else(|| json!({})),
        document,
        created_at: now,
        updated_at: now,
    };
    store::insert(db, &row).await?;
    Ok(Created {
        id: row.id,
        name: row.name,
        description: row.description,
        version: row.version.to_string(),
        version_id: row.version_id,
        at: now,
    })
}

fn custom_id(registry: &Registry, id: &str) -> Result<Uuid, CustomError> {
    if registry.get(id).is_some() {
        return Err(CustomError::BuiltIn(id.to_owned()));
    }
    Uuid::parse_str(id).map_err(|_| CustomError::NotFound)
}

/// K5: publishes the connector (`released`, `release_version` = its version).
pub async fn release(
    db: &PgPool,
    builtins: &Registry,
    project_id: &str,
    id: &str,
) -> Result<(), CustomError> {
    let id = custom_id(builtins, id)?;
    let row = store::find(db, project_id, id, false).await?.ok_or(CustomError::NotFound)?;
    store::release(db, row.id, &row.version.to_string()).await?;
    Ok(())
}

/// K4: deletes a connector no flow or template uses.
pub async fn delete(
    db: &PgPool,
    builtins: &Registry,
    project_id: &str,
    id: &str,
) -> Result<(), CustomError> {
    let id = custom_id(builtins, id)?;
    let mut tx = db.begin().await?;
    store::find(&mut *tx, project_id, id, true).await?.ok_or(CustomError::NotFound)?;
    let users = store::users(&mut *tx, project_id, &id.to_string()).await?;
    if !users.is_empty() {
        return Err(CustomError::InUse(users));
    }
    store::delete(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(())
}

/// Parsed connectors by id and version, shared by every project of the process.
type Parsed = Mutex<HashMap<(Uuid, Uuid), Arc<OpenApiConnector>>>;

fn parsed() -> &'static Parsed {
    static PARSED: OnceLock<Parsed> = OnceLock::new();
    PARSED.get_or_init(Mutex::default)
}

fn connector(row: &CustomRow) -> Result<Arc<OpenApiConnector>, DocumentError> {
    let key = (row.id, row.version_id);
    if let Some(hit) = parsed().lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(hit.clone());
    }
    let api = openapi::parse(&row.document)?;
    let built = Arc::new(OpenApiConnector::new(
        row.id.to_string(),
        row.version.to_string(),
        row.name.clone(),
        api,
    ));
    let mut cache = parsed().lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() > 4096 {
        cache.clear();
    }
    cache.insert(key, built.clone());
    Ok(built)
}

/// The connectors a project's flows may use: `builtins` plus the project's custom connectors.
pub async fn registry_for(
    db: &PgPool,
    builtins: &Registry,
    project_id: &str,
) -> sqlx::Result<Registry> {
    let rows = store::all(db, project_id).await?;
    let mut registry = builtins.clone();
    for row in &rows {
        match connector(row) {
            Ok(c) => registry.register(c),
            Err(e) => tracing::warn!(connector = %row.id, error = %e, "stored document unusable"),
        }
    }
    Ok(registry)
}

/// Filters of the catalog (K1).
#[derive(Debug, Default, Clone)]
pub struct CatalogFilter {
    /// `onboard` (built-ins), `custom` (the project's own), or both when absent.
    pub scope: Option<String>,
    pub category: Option<String>,
    pub name: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

/// K1: the catalog page and the total.
pub async fn catalog(
    db: &PgPool,
    builtins: &Registry,
    project_id: &str,
    filter: &CatalogFilter,
) -> Result<(i64, Vec<Value>), CustomError> {
    let scope = filter.scope.as_deref().map(str::to_ascii_lowercase);
    let mut all = Vec::new();
    if scope.as_deref() != Some("custom") {
        all.extend(builtins.descriptors().into_iter().map(|d| connector_info(d, None)));
    }
    if scope.as_deref() != Some("onboard") {
        for row in store::all(db, project_id).await? {
            if let Ok(c) = connector(&row) {
                all.push(connector_info(connector_api::Connector::descriptor(&*c), Some(&row)));
            }
        }
    }
    let wanted = |info: &Value, key: &str, needle: &Option<String>| match needle {
        None => true,
        Some(n) => {
            info[key].as_str().unwrap_or_default().to_lowercase().contains(&n.to_lowercase())
        }
    };
    all.retain(|i| wanted(i, "name", &filter.name) && wanted(i, "category", &filter.category));
    let total = all.len() as i64;
    let page = all
        .into_iter()
        .skip(usize::try_from(filter.offset).unwrap_or(0))
        .take(usize::try_from(filter.limit).unwrap_or(0))
        .collect();
    Ok((total, page))
}

/// K2: a page of the project's custom connectors as ConnectorInfo0, and the total.
pub async fn list(
    db: &PgPool,
    project_id: &str,
    name: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(i64, Vec<Value>), CustomError> {
    let (total, rows) = store::list(db, project_id, name, offset, limit).await?;
    let infos = rows
        .iter()
        .filter_map(|row| {
            let c = connector(row).ok()?;
            Some(connector_info0(connector_api::Connector::descriptor(&*c), row))
        })
        .collect();
    Ok((total, infos))
}

fn action_info(op: &Operation, d: &Descriptor, times: &Value, trigger: bool) -> Value {
    let mut info = json!({
        "id": op.id,
        "name": op.name,
        "operation_id": op.id,
        "category": d.category,
        "connector_action_html": "",
        "connector_created_type": if d.category == "custom" { "openapi" } else { "builtin" },
        "connector_id": d.id,
        "connector_version": d.version,
        "definition": {"input_schema": op.input_schema, "output_schema": op.output_schema,
                       "external": op.external},
        "description": op.description,
        "swagger": null,
        "test_result": "",
        "created_time": times["created"],
        "updated_time": times["updated"],
    });
    if trigger {
        info["trigger_type"] = json!({"type": "trigger"});
        info["type"] = json!("trigger");
    } else {
        info["action_type"] = json!({"external": op.external});
        info["visibility"] = json!("visible");
    }
    info
}

/// ConnectorInfo (K1) of a descriptor; `row` is set for custom connectors.
pub fn connector_info(d: &Descriptor, row: Option<&CustomRow>) -> Value {
    let times = match row {
        Some(r) => json!({"created": iso(r.created_at), "updated": iso(r.updated_at)}),
        None => json!({"created": null, "updated": null}),
    };
    let actions: Vec<Value> = d.actions.iter().map(|o| action_info(o, d, &times, false)).collect();
    let triggers: Vec<Value> = d.triggers.iter().map(|o| action_info(o, d, &times, true)).collect();
    let (status, release_version, kind) = match row {
        Some(r) => (r.status.clone(), r.release_version.clone(), "custom"),
        None => ("onboard".to_owned(), Some(d.version.clone()), "builtin"),
    };
    json!({
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "icon": row.map(|r| r.icon.as_str()).unwrap_or_default(),
        "category": d.category,
        "type": kind,
        "status": status,
        "provider_name": if row.is_some() { "custom" } else { "Workbench" },
        "release_version": release_version,
        "version": {"version": d.version},
        "swagger_version_id": row.map(|r| r.version_id.to_string()).unwrap_or_default(),
        "swagger": row.map(|r| r.document.clone()),
        "auth_id": "",
        "auth_content": row.map_or_else(|| json!({}), |r| r.auth_content.clone()),
        "need_auth": row.is_some(),
        "favorite": false,
        "action_count": actions.len(),
        "trigger_count": triggers.len(),
        "actions": actions,
        "triggers": triggers,
        "runtime_permissions": [],
        "created_time": times["created"],
        "updated_time": times["updated"],
    })
}

/// ConnectorInfo0 (K2): mixed naming, and `swagger` as text.
fn connector_info0(d: &Descriptor, row: &CustomRow) -> Value {
    let times = json!({"created": iso(row.created_at), "updated": iso(row.updated_at)});
    let operations: Vec<Value> =
        d.actions.iter().map(|o| action_info(o, d, &times, false)).collect();
    let auth_type = row.auth_content.get("auth_type").cloned().unwrap_or(Value::Null);
    json!({
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "icon": row.icon,
        "category": d.category,
        "type": "custom",
        "provider": "custom",
        "authContent": row.auth_content,
        "authId": "",
        "auth_type": auth_type,
        "needAuth": true,
        "definitionRef": row.version_id,
        "operations": operations,
        "triggers": [],
        "swagger": row.document.to_string(),
        "status": row.status,
        "release_version": row.release_version,
        "version": row.version.to_string(),
        "created_time": times["created"],
        "updated_time": times["updated"],
    })
}
