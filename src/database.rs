//! Finding the database: `DATABASE_URL` when given, otherwise a private cluster under the data
//! directory. Migrations run on every open, and the encryption key is checked against the one
//! the database was set up with.

use std::path::Path;

use anyhow::Context;
use base64::Engine as _;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};
use workbench_api::secrets::Sealer;

use crate::Settings;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The database of this process, and the private cluster behind it if this process started it.
pub struct Database {
    pub pool: PgPool,
    cluster: Option<embedded_pg::Cluster>,
}

const DATABASE_NAME: &str = "workbench";

impl Database {
    pub async fn open(settings: &Settings, max_connections: u32) -> anyhow::Result<Database> {
        let (url, cluster) = match &settings.database_url {
            Some(url) => (url.clone(), None),
            None => {
                let dir = settings.data_dir.join("postgres");
                let was_running = embedded_pg::Cluster::is_running_at(&dir);
                let cluster = embedded_pg::Cluster::start(&dir).await?;
                create_database(&cluster).await?;
                tracing::info!(data_dir = %dir.display(), "private PostgreSQL is up");
                let url = cluster.url(DATABASE_NAME);
                (url, (!was_running).then_some(cluster))
            }
        };
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(&url)
            .await
            .context("connecting to PostgreSQL")?;
        MIGRATOR.run(&pool).await.context("applying migrations")?;
        Ok(Database { pool, cluster })
    }

    /// Closes the pool and stops the private cluster if this process started it.
    pub async fn close(self) {
        self.pool.close().await;
        if let Some(cluster) = self.cluster {
            if let Err(e) = cluster.stop().await {
                tracing::warn!(error = %e, "stopping the private PostgreSQL failed");
            }
        }
    }
}

async fn create_database(cluster: &embedded_pg::Cluster) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect(&cluster.url("postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DATABASE_NAME)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        sqlx::query(&format!("CREATE DATABASE {DATABASE_NAME}")).execute(&mut conn).await?;
    }
    conn.close().await?;
    Ok(())
}

/// The encryption key: `WORKBENCH_MASTER_KEY` (base64 of 32 bytes), else `master.key` in the
/// data directory, created on first start with owner-only permissions.
pub fn load_master_key(data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    let engine = base64::engine::general_purpose::STANDARD;
    if let Ok(text) = std::env::var("WORKBENCH_MASTER_KEY") {
        return decode_key(&text);
    }
    let path = data_dir.join("master.key");
    if path.exists() {
        return decode_key(&std::fs::read_to_string(&path)?);
    }
    std::fs::create_dir_all(data_dir)?;
    let key = Sealer::generate_key();
    write_private(&path, engine.encode(key).as_bytes())?;
    Ok(key)
}

fn decode_key(text: &str) -> anyhow::Result<[u8; 32]> {
    let engine = base64::engine::general_purpose::STANDARD;
    let bytes = engine.decode(text.trim()).context("the master key is not base64")?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("the master key must be 32 bytes"))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

/// The plain text of the `key_check` setting.
const CANARY: &[u8] = b"workbench key check";

/// Refuses a key other than the one the database's secrets were sealed with.
pub async fn check_master_key(pool: &PgPool, sealer: &Sealer) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO server_settings (name, value) VALUES ('key_check', $1) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(sealer.seal(CANARY))
    .execute(pool)
    .await?;
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT value FROM server_settings WHERE name = 'key_check'")
            .fetch_one(pool)
            .await?;
    match sealer.open(&sealed) {
        Ok(plain) if plain == CANARY => Ok(()),
        _ => anyhow::bail!(
            "the encryption key differs from the one this database was set up with: give every \
             process the same WORKBENCH_MASTER_KEY (or the same data directory's master.key)"
        ),
    }
}

/// Writes the first start's credentials where only the owner can read them.
pub fn write_credentials(data_dir: &Path, text: &str) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join("credentials.json");
    let _ = std::fs::remove_file(&path);
    write_private(&path, text.as_bytes())?;
    Ok(path)
}

/// The advisory lock key of "a server uses this database": every server holds it shared for
/// its lifetime, and a key rotation takes it exclusively, so the two never overlap.
const SERVER_LOCK: i64 = 0x5742_5345_5256_4552; // "WBSERVER"

/// A dedicated session that holds [`SERVER_LOCK`] shared until it is closed. It waits while a
/// key rotation runs, so a server never starts with the key that rotation replaces.
// FIXME: the lock lives as long as this one connection; if PostgreSQL drops it (a restart, an
// idle timeout) the server keeps running without the lock, and a rotation could then start.
// Lifting it needs a watchdog that re-takes the lock or stops the server when the session ends.
pub async fn hold_server_lock(pool: &PgPool) -> anyhow::Result<sqlx::PgConnection> {
    let mut conn = pool.acquire().await?.detach();
    sqlx::query("SELECT pg_advisory_lock_shared($1)")
        .bind(SERVER_LOCK)
        .execute(&mut conn)
        .await
        .context("taking the server lock")?;
    Ok(conn)
}

/// What a key rotation changed.
#[derive(Debug, Clone, Copy)]
pub struct Rotated {
    pub access_keys: usize,
    pub connections: usize,
}

/// Re-seals every stored secret under a new master key in one transaction, then replaces
/// `master.key` in the data directory. The new key is `WORKBENCH_NEW_MASTER_KEY` (base64 of
/// 32 bytes) when set, else a fresh random key. Refuses while a server uses the database
/// (holds [`SERVER_LOCK`]): it could not open what is sealed afterwards.
pub async fn rotate_encryption(
    pool: &PgPool,
    data_dir: &Path,
    old: &Sealer,
) -> anyhow::Result<Rotated> {
    let new_key = match std::env::var("WORKBENCH_NEW_MASTER_KEY") {
        Ok(text) => decode_key(&text).context("WORKBENCH_NEW_MASTER_KEY")?,
        Err(_) => Sealer::generate_key(),
    };
    let new = Sealer::new(new_key);
    let mut tx = pool.begin().await?;
    let alone: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(SERVER_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !alone {
        anyhow::bail!(
            "a workbench server is using this database: stop every workbench server using this \
             database first"
        );
    }
    let keys = workbench_api::store::all_access_key_secrets(&mut *tx).await?;
    for (ak, sealed) in &keys {
        let plain = old.open(sealed).context("an access key cannot be opened with the old key")?;
        workbench_api::store::set_access_key_secret(&mut *tx, ak, &new.seal(&plain)).await?;
    }
    let connections = workbench_engine::connections::reseal_all(&mut tx, old, &new)
        .await
        .context("re-sealing connections")?;
    sqlx::query("UPDATE server_settings SET value = $1 WHERE name = 'key_check'")
        .bind(new.seal(CANARY))
        .execute(&mut *tx)
        .await?;
    // The new key is on disk before the commit, so a crash in between loses nothing.
    std::fs::create_dir_all(data_dir)?;
    let staged = data_dir.join("master.key.new");
    let _ = std::fs::remove_file(&staged);
    let engine = base64::engine::general_purpose::STANDARD;
    write_private(&staged, engine.encode(new_key).as_bytes())?;
    if let Err(e) = tx.commit().await {
        let _ = std::fs::remove_file(&staged);
        return Err(e).context("committing the re-encryption");
    }
    std::fs::rename(&staged, data_dir.join("master.key")).context("replacing master.key")?;
    Ok(Rotated { access_keys: keys.len(), connections })
}
