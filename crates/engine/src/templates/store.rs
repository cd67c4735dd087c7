//! SQL for flow templates.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TemplateRow {
    pub id: Uuid,
    pub project_id: String,
    pub flow_id: Option<Uuid>,
    pub name: String,
    pub label: String,
    pub description: String,
    pub definition: Value,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, project_id, flow_id, name, label, description, definition, created_at";

pub async fn insert(db: impl PgExecutor<'_>, row: &TemplateRow) -> sqlx::Result<()> {
    sqlx::query(
        r#"
        INSERT INTO templates (id, project_id, flow_id, name, label, description, definition,
                               created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        "#,
    )
    .bind(row.id)
    .bind(&row.project_id)
    .bind(row.flow_id)
    .bind(&row.name)
    .bind(&row.label)
    .bind(&row.description)
    .bind(&row.definition)
    .bind(row.created_at)
    .execute(db)
    .await
    .map(drop)
}

pub async fn find(
    db: impl PgExecutor<'_>,
    project_id: &str,
    id: Uuid,
) -> sqlx::Result<Option<TemplateRow>> {
    let sql = format!("SELECT {COLUMNS} FROM templates WHERE id = $1 AND project_id = $2");
    sqlx::query_as(&sql).bind(id).bind(project_id).fetch_optional(db).await
}

pub async fn list(
    db: impl PgExecutor<'_> + Copy,
    project_id: &str,
    name: Option<&str>,
    offset: i64,
    limit: i64,
) -> sqlx::Result<(i64, Vec<TemplateRow>)> {
    let name = name.map(crate::store::like_pattern);
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM templates \
         WHERE project_id = $1 AND ($2::text IS NULL OR name ILIKE $2)",
    )
    .bind(project_id)
    .bind(&name)
    .fetch_one(db)
    .await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM templates \
         WHERE project_id = $1 AND ($2::text IS NULL OR name ILIKE $2) \
         ORDER BY created_at DESC, id OFFSET $3 LIMIT $4"
    );
    let rows = sqlx::query_as(&sql)
        .bind(project_id)
        .bind(&name)
        .bind(offset)
        .bind(limit)
        .fetch_all(db)
        .await?;
    Ok((total, rows))
}
