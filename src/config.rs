//! Configuration: command-line flags, then environment variables, then an optional TOML file,
//! then defaults, resolved once into [`Settings`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(name = "workbench", version, about = "Self-hosted MSSI integration workbench")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands, since every command finds the same database.
#[derive(Debug, Args, Default, Clone)]
pub struct GlobalArgs {
    /// TOML configuration file.
    #[arg(long, global = true, env = "WORKBENCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// PostgreSQL URL; without it a private cluster is run under the data directory.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory for the private PostgreSQL cluster and the encryption key.
    #[arg(long, global = true, env = "WORKBENCH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, env = "WORKBENCH_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// OTLP/HTTP collector to export trace spans to (e.g. `http://127.0.0.1:4318`).
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (applies migrations first).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage access keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage users for token login.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage projects (tenants): every resource belongs to one.
    #[command(subcommand)]
    Projects(ProjectsCommand),
    /// Manage application-model (ABM) instances.
    #[command(subcommand)]
    Instances(InstancesCommand),
    /// Manage application-model (ABM) packages.
    #[command(subcommand)]
    Packages(PackagesCommand),
}

#[derive(Debug, Args, Default, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "WORKBENCH_BIND")]
    pub bind: Option<SocketAddr>,
    /// Run workers per process.
    #[arg(long, env = "WORKBENCH_WORKERS")]
    pub workers: Option<usize>,
    /// Seconds a run stays with a worker that stopped renewing its lease (a crashed process)
    /// before another worker resumes it.
    #[arg(long, env = "WORKBENCH_RUN_LEASE_SECS")]
    pub run_lease_secs: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an access key pair (AK/SK) for a project.
    Create {
        /// Project id; the default project when absent.
        #[arg(long)]
        project: Option<String>,
        /// Print one JSON object with `ak`, `sk` and `project_id`.
        #[arg(long)]
        json: bool,
    },
    /// Re-encrypt every stored secret (access keys, connections) under a new master key, read
    /// from WORKBENCH_NEW_MASTER_KEY (base64 of 32 bytes) or generated, and write it to the
    /// data directory's `master.key`. Stop every server of this database first.
    RotateEncryption,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user who can log in at POST /v3/auth/tokens.
    Create {
        #[arg(long)]
        name: String,
        /// The password; read from WORKBENCH_USER_PASSWORD when absent.
        #[arg(long, env = "WORKBENCH_USER_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        project: Option<String>,
        /// IAM actions to grant (repeatable, `mssi:flow:*` style); an admin when none.
        #[arg(long = "action")]
        actions: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// Create a project in the domain; prints its id.
    Create {
        /// Project name, unique in the domain (tokens can be scoped to it by name).
        #[arg(long)]
        name: String,
        /// Print one JSON object with `project_id` and `name`.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum InstancesCommand {
    /// Create an ABM instance in a project.
    Create {
        /// Project id; the default project when absent.
        #[arg(long)]
        project: Option<String>,
        /// Instance id, 1-64 characters.
        #[arg(long)]
        instance: String,
        /// Packages the instance holds, in order (repeatable); `Metamodel3` when none.
        #[arg(long = "package")]
        packages: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PackagesCommand {
    /// Register a package definition (JSON or YAML), replacing one with the same id.
    Load {
        /// The package file.
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The file form: every field optional, overridden by flags and environment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<SocketAddr>,
    database_url: Option<String>,
    data_dir: Option<PathBuf>,
    log_format: Option<LogFormat>,
    workers: Option<usize>,
    run_lease_secs: Option<u64>,
    clock_skew_secs: Option<u64>,
    body_limit_bytes: Option<usize>,
    history_retention_days: Option<u32>,
}

/// Resolved settings of one process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub otlp_endpoint: Option<String>,
    pub workers: usize,
    pub run_lease: Duration,
    pub clock_skew: Duration,
    pub body_limit: usize,
    /// Runs older than this many days are pruned; 0 keeps everything.
    pub history_retention_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: None,
            data_dir: PathBuf::from(".workbench"),
            log_format: LogFormat::Text,
            otlp_endpoint: None,
            workers: 16,
            run_lease: Duration::from_secs(30),
            clock_skew: Duration::from_secs(15 * 60),
            body_limit: 12 * 1024 * 1024,
            history_retention_days: 0,
        }
    }
}

impl Settings {
    pub fn resolve(global: &GlobalArgs, serve: Option<&ServeArgs>) -> anyhow::Result<Settings> {
        let file = match &global.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let d = Settings::default();
        let serve = serve.cloned().unwrap_or_default();
        Ok(Settings {
            bind: serve.bind.or(file.bind).unwrap_or(d.bind),
            database_url: global.database_url.clone().or(file.database_url),
            data_dir: global.data_dir.clone().or(file.data_dir).unwrap_or(d.data_dir),
            log_format: global.log_format.or(file.log_format).unwrap_or(d.log_format),
            otlp_endpoint: global.otlp_endpoint.clone().filter(|e| !e.is_empty()),
            workers: serve.workers.or(file.workers).unwrap_or(d.workers),
            run_lease: serve
                .run_lease_secs
                .or(file.run_lease_secs)
                .map(|s| Duration::from_secs(s.max(1)))
                .unwrap_or(d.run_lease),
            clock_skew: file.clock_skew_secs.map(Duration::from_secs).unwrap_or(d.clock_skew),
            body_limit: file.body_limit_bytes.unwrap_or(d.body_limit),
            history_retention_days: file.history_retention_days.unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("wb-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("workbench.toml");
        std::fs::write(&file, "bind = \"127.0.0.1:9000\"\nworkers = 2\nbody_limit_bytes = 10\n")
            .unwrap();
        let global = GlobalArgs { config: Some(file), ..Default::default() };
        let serve = ServeArgs { workers: Some(7), ..Default::default() };
        let s = Settings::resolve(&global, Some(&serve)).unwrap();
        assert_eq!(s.bind.port(), 9000);
        assert_eq!(s.workers, 7);
        assert_eq!(s.body_limit, 10);
        assert_eq!(s.data_dir, PathBuf::from(".workbench"));
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("wb-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("workbench.toml");
        std::fs::write(&file, "bnid = \"127.0.0.1:9000\"\n").unwrap();
        let global = GlobalArgs { config: Some(file), ..Default::default() };
        assert!(Settings::resolve(&global, None).is_err());
    }
}
