//! SQL for the API's own tables: domains, projects, users and access keys.
//!
//! Statements are runtime-checked `sqlx::query` calls rather than compile-time macros so that
//! the workspace builds without a database; the integration tests execute every one of them.

use sqlx::{PgExecutor, PgPool};

/// An access key with its owner, as needed to authenticate a signed request.
#[derive(Debug, sqlx::FromRow)]
pub struct AccessKeyRow {
    pub secret_sealed: Vec<u8>,
    pub user_id: String,
    pub domain_id: String,
    pub project_id: String,
    pub is_admin: bool,
    pub actions: Vec<String>,
}

pub async fn find_access_key(
    db: impl PgExecutor<'_>,
    access_key: &str,
) -> sqlx::Result<Option<AccessKeyRow>> {
    sqlx::query_as(
        r#"
        SELECT k.secret_sealed, k.user_id, u.domain_id, k.project_id, u.is_admin, u.actions
        FROM access_keys k JOIN users u ON u.id = k.user_id
        WHERE k.access_key = $1
        "#,
    )
    .bind(access_key)
    .fetch_optional(db)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub domain_name: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub actions: Vec<String>,
}

pub async fn find_user(
    db: impl PgExecutor<'_>,
    domain_name: &str,
    user_name: &str,
) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(
        r#"
        SELECT u.id, u.name, u.domain_id, d.name AS domain_name, u.password_hash, u.is_admin,
               u.actions
        FROM users u JOIN domains d ON d.id = u.domain_id
        WHERE d.name = $1 AND u.name = $2
        "#,
    )
    .bind(domain_name)
    .bind(user_name)
    .fetch_optional(db)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProjectRow {
    pub id: String,
    pub name: String,
    pub domain_id: String,
}

/// The projects a user may act on; admins may act on every project of their domain.
pub async fn user_projects(db: &PgPool, user: &UserRow) -> sqlx::Result<Vec<ProjectRow>> {
    sqlx::query_as(
        r#"
        SELECT p.id, p.name, p.domain_id
        FROM projects p
        WHERE p.domain_id = $1
          AND ($2 OR EXISTS (
                SELECT 1 FROM user_projects up WHERE up.project_id = p.id AND up.user_id = $3))
        ORDER BY p.created_at
        "#,
    )
    .bind(&user.domain_id)
    .bind(user.is_admin)
    .bind(&user.id)
    .fetch_all(db)
    .await
}

pub async fn insert_domain(db: impl PgExecutor<'_>, id: &str, name: &str) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO domains (id, name) VALUES ($1, $2)")
        .bind(id)
        .bind(name)
        .execute(db)
        .await
        .map(drop)
}

pub async fn insert_project(db: impl PgExecutor<'_>, project: &ProjectRow) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO projects (id, domain_id, name) VALUES ($1, $2, $3)")
        .bind(&project.id)
        .bind(&project.domain_id)
        .bind(&project.name)
        .execute(db)
        .await
        .map(drop)
}

pub struct NewUser<'a> {
    pub id: &'a str,
    pub domain_id: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub is_admin: bool,
    pub actions: &'a [String],
}

pub async fn insert_user(db: impl PgExecutor<'_>, user: &NewUser<'_>) -> sqlx::Result<()> {
    sqlx::query(
        r#"
        INSERT INTO users (id, domain_id, name, password_hash, is_admin, actions)
        VALUES ($1, $2, $3, $4, $5, $6)
        "#,
    )
    .bind(user.id)
    .bind(user.domain_id)
    .bind(user.name)
    .bind(user.password_hash)
    .bind(user.is_admin)
    .bind(user.actions)
    .execute(db)
    .await
    .map(drop)
}

pub async fn grant_project(
    db: impl PgExecutor<'_>,
    user_id: &str,
    project_id: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO user_projects (user_id, project_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(project_id)
    .execute(db)
    .await
    .map(drop)
}

pub async fn insert_access_key(
    db: impl PgExecutor<'_>,
    access_key: &str,
    secret_sealed: &[u8],
    user_id: &str,
    project_id: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        r#"
        INSERT INTO access_keys (access_key, secret_sealed, user_id, project_id)
        VALUES ($1, $2, $3, $4)
        "#,
    )
    .bind(access_key)
    .bind(secret_sealed)
    .bind(user_id)
    .bind(project_id)
    .execute(db)
    .await
    .map(drop)
}

/// The first project created, which commands use when none is named.
pub async fn default_project(db: impl PgExecutor<'_>) -> sqlx::Result<Option<ProjectRow>> {
    sqlx::query_as("SELECT id, name, domain_id FROM projects ORDER BY created_at, id LIMIT 1")
        .fetch_optional(db)
        .await
}

pub async fn find_project(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<ProjectRow>> {
    sqlx::query_as("SELECT id, name, domain_id FROM projects WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The admin user of a domain, who owns keys made by the command line.
pub async fn domain_admin(
    db: impl PgExecutor<'_>,
    domain_id: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT id FROM users WHERE domain_id = $1 AND is_admin ORDER BY created_at LIMIT 1",
    )
    .bind(domain_id)
    .fetch_optional(db)
    .await
}

/// Every access key's sealed secret, locked, for re-encryption under a new key.
pub async fn all_access_key_secrets(
    db: impl PgExecutor<'_>,
) -> sqlx::Result<Vec<(String, Vec<u8>)>> {
    sqlx::query_as("SELECT access_key, secret_sealed FROM access_keys ORDER BY 1 FOR UPDATE")
        .fetch_all(db)
        .await
}

pub async fn set_access_key_secret(
    db: impl PgExecutor<'_>,
    access_key: &str,
    sealed: &[u8],
) -> sqlx::Result<()> {
    sqlx::query("UPDATE access_keys SET secret_sealed = $2 WHERE access_key = $1")
        .bind(access_key)
        .bind(sealed)
        .execute(db)
        .await
        .map(drop)
}
