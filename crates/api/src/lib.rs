//! The MSSI-compatible REST surface of Workbench.
//!
//! Thin by design: each handler extracts its input, checks the caller's action, calls into
//! the engine, metamodel or scheduler crate, and renders the result. Authentication, request
//! ids, limits, metrics and the error envelope are the concerns of this crate alone.

pub mod auth;
pub mod error;
pub mod extract;
pub mod hook_input;
pub mod request_id;
pub mod routes;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod tenancy;

use std::sync::Arc;
use std::time::Duration;

use connector_api::Registry;
use sqlx::PgPool;
use workbench_engine::completion::Completions;
use workbench_engine::runs::Submitter;

use crate::auth::token::TokenKeys;
use crate::auth::KeyCache;
use crate::secrets::Sealer;

pub use routes::app;

/// Settings of the HTTP surface, resolved by the binary from flags, environment and file.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest accepted `X-Sdk-Date` distance from the server clock.
    pub clock_skew: Duration,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Lifetime of tokens issued by `POST /v3/auth/tokens`.
    pub token_ttl: Duration,
    /// How the run detail writes `start_time`/`end_time`.
    pub detail_time_format: DetailTimeFormat,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            clock_skew: Duration::from_secs(15 * 60),
            body_limit: 12 * 1024 * 1024,
            token_ttl: Duration::from_secs(24 * 3600),
            detail_time_format: DetailTimeFormat::EpochMsString,
        }
    }
}

/// The run detail's time format; the MSSI reference shows all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DetailTimeFormat {
    #[default]
    EpochMsString,
    EpochMsNumber,
    Iso,
}

/// Everything a handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<ApiConfig>,
    pub sealer: Arc<Sealer>,
    pub tokens: Arc<TokenKeys>,
    pub keys: Arc<KeyCache>,
    /// The connectors flows may use, for validation at save time.
    pub registry: Arc<Registry>,
    /// Accepts runs, batching concurrent submissions into shared commits.
    pub runs: Submitter,
    /// Callers of HTTP-triggered flows waiting for their run; the run workers of the process
    /// must be given the same one.
    pub completions: Arc<Completions>,
}

impl AppState {
    pub fn new(
        db: PgPool,
        config: ApiConfig,
        sealer: Arc<Sealer>,
        registry: Arc<Registry>,
    ) -> Self {
        let tokens = TokenKeys::new(&sealer.derive("workbench token signing v1"));
        let runs = Submitter::start(db.clone());
        AppState {
            db,
            config: Arc::new(config),
            sealer,
            tokens: Arc::new(tokens),
            keys: Arc::default(),
            runs,
            registry,
            completions: Arc::default(),
        }
    }
}
