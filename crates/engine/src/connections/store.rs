//! SQL for connections.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectionRow {
    pub id: Uuid,
    pub project_id: String,
    pub name: String,
    pub connector_id: String,
    pub description: String,
    pub auth_type: String,
    pub auth_sealed: Vec<u8>,
    pub auth_masked: Value,
    pub settings: Value,
    pub domain_id: String,
    pub user_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, project_id, name, connector_id, description, auth_type, auth_sealed, \
                       auth_masked, settings, domain_id, user_id, created_at, updated_at";

pub async fn insert(db: impl PgExecutor<'_>, row: &ConnectionRow) -> sqlx::Result<()> {
    sqlx::query(
        r#"
        INSERT INTO connections (id, project_id, name, connector_id, description, auth_type,
                                 auth_sealed, auth_masked, settings, domain_id, user_id,
                                 created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        "#,
    )
    .bind(row.id)
    .bind(&row.project_id)
    .bind(&row.name)
    .bind(&row.connector_id)
    .bind(&row.description)
    .bind(&row.auth_type)
    .bind(&row.auth_sealed)
    .bind(&row.auth_masked)
    .bind(&row.settings)
    .bind(&row.domain_id)
    .bind(&row.user_id)
    .bind(row.created_at)
    .bind(row.updated_at)
    .execute(db)
    .await
    .map(drop)
}

pub async fn update(db: impl PgExecutor<'_>, row: &ConnectionRow) -> sqlx::Result<()> {
    sqlx::query(
        r#"
        UPDATE connections SET name = $2, connector_id = $3, description = $4, auth_type = $5,
               auth_sealed = $6, auth_masked = $7, settings = $8, updated_at = $9
        WHERE id = $1
        "#,
    )
    .bind(row.id)
    .bind(&row.name)
    .bind(&row.connector_id)
    .bind(&row.description)
    .bind(&row.auth_type)
    .bind(&row.auth_sealed)
    .bind(&row.auth_masked)
    .bind(&row.settings)
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
) -> sqlx::Result<Option<ConnectionRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM connections WHERE id = $1 AND project_id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query_as(&sql).bind(id).bind(project_id).fetch_optional(db).await
}

pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM connections WHERE id = $1").bind(id).execute(db).await.map(drop)
}

/// The names of enabled flows of the project whose steps use the connection.
pub async fn enabled_flows_using(
    db: impl PgExecutor<'_>,
    project_id: &str,
    id: Uuid,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        r#"
        SELECT name FROM flows
        WHERE project_id = $1 AND status = 'enable'
          AND jsonb_path_exists(definition,
                '$.steps[*].call.*.authentication.connectionId ? (@ == $id)',
                jsonb_build_object('id', $2::text))
        ORDER BY name
        "#,
    )
    .bind(project_id)
    .bind(id.to_string())
    .fetch_all(db)
    .await
}

pub async fn list(
    db: impl PgExecutor<'_> + Copy,
    project_id: &str,
    name: Option<&str>,
    offset: i64,
    limit: i64,
) -> sqlx::Result<(i64, Vec<ConnectionRow>)> {
    let name = name.map(crate::store::like_pattern);
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM connections \
         WHERE project_id = $1 AND ($2::text IS NULL OR name ILIKE $2)",
    )
    .bind(project_id)
    .bind(&name)
    .fetch_one(db)
    .await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM connections \
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

/// Every sealed value, locked, for re-encryption under a new key.
pub async fn all_sealed(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<(Uuid, Vec<u8>)>> {
    sqlx::query_as("SELECT id, auth_sealed FROM connections ORDER BY id FOR UPDATE")
        .fetch_all(db)
        .await
}

pub async fn set_sealed(db: impl PgExecutor<'_>, id: Uuid, sealed: &[u8]) -> sqlx::Result<()> {
    sqlx::query("UPDATE connections SET auth_sealed = $2 WHERE id = $1")
        .bind(id)
        .bind(sealed)
        .execute(db)
        .await
        .map(drop)
}
