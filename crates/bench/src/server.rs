//! The system under test: a PostgreSQL cluster (private, or `DATABASE_URL`) and a
//! `workbench serve` child process per scenario, whose memory and CPU are read from `/proc`.
//!
//! The server runs as a child process so that its resident set is its own and not the load
//! generator's. Each scenario gets a fresh database and a fresh server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};
use tokio::process::{Child, Command};

/// How long until every backend's statistics reached `pg_stat_database`: PostgreSQL 15 flushes
/// a backend's counters when it goes idle, but at most once a second, and otherwise within ten.
pub(crate) const STATS_SETTLE: Duration = Duration::from_secs(11);

/// The PostgreSQL server every scenario's database lives on.
pub(crate) struct Pg {
    cluster: Option<embedded_pg::Cluster>,
    admin_url: String,
}

impl Pg {
    /// `database_url`'s server, or a private cluster under `dir`.
    pub(crate) async fn open(database_url: Option<String>, dir: &Path) -> anyhow::Result<Pg> {
        if let Some(url) = database_url {
            return Ok(Pg { cluster: None, admin_url: url });
        }
        std::fs::create_dir_all(dir)?;
        let cluster = embedded_pg::Cluster::start(dir).await.context("starting PostgreSQL")?;
        let admin_url = cluster.url("postgres");
        Ok(Pg { cluster: Some(cluster), admin_url })
    }

    /// Creates an empty database and returns its name and URL.
    pub(crate) async fn fresh_database(&self, tag: &str) -> anyhow::Result<(String, String)> {
        let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
        let name = format!("wbbench_{tag}_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
        conn.close().await?;
        let url = workbench_test_support::with_database(&self.admin_url, &name);
        Ok((name, url))
    }

    /// Drops a database made by [`Pg::fresh_database`].
    pub(crate) async fn drop_database(&self, name: &str) -> anyhow::Result<()> {
        let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(())
    }

    /// The server's version and the settings that bound commit rates.
    pub(crate) async fn describe(&self) -> anyhow::Result<String> {
        let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
        let mut parts = Vec::new();
        for setting in ["server_version", "shared_buffers", "fsync", "synchronous_commit"] {
            let v: String =
                sqlx::query_scalar(&format!("SHOW {setting}")).fetch_one(&mut conn).await?;
            parts.push(format!("{setting}={v}"));
        }
        conn.close().await?;
        Ok(parts.join(", "))
    }

    /// The postmaster's pid, when the cluster is ours.
    pub(crate) fn postmaster(&self) -> Option<u32> {
        crate::cpu::postmaster(self.cluster.as_ref()?.data_dir())
    }

    pub(crate) async fn stop(self) {
        if let Some(cluster) = self.cluster {
            if let Err(e) = cluster.stop().await {
                eprintln!("stopping PostgreSQL: {e}");
            }
        }
    }
}

/// Memory of a process, from `/proc/<pid>/status`, in MiB.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rss {
    pub(crate) current: f64,
    pub(crate) peak: f64,
}

/// A running `workbench serve` with an admin token for its default project.
pub(crate) struct Server {
    child: Child,
    data_dir: PathBuf,
    pid: u32,
    /// Where it listens; `base` is the same as a URL.
    pub(crate) addr: SocketAddr,
    pub(crate) base: String,
    pub(crate) project: String,
    pub(crate) token: String,
    pub(crate) client: reqwest::Client,
    /// A pool on the server's database, for seeding and checking.
    pub(crate) db: PgPool,
}

/// How to start a server.
pub(crate) struct ServerSpec<'a> {
    pub(crate) bin: &'a Path,
    pub(crate) database_url: String,
    pub(crate) work_dir: &'a Path,
    pub(crate) workers: usize,
}

impl Server {
    pub(crate) async fn start(spec: ServerSpec<'_>) -> anyhow::Result<Server> {
        let data_dir = spec.work_dir.join(format!("server-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data_dir)?;
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let log = std::fs::File::create(data_dir.join("server.log"))?;
        let child = Command::new(spec.bin)
            .arg("--database-url")
            .arg(&spec.database_url)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["serve", "--bind", &addr.to_string()])
            .args(["--workers", &spec.workers.to_string()])
            .env("WORKBENCH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", spec.bin.display()))?;
        let pid = child.id().context("server pid")?;
        let base = format!("http://{addr}");
        let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
        wait_ready(&client, &base, &data_dir).await?;

        let creds: Value =
            serde_json::from_str(&std::fs::read_to_string(data_dir.join("credentials.json"))?)?;
        let project = creds["project_id"].as_str().context("project_id")?.to_owned();
        let token = login(&client, &base, creds["password"].as_str().context("password")?).await?;
        let db = PgPoolOptions::new().max_connections(8).connect(&spec.database_url).await?;
        Ok(Server { child, data_dir, pid, addr, base, project, token, client, db })
    }

    pub(crate) fn rss(&self) -> anyhow::Result<Rss> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let field = |name: &str| -> anyhow::Result<f64> {
            let line = status.lines().find(|l| l.starts_with(name)).context("no such field")?;
            let kb: f64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse()?;
            Ok(kb / 1024.0)
        };
        Ok(Rss { current: field("VmRSS:")?, peak: field("VmHWM:")? })
    }

    /// User plus system CPU time the server has used so far, in clock ticks.
    pub(crate) fn cpu_ticks(&self) -> anyhow::Result<u64> {
        crate::cpu::ticks(self.pid).context("reading the server's /proc/<pid>/stat")
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// This database's commits, rows inserted and rows updated so far (`pg_stat_database`).
    pub(crate) async fn db_counters(&self) -> anyhow::Result<[i64; 3]> {
        let row: (i64, i64, i64) = sqlx::query_as(
            "SELECT xact_commit, tup_inserted, tup_updated FROM pg_stat_database \
             WHERE datname = current_database()",
        )
        .fetch_one(&self.db)
        .await?;
        Ok([row.0, row.1, row.2])
    }

    /// `path` with `{p}` replaced by the project id, on this server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, self.path(path))
    }

    /// `path` with `{p}` replaced by the project id.
    pub(crate) fn path(&self, path: &str) -> String {
        path.replace("{p}", &self.project)
    }

    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        let response =
            self.client.get(self.url(path)).header("X-Auth-Token", &self.token).send().await?;
        read(response).await
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let response = self
            .client
            .post(self.url(path))
            .header("X-Auth-Token", &self.token)
            .json(body)
            .send()
            .await?;
        read(response).await
    }

    /// Saves and enables a flow; returns its id and `apig_url`.
    pub(crate) async fn enabled_flow(&self, flow: &Value) -> anyhow::Result<(String, Value)> {
        let (status, created) = self.post("/v1/{p}/flows", flow).await?;
        if status != StatusCode::OK {
            bail!("saving flow: {status} {created}");
        }
        let id = created["flow_id"].as_str().context("flow_id")?.to_owned();
        let (status, body) = self.post(&format!("/v1/{{p}}/flows/{id}/enable"), &json!({})).await?;
        if status != StatusCode::OK {
            bail!("enabling flow: {status} {body}");
        }
        Ok((id, created["apig_url"].clone()))
    }

    /// Stops the server with SIGTERM and waits for it; `remove` deletes its data directory.
    pub(crate) async fn stop(mut self, remove: bool) -> anyhow::Result<()> {
        self.db.close().await;
        Command::new("kill").args(["-TERM", &self.pid.to_string()]).status().await?;
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => self.child.kill().await?,
        }
        if remove {
            std::fs::remove_dir_all(&self.data_dir)?;
        }
        Ok(())
    }
}

async fn read(response: reqwest::Response) -> anyhow::Result<(StatusCode, Value)> {
    let status = response.status();
    let text = response.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

async fn wait_ready(client: &reqwest::Client, base: &str, data_dir: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = client.get(format!("{base}/ready")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("server not ready after 60 s; see {}", data_dir.join("server.log").display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn login(client: &reqwest::Client, base: &str, password: &str) -> anyhow::Result<String> {
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": password, "domain": {"name": "workbench"}}}},
        "scope": {"project": {"name": "cn-north-4"}}}});
    let response = client.post(format!("{base}/v3/auth/tokens")).json(&body).send().await?;
    if response.status() != StatusCode::CREATED {
        bail!("token login answered {}", response.status());
    }
    Ok(response.headers()["x-subject-token"].to_str()?.to_owned())
}

/// `workbench` next to this executable (both are built into the same target directory).
pub(crate) fn default_server_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.with_file_name("workbench")
}
