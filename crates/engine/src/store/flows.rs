//! SQL for flows and their versions: saving, finding, listing, enabling and deleting them.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FlowRow {
    pub id: Uuid,
    pub project_id: String,
    pub name: String,
    pub status: String,
    pub version: i32,
    pub webhook: String,
    pub definition: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const FLOW_COLUMNS: &str =
    "id, project_id, name, status, version, webhook, definition, created_at, updated_at";

pub async fn insert_flow(db: &mut PgConnection, flow: &FlowRow) -> sqlx::Result<()> {
    sqlx::query(
        r#"
        INSERT INTO flows (id, project_id, name, status, version, webhook, definition,
                           created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        "#,
    )
    .bind(flow.id)
    .bind(&flow.project_id)
    .bind(&flow.name)
    .bind(&flow.status)
    .bind(flow.version)
    .bind(&flow.webhook)
    .bind(&flow.definition)
    .bind(flow.created_at)
    .bind(flow.updated_at)
    .execute(&mut *db)
    .await?;
    insert_version(db, flow).await
}

/// Replaces the definition with a new version, keeping the old one for `?version=`.
pub async fn update_flow(db: &mut PgConnection, flow: &FlowRow) -> sqlx::Result<()> {
    sqlx::query(
        r#"
        UPDATE flows SET name = $2, version = $3, definition = $4, updated_at = $5
        WHERE id = $1
        "#,
    )
    .bind(flow.id)
    .bind(&flow.name)
    .bind(flow.version)
    .bind(&flow.definition)
    .bind(flow.updated_at)
    .execute(&mut *db)
    .await?;
    insert_version(db, flow).await
}

async fn insert_version(db: &mut PgConnection, flow: &FlowRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO flow_versions (flow_id, version, definition, created_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(flow.id)
    .bind(flow.version)
    .bind(&flow.definition)
    .bind(flow.updated_at)
    .execute(db)
    .await
    .map(drop)
}

/// The flow, locked for update when `lock` is set.
pub async fn find_flow(
    db: impl PgExecutor<'_>,
    project_id: &str,
    flow_id: Uuid,
    lock: bool,
) -> sqlx::Result<Option<FlowRow>> {
    let sql = format!(
        "SELECT {FLOW_COLUMNS} FROM flows WHERE id = $1 AND project_id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query_as(&sql).bind(flow_id).bind(project_id).fetch_optional(db).await
}

pub async fn find_flow_by_webhook(
    db: impl PgExecutor<'_>,
    webhook: &str,
) -> sqlx::Result<Option<FlowRow>> {
    let sql = format!("SELECT {FLOW_COLUMNS} FROM flows WHERE webhook = $1");
    sqlx::query_as(&sql).bind(webhook).fetch_optional(db).await
}

pub async fn find_version(
    db: impl PgExecutor<'_>,
    flow_id: Uuid,
    version: i32,
) -> sqlx::Result<Option<(Value, DateTime<Utc>)>> {
    sqlx::query_as(
        "SELECT definition, created_at FROM flow_versions WHERE flow_id = $1 AND version = $2",
    )
    .bind(flow_id)
    .bind(version)
    .fetch_optional(db)
    .await
}

/// The definitions of the given `(flow, version)` pairs that exist, in one query.
pub async fn find_versions(
    db: impl PgExecutor<'_>,
    wanted: &[(Uuid, i32)],
) -> sqlx::Result<Vec<(Uuid, i32, Value)>> {
    let (flows, versions): (Vec<Uuid>, Vec<i32>) = wanted.iter().copied().unzip();
    sqlx::query_as(
        r#"
        SELECT v.flow_id, v.version, v.definition
        FROM UNNEST($1::uuid[], $2::int[]) AS w(flow_id, version)
        JOIN flow_versions v ON v.flow_id = w.flow_id AND v.version = w.version
        "#,
    )
    .bind(&flows)
    .bind(&versions)
    .fetch_all(db)
    .await
}

pub async fn delete_flow(db: impl PgExecutor<'_>, flow_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "WITH counts AS (DELETE FROM flow_run_counts WHERE flow_id = $1) \
         DELETE FROM flows WHERE id = $1",
    )
    .bind(flow_id)
    .execute(db)
    .await
    .map(drop)
}

pub async fn set_flow_status(
    db: impl PgExecutor<'_>,
    project_id: &str,
    flow_id: Uuid,
    status: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE flows SET status = $3, updated_at = now() WHERE id = $1 AND project_id = $2",
    )
    .bind(flow_id)
    .bind(project_id)
    .bind(status)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Filters of the flow list.
#[derive(Debug, Default, Clone)]
pub struct FlowFilter {
    pub name: Option<String>,
    /// The derived flow `type` (`instant`, `scheduled`, `api`, `automated`).
    pub flow_type: Option<String>,
    pub ids: Option<Vec<Uuid>>,
    pub offset: i64,
    pub limit: i64,
}

/// The `authentication.connectionId`s of `definition`'s steps that name no connection of
/// `project_id`.
pub async fn missing_connections(
    db: impl PgExecutor<'_>,
    project_id: &str,
    definition: &Value,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        r#"
        SELECT DISTINCT c.id #>> '{}'
        FROM jsonb_path_query($2, '$.steps[*].call.*.authentication.connectionId') AS c(id)
        WHERE c.id #>> '{}' <> '' AND NOT EXISTS (
            SELECT 1 FROM connections k WHERE k.project_id = $1 AND k.id::text = c.id #>> '{}')
        "#,
    )
    .bind(project_id)
    .bind(definition)
    .fetch_all(db)
    .await
}

pub async fn list_flows(
    db: impl PgExecutor<'_> + Copy,
    project_id: &str,
    filter: &FlowFilter,
) -> sqlx::Result<(i64, Vec<FlowRow>)> {
    let name = filter.name.as_deref().map(like_pattern);
    let total: i64 = sqlx::query_scalar(
        r#"
        SELECT count(*) FROM flows
        WHERE project_id = $1 AND ($2::text IS NULL OR name ILIKE $2)
          AND ($3::uuid[] IS NULL OR id = ANY($3))
          AND ($4::text IS NULL OR definition->>'type' = $4)
        "#,
    )
    .bind(project_id)
    .bind(&name)
    .bind(&filter.ids)
    .bind(&filter.flow_type)
    .fetch_one(db)
    .await?;
    let sql = format!(
        r#"
        SELECT {FLOW_COLUMNS} FROM flows
        WHERE project_id = $1 AND ($2::text IS NULL OR name ILIKE $2)
          AND ($3::uuid[] IS NULL OR id = ANY($3))
          AND ($6::text IS NULL OR definition->>'type' = $6)
        ORDER BY created_at DESC, id
        OFFSET $4 LIMIT $5
        "#
    );
    let rows = sqlx::query_as(&sql)
        .bind(project_id)
        .bind(&name)
        .bind(&filter.ids)
        .bind(filter.offset)
        .bind(filter.limit)
        .bind(&filter.flow_type)
        .fetch_all(db)
        .await?;
    Ok((total, rows))
}

/// `%text%` with LIKE's wildcards in `text` taken literally.
pub fn like_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}
