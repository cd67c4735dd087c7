//! The parsed form of a flow's `steps` array: steps resolved to connectors, their inputs
//! compiled, and the graph split into blocks (contract §5.3).
//!
//! A *block* is the set of steps one entry point reaches through `transmit` edges: the trigger's
//! block, and one block per branch of each control step. Every step belongs to exactly one block,
//! and every `transmit` edge stays inside its block.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use connector_api::{Connector, Registry};
use serde_json::Value;

use crate::condition::Condition;
use crate::expr::Template;
use crate::policy::RetryPolicy;
use crate::validate::{self, ValidationError};

/// The connector id of control steps.
pub const CONTROL_CONNECTOR: &str = "Control";

/// A validated, executable flow graph.
#[derive(Debug)]
pub struct FlowGraph {
    pub(crate) steps: Vec<Step>,
    pub(crate) by_id: HashMap<String, usize>,
    pub(crate) blocks: Vec<Block>,
    pub(crate) trigger: usize,
}

impl FlowGraph {
    /// Parses and validates a FlowMeta `steps` array against the connectors in `registry`.
    /// Every problem found is returned, not just the first.
    pub fn parse(steps: &Value, registry: &Registry) -> Result<Self, Vec<ValidationError>> {
        validate::build(steps, registry)
    }

    /// The id of the trigger step.
    pub fn trigger_id(&self) -> &str {
        &self.steps[self.trigger].id
    }

    /// The trigger's connector id (e.g. `ManualTrigger`).
    pub fn trigger_connector(&self) -> &str {
        &self.steps[self.trigger].connector_id
    }

    /// The trigger's `triggerRef.type`, when set.
    pub fn trigger_type(&self) -> Option<&str> {
        self.steps[self.trigger].trigger_type.as_deref()
    }

    /// The trigger's `config` without the engine's own keys (`Null` when absent).
    pub fn trigger_config(&self) -> &Value {
        &self.steps[self.trigger].config
    }

    /// Every step id, in the order of the `steps` array.
    pub fn step_ids(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().map(|s| s.id.as_str())
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether no step talks to the world outside the run: such a run has no side effects
    /// until its records are stored, so it may be executed before it is accepted and simply
    /// executed again if that is cut short.
    pub fn is_self_contained(&self) -> bool {
        self.steps.iter().all(|s| !s.external)
    }

    /// Whether a step with this id exists.
    pub fn has_step(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }
}

/// One step, ready to run.
pub(crate) struct Step {
    pub(crate) id: String,
    pub(crate) connector_id: String,
    pub(crate) operation: String,
    pub(crate) connector: Arc<dyn Connector>,
    pub(crate) external: bool,
    pub(crate) trigger_type: Option<String>,
    pub(crate) connection_id: Option<String>,
    pub(crate) input: Template,
    /// `config` without the engine's own keys (`timeout_ms`, `retry`), `Null` when absent.
    pub(crate) config: Value,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retry: RetryPolicy,
    /// Parsed `mockOutput`, used in test runs.
    pub(crate) mock: Option<Value>,
    /// `transmit`, resolved to step indexes.
    pub(crate) transmit: Vec<usize>,
    pub(crate) control: Option<Control>,
    /// The block the step belongs to.
    pub(crate) block: usize,
    /// How many steps of the same block name this one in `transmit`.
    pub(crate) preds_in_block: u32,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("id", &self.id)
            .field("connector", &self.connector_id)
            .field("operation", &self.operation)
            .field("transmit", &self.transmit)
            .field("block", &self.block)
            .finish_non_exhaustive()
    }
}

/// A control step: what it does and which block each of its branches is.
#[derive(Debug)]
pub(crate) struct Control {
    pub(crate) op: ControlOp,
    /// Branch name and block index, in the order of `config.branches`.
    pub(crate) branches: Vec<(String, usize)>,
}

impl Control {
    pub(crate) fn branch(&self, name: &str) -> Option<usize> {
        self.branches.iter().find(|(n, _)| n == name).map(|(_, b)| *b)
    }
}

/// The control actions, by operation id.
#[derive(Debug)]
pub(crate) enum ControlOp {
    Condition(Condition),
    Switch,
    Parallel,
    Foreach { concurrency: usize },
    While { condition: Condition, max_iterations: Option<u32> },
    Break,
    Continue,
    Terminate,
    Scope,
    Shard { size: Option<usize> },
}

impl ControlOp {
    pub(crate) fn is_loop(&self) -> bool {
        matches!(self, ControlOp::Foreach { .. } | ControlOp::While { .. })
    }
}

/// A set of steps reached from the same entry points.
#[derive(Debug)]
pub(crate) struct Block {
    /// The control step whose branch this is; `None` for the trigger's block.
    pub(crate) owner: Option<usize>,
    pub(crate) branch: String,
    pub(crate) members: Vec<usize>,
    /// Members without a predecessor in the block; they start when the block starts.
    pub(crate) roots: Vec<usize>,
    /// Members without a successor; their outputs are the block's result.
    pub(crate) sinks: Vec<usize>,
}
