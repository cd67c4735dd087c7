//! The contract between the Workbench engine and a connector.
//!
//! A connector is a named, versioned bundle of triggers and actions. The engine knows nothing
//! about any particular connector: it looks the connector up in a [`Registry`] by the step's
//! `call.connectorRef`, hands it an [`Invocation`] with the step's evaluated input, and records
//! whatever JSON value comes back. Built-in connectors are written against this crate alone, the
//! same way an outside crate would be.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use async_trait::async_trait;

/// What a connector offers, as listed by the connector catalog and checked at flow save time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Descriptor {
    /// Stable id, used as `call.connectorRef` in steps (e.g. `HTTP`).
    pub id: String,
    pub version: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub triggers: Vec<Operation>,
    pub actions: Vec<Operation>,
}

impl Descriptor {
    pub fn action(&self, id: &str) -> Option<&Operation> {
        self.actions.iter().find(|op| op.id == id)
    }

    pub fn trigger(&self, id: &str) -> Option<&Operation> {
        self.triggers.iter().find(|op| op.id == id)
    }
}

/// One trigger or action of a connector.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Operation {
    /// Stable id, used as `refId` of the step's `triggerRef` or `actionRef`.
    pub id: String,
    pub name: String,
    pub description: String,
    /// JSON Schema of the evaluated input.
    pub input_schema: Value,
    /// JSON Schema of the output.
    pub output_schema: Value,
    /// True when the operation talks to the world outside the run (network, time). The engine
    /// makes everything before such a step durable first, and the step itself right after, so
    /// a crash never repeats it once it has finished.
    pub external: bool,
}

/// Credentials resolved from a stored connection, handed to the connector in plain text.
#[derive(Clone, Default)]
pub struct Connection {
    pub id: String,
    pub auth_type: String,
    /// Secret and non-secret auth fields (`api_key`, `username`, `token`, ...).
    pub auth_info: BTreeMap<String, String>,
    /// Non-secret settings such as `host_config`.
    pub settings: Value,
}

impl fmt::Debug for Connection {
    // Never print credential values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("auth_type", &self.auth_type)
            .field("auth_info", &self.auth_info.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// One attempt at running one operation of a connector.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The trigger or action id (`refId`).
    pub operation: String,
    /// The step input after every reference in it was resolved.
    pub input: Value,
    /// The step's static configuration (`config`), `Value::Null` when absent.
    pub config: Value,
    /// Stable across retries of the same attempt number and across a resume after a crash:
    /// `<running_id>/<stepId>/<iteration>/<attempt>`. A connector can pass it to the remote
    /// side so that a repeated call is harmless.
    pub idempotency_key: String,
    pub connection: Option<Connection>,
    /// Time left for this attempt; the engine also enforces it from the outside.
    pub timeout: Duration,
}

/// Why an invocation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectorError {
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("unknown operation `{0}`")]
    UnknownOperation(String),
    /// The call failed; `retryable` says whether the engine's retry policy may try again.
    #[error("{message}")]
    Failed { message: String, retryable: bool },
}

impl ConnectorError {
    pub fn failed(message: impl Into<String>) -> Self {
        ConnectorError::Failed { message: message.into(), retryable: true }
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        ConnectorError::Failed { message: message.into(), retryable: false }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, ConnectorError::Failed { retryable: true, .. })
    }
}

/// A connector: a descriptor plus the code that runs its operations.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    fn descriptor(&self) -> &Descriptor;

    /// Checks a step's static `config` for `operation` when a flow is saved, so a setting that
    /// can never work is refused then rather than at run time. The message says what is wrong
    /// (the engine adds the step id). The default accepts every config.
    fn check_config(&self, operation: &str, config: &Value) -> Result<(), String> {
        let _ = (operation, config);
        Ok(())
    }

    async fn invoke(&self, call: Invocation) -> Result<Value, ConnectorError>;
}

/// The connectors a process knows, by id.
#[derive(Clone, Default)]
pub struct Registry {
    connectors: HashMap<String, Arc<dyn Connector>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a connector, replacing one with the same id.
    pub fn register(&mut self, connector: Arc<dyn Connector>) {
        let id = connector.descriptor().id.clone();
        self.connectors.insert(id, connector);
    }

    pub fn get(&self, id: &str) -> Option<&Arc<dyn Connector>> {
        self.connectors.get(id)
    }

    /// Every descriptor, sorted by id so listings are stable.
    pub fn descriptors(&self) -> Vec<&Descriptor> {
        let mut all: Vec<_> = self.connectors.values().map(|c| c.descriptor()).collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<_> = self.connectors.keys().collect();
        ids.sort();
        f.debug_struct("Registry").field("connectors", &ids).finish()
    }
}
