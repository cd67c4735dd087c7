//! Flow templates: F6 copies a flow's definition into a template; new flows are made from a
//! template under a new name.

pub mod store;

use chrono::{SecondsFormat, Utc};
use connector_api::Registry;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use self::store::TemplateRow;
use crate::flows::{self, FlowChange, FlowError, Owner};

/// Why a template operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template not found")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Flow(#[from] FlowError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The F6 body (TemplateMessage).
#[derive(Debug, Deserialize)]
pub struct TemplateMessage {
    pub template_name: String,
    pub template_label: String,
    #[serde(default)]
    pub template_description: Option<String>,
}

fn check(field: &str, text: &str) -> Result<String, TemplateError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 255 {
        return Err(TemplateError::Invalid(format!("`{field}` must be 1 to 255 characters")));
    }
    Ok(text.to_owned())
}

/// F6: a template from the flow's latest version; returns the template id.
pub async fn from_flow(
    db: &PgPool,
    project_id: &str,
    flow_id: Uuid,
    message: TemplateMessage,
) -> Result<Uuid, TemplateError> {
    let name = check("template_name", &message.template_name)?;
    let label = check("template_label", &message.template_label)?;
    let flow = crate::store::find_flow(db, project_id, flow_id, false)
        .await?
        .ok_or(FlowError::NotFound)?;
    let mut definition = flow.definition;
    if let Some(meta) = definition.as_object_mut() {
        for owned in ["domain_id", "user_id", "project_id", "webhook"] {
            meta.remove(owned);
        }
    }
    let row = TemplateRow {
        id: Uuid::new_v4(),
        project_id: project_id.to_owned(),
        flow_id: Some(flow_id),
        name,
        label,
        description: message.template_description.unwrap_or_default(),
        definition,
        created_at: Utc::now(),
    };
    store::insert(db, &row).await?;
    Ok(row.id)
}

/// A page of templates (row offset) and the total.
pub async fn list(
    db: &PgPool,
    project_id: &str,
    name: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(i64, Vec<Value>), TemplateError> {
    let (total, rows) = store::list(db, project_id, name, offset, limit).await?;
    Ok((total, rows.iter().map(render).collect()))
}

fn render(row: &TemplateRow) -> Value {
    json!({
        "template_id": row.id,
        "template_name": row.name,
        "template_label": row.label,
        "template_description": row.description,
        "flow_id": row.flow_id,
        "steps": row.definition.get("steps").cloned().unwrap_or_else(|| json!([])),
        "created_time": row.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}

/// A new flow, disabled, from a template, named `name`.
pub async fn instantiate(
    db: &PgPool,
    registry: &Registry,
    owner: &Owner,
    template_id: Uuid,
    name: &str,
) -> Result<FlowChange, TemplateError> {
    let template =
        store::find(db, &owner.project_id, template_id).await?.ok_or(TemplateError::NotFound)?;
    let mut definition = template.definition;
    definition["name"] = Value::String(name.to_owned());
    Ok(flows::create(db, registry, owner, definition).await?)
}
