//! Domains, projects, users and access keys: first-start bootstrap, key and user creation,
//! and password login.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;
use serde::Serialize;
use sqlx::PgPool;

use crate::secrets::Sealer;
use crate::store::{self, NewUser, ProjectRow, UserRow};

/// The project name upstream clients scope tokens to: MSSI's only region.
pub const DEFAULT_PROJECT_NAME: &str = "cn-north-4";
pub const DEFAULT_DOMAIN_NAME: &str = "workbench";
pub const ADMIN_USER: &str = "admin";

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("project `{0}` does not exist")]
    UnknownProject(String),
    #[error("there is no project yet: start the server once, or run `workbench migrate`")]
    NoProject,
    #[error("a user named `{0}` already exists in this domain")]
    DuplicateUser(String),
    #[error("a project named `{0}` already exists in this domain")]
    DuplicateProject(String),
    #[error("a project name is 1-64 letters, digits, `-`, `_` or `.`")]
    BadProjectName,
    #[error("{0}")]
    InvalidUser(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A new access key pair. The secret is shown once and stored only sealed.
#[derive(Serialize)]
pub struct NewKey {
    pub ak: String,
    pub sk: String,
    pub project_id: String,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("ak", &self.ak)
            .field("project_id", &self.project_id)
            .finish()
    }
}

/// What the first start created, to hand to the operator.
#[derive(Debug, Serialize)]
pub struct Bootstrap {
    pub domain_name: String,
    pub project_id: String,
    pub project_name: String,
    pub user: String,
    pub password: String,
    pub key: NewKey,
}

fn hex_id() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    hex::encode(bytes)
}

/// Creates the default domain, project, admin user and key unless a domain exists already.
/// Safe to call from several processes at once: the loser of the race creates nothing.
pub async fn bootstrap(db: &PgPool, sealer: &Sealer) -> Result<Option<Bootstrap>, TenancyError> {
    let mut tx = db.begin().await?;
    // Serialises concurrent first starts on one database.
    sqlx::query("SELECT pg_advisory_xact_lock(7311)").execute(&mut *tx).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM domains)").fetch_one(&mut *tx).await?;
    if exists {
        return Ok(None);
    }
    let domain_id = hex_id();
    store::insert_domain(&mut *tx, &domain_id, DEFAULT_DOMAIN_NAME).await?;
    let project = ProjectRow {
        id: hex_id(),
        name: DEFAULT_PROJECT_NAME.to_owned(),
        domain_id: domain_id.clone(),
    };
    store::insert_project(&mut *tx, &project).await?;
    let password = Alphanumeric.sample_string(&mut rand::thread_rng(), 20);
    let user_id = hex_id();
    let user = NewUser {
        id: &user_id,
        domain_id: &domain_id,
        name: ADMIN_USER,
        password_hash: &hash_password(&password),
        is_admin: true,
        actions: &[],
    };
    store::insert_user(&mut *tx, &user).await?;
    store::grant_project(&mut *tx, &user_id, &project.id).await?;
    let key = new_key(&mut tx, sealer, &user_id, &project.id).await?;
    tx.commit().await?;
    Ok(Some(Bootstrap {
        domain_name: DEFAULT_DOMAIN_NAME.to_owned(),
        project_id: project.id,
        project_name: project.name,
        user: ADMIN_USER.to_owned(),
        password,
        key,
    }))
}

async fn new_key(
    tx: &mut sqlx::PgConnection,
    sealer: &Sealer,
    user_id: &str,
    project_id: &str,
) -> Result<NewKey, TenancyError> {
    let mut rng = rand::thread_rng();
    let ak = Alphanumeric.sample_string(&mut rng, 20).to_ascii_uppercase();
    let sk = Alphanumeric.sample_string(&mut rng, 40);
    store::insert_access_key(&mut *tx, &ak, &sealer.seal(sk.as_bytes()), user_id, project_id)
        .await?;
    Ok(NewKey { ak, sk, project_id: project_id.to_owned() })
}

/// A new project named `name` in the default project's domain. Its admin can reach it at once
/// and make keys for it; the ABM `default` instance exists in it as in every project.
pub async fn create_project(db: &PgPool, name: &str) -> Result<ProjectRow, TenancyError> {
    let valid = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !valid {
        return Err(TenancyError::BadProjectName);
    }
    let home = store::default_project(db).await?.ok_or(TenancyError::NoProject)?;
    let project = ProjectRow { id: hex_id(), name: name.to_owned(), domain_id: home.domain_id };
    match store::insert_project(db, &project).await {
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("projects_name_key") => {
            Err(TenancyError::DuplicateProject(name.to_owned()))
        }
        other => other.map(|()| project).map_err(TenancyError::from),
    }
}

/// The project `project_id`, or the default project when `None`.
pub async fn find_project(
    db: &PgPool,
    project_id: Option<&str>,
) -> Result<ProjectRow, TenancyError> {
    match project_id {
        Some(id) => store::find_project(db, id)
            .await?
            .ok_or_else(|| TenancyError::UnknownProject(id.to_owned())),
        None => store::default_project(db).await?.ok_or(TenancyError::NoProject),
    }
}

/// A new access key for the domain admin on `project_id` (the default project when `None`).
pub async fn create_key(
    db: &PgPool,
    sealer: &Sealer,
    project_id: Option<&str>,
) -> Result<NewKey, TenancyError> {
    let project = find_project(db, project_id).await?;
    let admin =
        store::domain_admin(db, &project.domain_id).await?.ok_or(TenancyError::NoProject)?;
    let mut tx = db.begin().await?;
    let key = new_key(&mut tx, sealer, &admin, &project.id).await?;
    tx.commit().await?;
    Ok(key)
}

/// A new user for token login, granted the default project (or `project_id`).
pub async fn create_user(
    db: &PgPool,
    name: &str,
    password: &str,
    project_id: Option<&str>,
    actions: &[String],
) -> Result<ProjectRow, TenancyError> {
    check_new_user(name, password, actions)?;
    let project = find_project(db, project_id).await?;
    let is_admin = actions.is_empty();
    let user_id = hex_id();
    let user = NewUser {
        id: &user_id,
        domain_id: &project.domain_id,
        name,
        password_hash: &hash_password(password),
        is_admin,
        actions,
    };
    let mut tx = db.begin().await?;
    store::insert_user(&mut *tx, &user).await.map_err(|e| match &e {
        sqlx::Error::Database(d) if d.constraint() == Some("users_name_key") => {
            TenancyError::DuplicateUser(name.to_owned())
        }
        _ => TenancyError::Database(e),
    })?;
    store::grant_project(&mut *tx, &user_id, &project.id).await?;
    tx.commit().await?;
    Ok(project)
}

/// Refuses a blank name or password and grants that match no IAM action.
fn check_new_user(name: &str, password: &str, actions: &[String]) -> Result<(), TenancyError> {
    if name.trim().is_empty() {
        return Err(TenancyError::InvalidUser("the user name must not be empty".into()));
    }
    if password.is_empty() {
        return Err(TenancyError::InvalidUser("the password must not be empty".into()));
    }
    if let Some(bad) = actions.iter().find(|a| !crate::auth::is_known_grant(a)) {
        return Err(TenancyError::InvalidUser(format!(
            "unknown action `{bad}`: give an action name such as `mssi:flow:start`, or a prefix \
             ending in `*` that matches one, such as `mssi:flow:*`"
        )));
    }
    Ok(())
}

/// The user, if the password is right.
pub async fn login(
    db: &PgPool,
    domain: &str,
    user: &str,
    password: &str,
) -> Result<Option<UserRow>, TenancyError> {
    let Some(row) = store::find_user(db, domain, user).await? else {
        return Ok(None);
    };
    let ok = PasswordHash::new(&row.password_hash)
        .map(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
        .unwrap_or(false);
    Ok(ok.then_some(row))
}

fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with default parameters cannot fail")
        .to_string()
}
