//! Test harness: each test gets a fresh, migrated database on one local PostgreSQL.
//!
//! The server is `WORKBENCH_TEST_DATABASE_URL` when set (any database on it that the role may
//! create databases from), otherwise a private cluster under the system temp directory, started
//! from the installed binaries once and shared by every test process.
//!
//! Built with the `testcontainers` feature (`cargo test --workspace --features
//! workbench-test-support/testcontainers`), the server is instead a `postgres:15` container that
//! the first test of each process starts through Docker.
//!
//! FIXME: the container path is compiled but not exercised by CI, whose machines have no Docker
//! daemon; a CI job with Docker running the suite with the feature would cover it.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use tokio::sync::OnceCell;

static SERVER: OnceCell<String> = OnceCell::const_new();

/// The schema every test database gets, the same migrations the server applies at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// A URL of the test server's maintenance database (`postgres`).
pub async fn server_url() -> String {
    SERVER
        .get_or_init(|| async {
            if let Ok(url) = std::env::var("WORKBENCH_TEST_DATABASE_URL") {
                return url;
            }
            #[cfg(feature = "testcontainers")]
            return start_container().await;
            #[cfg(not(feature = "testcontainers"))]
            {
                let dir = std::env::temp_dir().join("workbench-test-pg");
                start_shared(dir).await.url("postgres")
            }
        })
        .await
        .clone()
}

#[cfg(not(feature = "testcontainers"))]
async fn start_shared(dir: std::path::PathBuf) -> embedded_pg::Cluster {
    // Several test binaries may race to start the same cluster; the loser finds it running.
    for _ in 0..20 {
        match embedded_pg::Cluster::start(&dir).await {
            Ok(cluster) => return cluster,
            Err(e) => {
                eprintln!("test PostgreSQL not up yet: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
    panic!("could not start the test PostgreSQL under {}", dir.display());
}

#[cfg(feature = "testcontainers")]
async fn start_container() -> String {
    use testcontainers_modules::postgres::Postgres;
    use testcontainers_modules::testcontainers::runners::AsyncRunner;
    use testcontainers_modules::testcontainers::{ContainerAsync, ImageExt};

    // Kept for the life of the process: every test of it shares the one server.
    static CONTAINER: OnceCell<ContainerAsync<Postgres>> = OnceCell::const_new();
    let container = CONTAINER
        .get_or_init(|| async {
            Postgres::default()
                .with_tag("15-alpine")
                .start()
                .await
                .expect("start a PostgreSQL container (is the Docker daemon running?)")
        })
        .await;
    let host = container.get_host().await.expect("container host");
    let port = container.get_host_port_ipv4(5432).await.expect("container port");
    format!("postgres://postgres:postgres@{host}:{port}/postgres")
}

/// Creates an empty database with a unique name and returns its URL (no migrations).
pub async fn fresh_database_url() -> String {
    let server = server_url().await;
    let admin: PgConnectOptions = server.parse().expect("test database URL");
    let mut conn = connect_when_ready(&admin).await;
    let name = format!("wbtest_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    conn.close().await.ok();
    with_database(&server, &name)
}

/// Connects to the test server, waiting while it is still starting: a cluster that another
/// test process started may still be replaying its WAL after an unclean stop.
async fn connect_when_ready(admin: &PgConnectOptions) -> sqlx::PgConnection {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        match admin.connect().await {
            Ok(conn) => return conn,
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("57P03") && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => panic!("connect to the test PostgreSQL: {e}"),
        }
    }
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_end..].find('/').map_or(base.len(), |i| authority_end + i);
    let mut out = format!("{}/{}", &base[..path_start], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A pool on a fresh, migrated database.
pub async fn fresh_pool() -> PgPool {
    let url = fresh_database_url().await;
    let pool = PgPoolOptions::new().max_connections(8).connect(&url).await.expect("connect");
    MIGRATOR.run(&pool).await.expect("migrate test database");
    pool
}
