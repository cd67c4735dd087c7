//! Starting and stopping a server: database, bootstrap, HTTP listener, background workers
//! (the run workers and the scheduler loop).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use workbench_api::secrets::Sealer;
use workbench_api::{tenancy, ApiConfig, AppState};
use workbench_engine::completion;
use workbench_engine::connections::DbConnections;
use workbench_engine::graphs::FlowGraphs;
use workbench_engine::queue::{self, WorkerConfig, Workers};
use workbench_engine::runs::InPlace;
use workbench_engine::{Engine, Limits};
use workbench_scheduler::SchedulerConfig;

use crate::database::{self, Database};
use crate::Settings;

/// A server that is accepting requests.
pub struct Running {
    pub addr: SocketAddr,
    pub pool: sqlx::PgPool,
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, stops the workers and the database.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.task.await.context("server task")?
    }

    /// Resolves when the server stopped on its own (a fatal error).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task")?
    }

    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

/// Opens the database, bootstraps the first start, binds and starts serving.
pub async fn start(settings: Settings) -> anyhow::Result<Running> {
    let max_connections = (settings.workers as u32 + 8).max(10);
    let db = Database::open(&settings, max_connections).await?;
    let server_lock = database::hold_server_lock(&db.pool).await?;
    let sealer = Arc::new(Sealer::new(database::load_master_key(&settings.data_dir)?));
    database::check_master_key(&db.pool, &sealer).await?;
    if let Some(first) = tenancy::bootstrap(&db.pool, &sealer).await? {
        let text = serde_json::to_string_pretty(&first)?;
        let path = database::write_credentials(&settings.data_dir, &text)?;
        tracing::info!(
            credentials = %path.display(),
            project_id = %first.project_id,
            access_key = %first.key.ak,
            "first start: created the default project, the admin user and an access key"
        );
        eprintln!(
            "First start: admin credentials and an access key were written to {}",
            path.display()
        );
    }

    let config = ApiConfig {
        clock_skew: settings.clock_skew,
        body_limit: settings.body_limit,
        ..ApiConfig::default()
    };
    let mut registry = workbench_engine::builtin_registry();
    workbench_scheduler::register(&mut registry);
    let registry = Arc::new(registry);
    let connections = Arc::new(DbConnections::new(db.pool.clone(), sealer.clone()));
    let engine = Arc::new(Engine::new(registry.clone(), connections, Limits::default()));
    let graphs = Arc::new(FlowGraphs::default());
    let worker_config = WorkerConfig {
        concurrency: settings.workers,
        lease: settings.run_lease,
        poll: settings.run_lease.min(WorkerConfig::default().poll),
        ..WorkerConfig::default()
    };
    let run_workers = Workers::new(worker_config);
    let mut state = AppState::new(db.pool.clone(), config, sealer, registry);
    state.runs =
        state.runs.executing(engine.clone(), graphs.clone()).handing_to(run_workers.local());
    let app = workbench_api::app(state.clone());

    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .with_context(|| format!("binding {}", settings.bind))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let completions = state.completions.clone();
    let run_ends = completion::listen(db.pool.clone(), completions.clone(), stopped.clone());
    let in_place = InPlace::new(engine.clone(), graphs.clone());
    let workers =
        queue::start(db.pool.clone(), engine, graphs, completions, run_workers, stopped.clone());
    if settings.history_retention_days > 0 {
        let retention = Duration::from_secs(u64::from(settings.history_retention_days) * 86_400);
        tokio::spawn(queue::prune_history(db.pool.clone(), retention, stopped.clone()));
    }
    let scheduler = workbench_scheduler::start(
        db.pool.clone(),
        SchedulerConfig::default(),
        Some(in_place),
        stopped.clone(),
    );
    let pool = db.pool.clone();
    let task = tokio::spawn(async move {
        let mut stopped = stopped;
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        // FIXME: requests hyper refuses before routing (a header with control characters, a
        // request line over its URI limit) get its bare 400/414 without the MSSI envelope or
        // an X-Request-Id. Serving through hyper-util's connection builder with an error hook,
        // instead of `axum::serve`, would let us answer those in the envelope too.
        let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        if let Err(e) = workers.await {
            tracing::warn!(error = %e, "run workers ended abnormally");
        }
        let _ = run_ends.await;
        if let Err(e) = scheduler.await {
            tracing::warn!(error = %e, "scheduler ended abnormally");
        }
        if let Err(e) = sqlx::Connection::close(server_lock).await {
            tracing::warn!(error = %e, "closing the server lock session failed");
        }
        db.close().await;
        served.context("serving HTTP")
    });
    tracing::info!(%addr, "listening");
    Ok(Running { addr, pool, stop, task })
}
