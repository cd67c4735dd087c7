//! Starts a private PostgreSQL cluster from the binaries installed on the machine.
//!
//! Used by `workbench serve` when no `DATABASE_URL` is given and by the test harness. The
//! cluster lives in a directory of its own, listens on a Unix socket only (no TCP port to
//! collide with or expose), and is created on first use and reused afterwards.
//!
//! PostgreSQL refuses to run as root. When this process is root, the cluster is created and run
//! as the unprivileged `postgres` user (or `nobody`), and, when that user cannot reach the
//! requested directory, the cluster is placed under `/var/tmp` instead, keyed by the directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Why the cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no PostgreSQL server binaries found (looked for `initdb`, `pg_ctl` and `postgres` on \
         PATH and under /usr/lib/postgresql/*/bin): install PostgreSQL 13 or newer \
         (Debian: `apt-get install postgresql`), or set DATABASE_URL to an existing server"
    )]
    BinariesNotFound,
    #[error("{what} failed: {detail}")]
    Command { what: &'static str, detail: String },
    #[error("i/o error at {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source }
}

/// A running private cluster. Call [`Cluster::stop`] to shut it down; dropping it leaves the
/// server running (tests share one cluster for the life of the process).
#[derive(Debug, Clone)]
pub struct Cluster {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    run_as: Option<(u32, u32)>,
}

/// The PostgreSQL role created by `initdb` and used by every connection.
pub const SUPERUSER: &str = "workbench";

impl Cluster {
    /// Creates the cluster under `dir` if it does not exist yet, then starts it unless it is
    /// already running.
    pub async fn start(dir: &Path) -> Result<Cluster, Error> {
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || Self::start_blocking(&dir))
            .await
            .map_err(|e| Error::Command { what: "starting PostgreSQL", detail: e.to_string() })?
    }

    fn start_blocking(dir: &Path) -> Result<Cluster, Error> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let cluster = Self::layout(dir)?;
        let base = cluster.data_dir.parent().expect("data dir has a parent").to_owned();
        for d in [&base, &cluster.socket_dir] {
            fs::create_dir_all(d).map_err(io_err(d))?;
            if let Some((uid, gid)) = cluster.run_as {
                std::os::unix::fs::chown(d, Some(uid), Some(gid)).map_err(io_err(d))?;
            }
        }
        if !cluster.data_dir.join("PG_VERSION").exists() {
            cluster.init()?;
        }
        if !cluster.is_running() {
            cluster.launch()?;
        }
        Ok(cluster)
    }

    /// Where the cluster for `dir` lives and how it runs, without touching anything.
    fn layout(dir: &Path) -> Result<Cluster, Error> {
        let bin_dir = find_bin_dir().ok_or(Error::BinariesNotFound)?;
        let dir = dir.canonicalize().map_err(io_err(dir))?;
        let run_as = unprivileged_user();
        let base = match run_as {
            Some((uid, _)) if !reachable_by(&dir, uid) => fallback_base(&dir),
            _ => dir,
        };
        let socket_dir = socket_dir_for(&base);
        Ok(Cluster { bin_dir, data_dir: base.join("pgdata"), socket_dir, run_as })
    }

    /// Whether a cluster under `dir` is already running (started by another process).
    pub fn is_running_at(dir: &Path) -> bool {
        Self::layout(dir).is_ok_and(|c| c.data_dir.join("PG_VERSION").exists() && c.is_running())
    }

    /// A connection URL for `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@localhost/{database}?host={}", self.socket_dir.display())
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the server with a fast shutdown (open sessions are ended, data is flushed).
    pub async fn stop(&self) -> Result<(), Error> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            this.run("pg_ctl stop", this.pg_ctl().args(["stop", "-m", "fast", "-w"]))
        })
        .await
        .map_err(|e| Error::Command { what: "stopping PostgreSQL", detail: e.to_string() })?
    }

    fn init(&self) -> Result<(), Error> {
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(&self.data_dir).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        self.run("initdb", &mut cmd)
    }

    fn launch(&self) -> Result<(), Error> {
        // A stale pid file from a killed server would make pg_ctl refuse to start.
        let opts = format!(
            "-c listen_addresses='' -k {} -c max_connections=200 -c shared_buffers=128MB \
             -c fsync=on -c synchronous_commit=on",
            self.socket_dir.display()
        );
        let log = self.data_dir.join("server.log");
        let mut cmd = self.pg_ctl();
        cmd.args(["start", "-w", "-t", "60", "-o", &opts, "-l"]).arg(&log);
        self.run("pg_ctl start", &mut cmd)
    }

    fn is_running(&self) -> bool {
        let mut cmd = self.pg_ctl();
        cmd.arg("status").stdout(Stdio::null()).stderr(Stdio::null());
        cmd.status().map(|s| s.success()).unwrap_or(false)
    }

    fn pg_ctl(&self) -> Command {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D").arg(&self.data_dir);
        cmd
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        cmd.stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
            // The unprivileged user may not be able to read the current directory.
            cmd.current_dir("/");
        }
        cmd
    }

    fn run(&self, what: &'static str, cmd: &mut Command) -> Result<(), Error> {
        let out = cmd.output().map_err(|e| Error::Command { what, detail: e.to_string() })?;
        if out.status.success() {
            return Ok(());
        }
        let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if detail.is_empty() {
            detail = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        }
        let log = self.data_dir.join("server.log");
        if let Ok(text) = fs::read_to_string(&log) {
            let tail: Vec<_> = text.lines().rev().take(5).collect();
            detail.push_str(&format!("\n{} says:\n", log.display()));
            for line in tail.into_iter().rev() {
                detail.push_str(line);
                detail.push('\n');
            }
        }
        Err(Error::Command { what, detail })
    }
}

/// Waits until `check` succeeds, up to `timeout`.
pub async fn wait_for<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn find_bin_dir() -> Option<PathBuf> {
    let has_all = |d: &Path| ["initdb", "pg_ctl", "postgres"].iter().all(|b| d.join(b).is_file());
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if has_all(&d) {
                // Follow symlinks so that `postgres` finds its share directory.
                let real = d.join("initdb").canonicalize().ok()?;
                return real.parent().map(Path::to_owned);
            }
        }
    }
    let mut versions: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| has_all(d))
        .collect();
    versions.sort();
    versions.pop()
}

/// The user to run PostgreSQL as when this process is root.
fn unprivileged_user() -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let user = ["postgres", "nobody"]
        .iter()
        .find_map(|name| nix::unistd::User::from_name(name).ok().flatten());
    Some(user.map_or((65534, 65534), |u| (u.uid.as_raw(), u.gid.as_raw())))
}

/// Whether every ancestor of `dir` lets `uid` through (others' execute bit, or ownership).
fn reachable_by(dir: &Path, uid: u32) -> bool {
    dir.ancestors().all(|d| match fs::metadata(d) {
        Ok(m) => {
            let mode = m.permissions().mode();
            std::os::unix::fs::MetadataExt::uid(&m) == uid || mode & 0o001 != 0
        }
        Err(_) => false,
    })
}

fn fallback_base(dir: &Path) -> PathBuf {
    PathBuf::from("/var/tmp").join(format!("workbench-pg-{:016x}", fnv1a(dir)))
}

/// Unix socket paths are limited to about 107 bytes, so long directories get a short one.
fn socket_dir_for(base: &Path) -> PathBuf {
    let inside = base.join("sock");
    if inside.as_os_str().len() < 80 {
        inside
    } else {
        PathBuf::from("/tmp").join(format!("wb-pg-{:016x}", fnv1a(base)))
    }
}

fn fnv1a(path: &Path) -> u64 {
    path.as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf29ce484222325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_directories_get_a_short_socket_path() {
        let long = PathBuf::from("/x".repeat(60));
        let sock = socket_dir_for(&long);
        assert!(sock.as_os_str().len() < 40, "{}", sock.display());
        assert_eq!(socket_dir_for(Path::new("/srv/wb")), PathBuf::from("/srv/wb/sock"));
    }
}
