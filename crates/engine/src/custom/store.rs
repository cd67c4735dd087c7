//! SQL for custom connectors.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CustomRow {
    pub id: Uuid,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub version: i32,
    pub version_id: Uuid,
    pub status: String,
    pub release_version: Option<String>,
    pub icon: String,
    pub auth_content: Value,
    pub document: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, project_id, name, description, version, version_id, status, \
                       release_version, icon, auth_content, document, created_at, updated_at";

pub async fn insert(db: impl PgExecutor<'_>, row: &CustomRow) -> sqlx::Result<()> {
    sqlx::query(
        r#"
        INSERT INTO custom_connectors (id, project_id, name, description, version, version_id,
                                       status, release_version, icon, auth_content, document,
                                       created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        "#,
    )
    .bind(row.id)
    .bind(&row.project_id)
    .bind(&row.name)
    .bind(&row.description)
    .bind(row.version)
    .bind(row.version_id)
    .bind(&row.status)
    .bind(&row.release_version)
    .bind(&row.icon)
    .bind(&row.auth_content)
    .bind(&row.document)
    .bind(row.created_at)
    .bind(row.updated_at)
    .execute(db)
    .await
    .map(drop)
}

pub async fn find(
    db: impl PgExecutor<'_>,
    project_id: &str,
    id: Uuid,
    lock: bool,
) -> sqlx::Result<Option<CustomRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM custom_connectors WHERE id = $1 AND project_id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query_as(&sql).bind(id).bind(project_id).fetch_optional(db).await
}

/// Every custom connector of a project, oldest first.
pub async fn all(db: impl PgExecutor<'_>, project_id: &str) -> sqlx::Result<Vec<CustomRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM custom_connectors WHERE project_id = $1 ORDER BY created_at, id"
    );
    sqlx::query_as(&sql).bind(project_id).fetch_all(db).await
}

pub async fn list(
    db: impl PgExecutor<'_> + Copy,
    project_id: &str,
    name: Option<&str>,
    offset: i64,
    limit: i64,
) -> sqlx::Result<(i64, Vec<CustomRow>)> {
    let name = name.map(crate::store::like_pattern);
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM custom_connectors \
         WHERE project_id = $1 AND ($2::text IS NULL OR name ILIKE $2)",
    )
    .bind(project_id)
    .bind(&name)
    .fetch_one(db)
    .await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM custom_connectors \
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

pub async fn release(db: impl PgExecutor<'_>, id: Uuid, version: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE custom_connectors SET status = 'released', release_version = $2, \
         updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(version)
    .execute(db)
    .await
    .map(drop)
}

pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM custom_connectors WHERE id = $1").bind(id).execute(db).await.map(drop)
}

/// Names of the project's flows and templates whose steps call the connector.
pub async fn users(
    db: impl PgExecutor<'_>,
    project_id: &str,
    connector_id: &str,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        r#"
        SELECT 'flow ' || name FROM flows
        WHERE project_id = $1 AND jsonb_path_exists(definition,
              '$.steps[*].call.connectorRef ? (@ == $id)', jsonb_build_object('id', $2::text))
        UNION ALL
        SELECT 'template ' || name FROM templates
        WHERE project_id = $1 AND jsonb_path_exists(definition,
              '$.steps[*].call.connectorRef ? (@ == $id)', jsonb_build_object('id', $2::text))
        ORDER BY 1
        "#,
    )
    .bind(project_id)
    .bind(connector_id)
    .fetch_all(db)
    .await
}
