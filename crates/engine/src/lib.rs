//! Flow definitions, the step-graph executor and the durable run queue.
//!
//! [`FlowGraph::parse`] validates a FlowMeta `steps` array once; [`Engine::run`] executes it in
//! memory, calling connectors from a [`connector_api::Registry`] and handing step records to a
//! [`Journal`] around external steps. `docs/flows.md` describes the step model and expressions.

pub mod completion;
mod condition;
pub mod connections;
pub mod connectors;
mod control;
pub mod custom;
mod executor;
mod expr;
mod flow_meta;
pub mod flows;
pub mod graphs;
pub mod history;
mod journal;
mod model;
mod policy;
pub mod queue;
mod run_json;
pub mod runs;
pub mod schedule_store;
pub mod schedules;
mod scope;
pub mod storable;
pub mod store;
pub mod templates;
mod validate;

pub use connectors::builtin_registry;
pub use executor::{
    ConnectionResolver, Engine, Limits, NoConnections, RunMode, RunOutcome, RunRequest, RunStatus,
};
pub use journal::{Journal, JournalError, NullJournal, StepRecord, StepStatus};
pub use model::{FlowGraph, CONTROL_CONNECTOR};
pub use validate::{ValidationError, ValidationKind};
