//! Saving, reading, enabling and deleting flow definitions (FlowMeta).
//!
//! A saved FlowMeta is kept whole, so keys the server does not model round-trip. Fields the
//! server owns (`id`, `status`, `version`, `type`, times, owner) are kept in columns and written
//! over the stored JSON when a flow is rendered. Every save validates the step graph and makes
//! a new version; old versions stay readable and runnable. Enabling, updating, disabling and
//! deleting keep the flow's schedule armed or disarmed in the same transaction
//! ([`crate::schedules`]).

use chrono::{DateTime, SecondsFormat, Utc};
use connector_api::Registry;
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::connectors::{HookSettings, HTTP_TRIGGER_CONNECTOR};
use crate::model::FlowGraph;
use crate::schedules;
use crate::store::{self, FlowFilter, FlowRow};
use crate::validate::{ValidationError, ValidationKind};

/// Why a flow operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("flow not found")]
    NotFound,
    #[error("flow version {0} does not exist")]
    VersionNotFound(i32),
    #[error("a flow named `{0}` already exists in this project")]
    DuplicateName(String),
    #[error("the flow is enabled: disable it first")]
    Enabled,
    #[error("{0}")]
    Invalid(String),
    /// A documented FlowMeta field holds the wrong JSON type.
    #[error("{0}")]
    WrongType(String),
    /// The step graph breaks rules; every broken rule is listed.
    #[error("{}", join(.0))]
    Graph(Vec<ValidationError>),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn join(errors: &[ValidationError]) -> String {
    errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; ")
}

impl FlowError {
    /// The kind of the first graph rule broken, to pick an error code.
    pub fn graph_kind(&self) -> Option<ValidationKind> {
        match self {
            FlowError::Graph(errors) => errors.first().map(|e| e.kind),
            _ => None,
        }
    }
}

/// Who saves a flow.
#[derive(Debug, Clone)]
pub struct Owner {
    pub project_id: String,
    pub domain_id: String,
    pub user_id: String,
}

/// What F1 and F2 answer.
#[derive(Debug, Clone)]
pub struct FlowChange {
    pub flow_id: Uuid,
    pub webhook: String,
    /// The hook URL of a flow with an HTTP trigger.
    pub apig_url: Option<String>,
}

/// The path at which a flow with an HTTP trigger is served, relative to the server's base URL.
///
/// FIXME: MSSI returns an absolute URL; this needs a configured public base URL (the server
/// cannot know the address clients reach it by behind a proxy).
pub fn hook_path(webhook: &str) -> String {
    format!("/hooks/{webhook}")
}

/// The `type` of a flow, derived from its trigger.
fn flow_type(graph: &FlowGraph) -> &'static str {
    match (graph.trigger_connector(), graph.trigger_type()) {
        ("ManualTrigger", _) | (_, Some("instant")) => "instant",
        (HTTP_TRIGGER_CONNECTOR, _) => "api",
        (_, Some("schedule")) => "scheduled",
        (_, Some("http")) => "api",
        _ => "automated",
    }
}

/// Whether a stored FlowMeta is served by the HTTP trigger.
fn is_hook(definition: &Value) -> bool {
    let steps = definition.get("steps").and_then(Value::as_array).map(Vec::as_slice);
    steps.unwrap_or_default().iter().any(|step| {
        let call = &step["call"];
        call["triggerRef"].is_object() && call["connectorRef"] == HTTP_TRIGGER_CONNECTOR
    })
}

/// Checks a FlowMeta body against the project's connectors (built-in and custom) and prepares
/// what is stored: the body with its derived `type`.
fn prepare(body: Value, registry: &Registry) -> Result<(String, Value), FlowError> {
    let Value::Object(mut meta) = body else {
        return Err(FlowError::Invalid("the flow must be a JSON object".into()));
    };
    let name = match meta.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= 255 => n.clone(),
        _ => {
            return Err(FlowError::Invalid("`name` must be a string of 1 to 255 characters".into()))
        }
    };
    if let Some(message) = crate::flow_meta::wrong_type(&meta) {
        return Err(FlowError::WrongType(message));
    }
    let steps = meta.get("steps").cloned().unwrap_or_else(|| json!([]));
    let graph = FlowGraph::parse(&steps, registry).map_err(FlowError::Graph)?;
    if graph.trigger_connector() == HTTP_TRIGGER_CONNECTOR {
        HookSettings::from_config(graph.trigger_config()).map_err(|e| {
            FlowError::Invalid(format!("trigger step `{}`: {e}", graph.trigger_id()))
        })?;
    }
    meta.insert("type".into(), Value::String(flow_type(&graph).into()));
    for owned in ["id", "status", "version", "creatd_time", "created_time", "updated_time"] {
        meta.remove(owned);
    }
    Ok((name, Value::Object(meta)))
}

fn unique_name(name: &str) -> impl FnOnce(sqlx::Error) -> FlowError + '_ {
    move |e| match &e {
        sqlx::Error::Database(d) if d.constraint() == Some("flows_name_key") => {
            FlowError::DuplicateName(name.to_owned())
        }
        _ => FlowError::Database(e),
    }
}

pub async fn create(
    db: &PgPool,
    registry: &Registry,
    owner: &Owner,
    body: Value,
) -> Result<FlowChange, FlowError> {
    let registry = crate::custom::registry_for(db, registry, &owner.project_id).await?;
    let (name, mut definition) = prepare(body, &registry)?;
    if let Some(meta) = definition.as_object_mut() {
        meta.insert("domain_id".into(), json!(owner.domain_id));
        meta.insert("user_id".into(), json!(owner.user_id));
    }
    let now = Utc::now();
    let row = FlowRow {
        id: Uuid::new_v4(),
        project_id: owner.project_id.clone(),
        name,
        status: "disable".into(),
        version: 1,
        webhook: Uuid::new_v4().simple().to_string(),
        definition,
        created_at: now,
        updated_at: now,
    };
    let mut tx = db.begin().await?;
    store::insert_flow(&mut tx, &row).await.map_err(unique_name(&row.name))?;
    tx.commit().await?;
    Ok(change(row))
}

pub async fn update(
    db: &PgPool,
    registry: &Registry,
    project_id: &str,
    flow_id: Uuid,
    body: Value,
) -> Result<FlowChange, FlowError> {
    let registry = crate::custom::registry_for(db, registry, project_id).await?;
    let (name, mut definition) = prepare(body, &registry)?;
    let mut tx = db.begin().await?;
    let mut row =
        store::find_flow(&mut *tx, project_id, flow_id, true).await?.ok_or(FlowError::NotFound)?;
    if let (Some(new), Some(old)) = (definition.as_object_mut(), row.definition.as_object()) {
        for kept in ["domain_id", "user_id"] {
            if let Some(v) = old.get(kept) {
                new.insert(kept.into(), v.clone());
            }
        }
    }
    row.name = name;
    row.version += 1;
    row.definition = definition;
    row.updated_at = Utc::now();
    store::update_flow(&mut tx, &row).await.map_err(unique_name(&row.name))?;
    // An enabled flow's schedule moves to the new version with the definition.
    schedules::sync(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(change(row))
}

fn change(row: FlowRow) -> FlowChange {
    let apig_url = is_hook(&row.definition).then(|| hook_path(&row.webhook));
    FlowChange { flow_id: row.id, webhook: row.webhook, apig_url }
}

pub async fn delete(db: &PgPool, project_id: &str, flow_id: Uuid) -> Result<(), FlowError> {
    let mut tx = db.begin().await?;
    let row =
        store::find_flow(&mut *tx, project_id, flow_id, true).await?.ok_or(FlowError::NotFound)?;
    if row.status == "enable" {
        return Err(FlowError::Enabled);
    }
    // A disabled flow has no armed schedule; this also clears one left by an older server.
    schedules::sync(&mut tx, &FlowRow { status: "disable".into(), ..row }).await?;
    store::delete_flow(&mut *tx, flow_id).await?;
    tx.commit().await?;
    Ok(())
}

/// Enables or disables a flow; both are idempotent.
pub async fn set_enabled(
    db: &PgPool,
    project_id: &str,
    flow_id: Uuid,
    enabled: bool,
) -> Result<(), FlowError> {
    let status = if enabled { "enable" } else { "disable" };
    let mut tx = db.begin().await?;
    let mut row =
        store::find_flow(&mut *tx, project_id, flow_id, true).await?.ok_or(FlowError::NotFound)?;
    if enabled {
        // Refused here rather than at save time, so a flow can be saved before its connection
        // exists; an enabled flow's connections cannot be deleted, so the check holds.
        let missing = store::missing_connections(&mut *tx, project_id, &row.definition).await?;
        if let Some(id) = missing.first() {
            let msg =
                format!("a step uses connection `{id}`, which does not exist in this project");
            return Err(FlowError::Invalid(msg));
        }
    }
    store::set_flow_status(&mut *tx, project_id, flow_id, status).await?;
    row.status = status.to_owned();
    // Arms or disarms the schedule in the same commit, so nothing fires after a disable.
    schedules::sync(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(())
}

/// A flow rendered as FlowMeta, at its latest version or at `version`.
pub async fn get(
    db: &PgPool,
    project_id: &str,
    flow_id: Uuid,
    version: Option<i32>,
) -> Result<Value, FlowError> {
    let mut row =
        store::find_flow(db, project_id, flow_id, false).await?.ok_or(FlowError::NotFound)?;
    if let Some(v) = version.filter(|v| *v != row.version) {
        let (definition, saved_at) =
            store::find_version(db, flow_id, v).await?.ok_or(FlowError::VersionNotFound(v))?;
        // The name is part of what a version saved.
        if let Some(name) = definition.get("name").and_then(Value::as_str) {
            row.name = name.to_owned();
        }
        row.definition = definition;
        row.version = v;
        row.updated_at = saved_at;
    }
    Ok(render(row))
}

/// A page of flows rendered as FlowMeta, with the total count.
pub async fn list(
    db: &PgPool,
    project_id: &str,
    filter: &FlowFilter,
) -> Result<(i64, Vec<Value>), FlowError> {
    let (total, rows) = store::list_flows(db, project_id, filter).await?;
    Ok((total, rows.into_iter().map(render).collect()))
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The stored FlowMeta with the server-owned fields written over it.
pub fn render(row: FlowRow) -> Value {
    let hook = is_hook(&row.definition);
    let mut meta = match row.definition {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if hook {
        meta.insert("apig_url".into(), json!(hook_path(&row.webhook)));
    }
    let owned = [
        ("id", json!(row.id)),
        ("name", json!(row.name)),
        ("status", json!(row.status)),
        ("version", json!(row.version.to_string())),
        ("webhook", json!(row.webhook)),
        ("project_id", json!(row.project_id)),
        ("creatd_time", json!(iso(row.created_at))),
        ("created_time", json!(iso(row.created_at))),
        ("updated_time", json!(iso(row.updated_at))),
        ("is_valid", json!(true)),
    ];
    for (key, value) in owned {
        meta.insert(key.into(), value);
    }
    meta.entry("steps").or_insert_with(|| json!([]));
    meta.entry("dev_status").or_insert_with(|| json!("draft"));
    Value::Object(meta)
}
