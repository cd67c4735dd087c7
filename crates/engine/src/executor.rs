//! The in-memory executor: runs a [`FlowGraph`] block by block, fans out concurrently inside one
//! task, and hands step records to a [`Journal`] only around external steps.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use connector_api::{Connection, ConnectorError, Invocation, Registry};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{json, Value};
use tracing::Instrument;
use uuid::Uuid;

use crate::connectors::RESPONSE_CONNECTOR;
use crate::expr::Scope;
use crate::journal::{Journal, StepRecord, StepStatus};
use crate::model::{FlowGraph, Step};
use crate::scope::Frame;

/// Engine-wide limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A step output whose JSON text is longer fails the step.
    pub max_output_bytes: usize,
    /// Per-attempt timeout of a step without `config.timeout_ms`.
    pub default_step_timeout: Duration,
    /// The whole run fails once it has taken this long.
    pub run_timeout: Duration,
    /// Iteration cap of a `while` step without `config.max_iterations`.
    pub max_while_iterations: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_output_bytes: 4 * 1024 * 1024,
            default_step_timeout: Duration::from_secs(60),
            run_timeout: Duration::from_secs(3600),
            max_while_iterations: 5000,
        }
    }
}

/// Turns a step's `authentication.connectionId` into credentials.
#[async_trait]
pub trait ConnectionResolver: Send + Sync {
    async fn resolve(&self, project_id: &str, connection_id: &str) -> Result<Connection, String>;
}

/// A resolver for deployments (and tests) without stored connections: every lookup fails.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoConnections;

#[async_trait]
impl ConnectionResolver for NoConnections {
    async fn resolve(&self, _project_id: &str, connection_id: &str) -> Result<Connection, String> {
        Err(format!("connection `{connection_id}` is not configured"))
    }
}

/// How a run was started (`run_model` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    Manual,
    Auto,
    /// An editor test run: steps with a `mockOutput` return it instead of running.
    Test,
}

impl RunMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Manual => "manual",
            RunMode::Auto => "auto",
            RunMode::Test => "test",
        }
    }
}

/// The final status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Success,
    Fail,
}

/// Everything needed to execute (or resume) one run.
#[derive(Debug)]
pub struct RunRequest {
    pub run_id: Uuid,
    pub flow_id: Uuid,
    pub project_id: String,
    pub flow: Arc<FlowGraph>,
    /// The trigger's input (for a manual run, the submitted body).
    pub input: Value,
    pub mode: RunMode,
    /// Durable records from an earlier claim, by step key: their outputs are replayed and the
    /// steps are never executed again.
    pub completed: HashMap<String, StepRecord>,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub status: RunStatus,
    /// The first error text, naming the failed step.
    pub message: Option<String>,
    /// Records not yet checkpointed; the caller commits them together with the final status.
    pub pending: Vec<StepRecord>,
    /// The output of the first `Response` step that succeeded: what an HTTP caller gets.
    pub response: Option<Value>,
}

/// Runs flows. Cheap to share: clone the `Arc`s it holds.
pub struct Engine {
    registry: Arc<Registry>,
    connections: Arc<dyn ConnectionResolver>,
    limits: Limits,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("registry", &self.registry)
            .field("limits", &self.limits)
            .finish()
    }
}

/// A failed step, as it travels up to the run.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) step_id: String,
    pub(crate) message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "step `{}` failed: {}", self.step_id, self.message)
    }
}

/// Why a block stopped before its end.
#[derive(Debug)]
pub(crate) enum Interrupt {
    Fail(Failure),
    Break,
    Continue,
    Terminate { success: bool, message: Option<String> },
}

impl Interrupt {
    pub(crate) fn fail(step: &Step, message: impl Into<String>) -> Self {
        Interrupt::Fail(Failure { step_id: step.id.clone(), message: message.into() })
    }
}

impl Engine {
    pub fn new(
        registry: Arc<Registry>,
        connections: Arc<dyn ConnectionResolver>,
        limits: Limits,
    ) -> Self {
        Self { registry, connections, limits }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Executes the run to its end. Never panics on flow errors: every failure becomes a
    /// `Fail` outcome whose message names the step.
    pub async fn run(&self, req: RunRequest, journal: &dyn Journal) -> RunOutcome {
        let span = tracing::info_span!("run", run_id = %req.run_id, flow_id = %req.flow_id);
        let run = Run {
            engine: self,
            graph: &req.flow,
            req: &req,
            journal,
            buffer: Mutex::new(Vec::new()),
            seq: AtomicI32::new(req.completed.values().map(|r| r.seq).max().unwrap_or(0)),
            info: json!({"id": req.run_id, "flow_id": req.flow_id, "mode": req.mode.as_str()}),
            response: Mutex::new(None),
        };
        let root = Frame::root();
        let main = run.graph.steps[run.graph.trigger].block;
        let body = run.block(&root, main).instrument(span.clone());
        let result = match tokio::time::timeout(self.limits.run_timeout, body).await {
            Ok(result) => result,
            Err(_) => Err(Interrupt::Fail(Failure {
                step_id: String::from("(run)"),
                message: format!("run timed out after {} s", self.limits.run_timeout.as_secs()),
            })),
        };
        let (status, message) = match result {
            Ok(()) | Err(Interrupt::Break | Interrupt::Continue) => (RunStatus::Success, None),
            Err(Interrupt::Fail(failure)) => (RunStatus::Fail, Some(failure.to_string())),
            Err(Interrupt::Terminate { success: true, message }) => (RunStatus::Success, message),
            Err(Interrupt::Terminate { success: false, message }) => {
                let message = message.or_else(|| Some("terminated".to_string()));
                (RunStatus::Fail, message)
            }
        };
        span.in_scope(|| tracing::info!(status = ?status, "run finished"));
        let pending = run.buffer.into_inner().unwrap_or_else(PoisonError::into_inner);
        let response = run.response.into_inner().unwrap_or_else(PoisonError::into_inner);
        RunOutcome { status, message, pending, response }
    }
}

/// The state of one run while it executes.
pub(crate) struct Run<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) graph: &'a FlowGraph,
    pub(crate) req: &'a RunRequest,
    journal: &'a dyn Journal,
    buffer: Mutex<Vec<StepRecord>>,
    seq: AtomicI32,
    info: Value,
    response: Mutex<Option<Value>>,
}

/// What a finished step instance contributes to its record.
pub(crate) struct Finished {
    pub(crate) key: String,
    pub(crate) attempt: i32,
    pub(crate) input: Value,
    pub(crate) started_at: chrono::DateTime<Utc>,
    pub(crate) clock: Instant,
}

pub(crate) fn step_key(id: &str, path: &str) -> String {
    if path.is_empty() {
        id.to_string()
    } else {
        format!("{id}#{path}")
    }
}

impl<'a> Run<'a> {
    pub(crate) fn scope<'s>(&'s self, frame: &'s Frame) -> Scope<'s> {
        Scope { graph: self.graph, frame, run: &self.info }
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.engine.limits
    }

    /// Runs every step of block `b` in `frame`, starting each step once all of its
    /// predecessors in the block have finished.
    pub(crate) fn block<'s>(
        &'s self,
        frame: &'s Arc<Frame>,
        b: usize,
    ) -> BoxFuture<'s, Result<(), Interrupt>> {
        Box::pin(async move {
            let block = &self.graph.blocks[b];
            let mut left: Vec<u32> =
                block.members.iter().map(|&s| self.graph.steps[s].preds_in_block).collect();
            let mut running = FuturesUnordered::new();
            for &root in &block.roots {
                running.push(self.step(frame, root));
            }
            while let Some((s, result)) = running.next().await {
                result?;
                for &next in &self.graph.steps[s].transmit {
                    let Ok(pos) = block.members.binary_search(&next) else { continue };
                    left[pos] -= 1;
                    if left[pos] == 0 {
                        running.push(self.step(frame, next));
                    }
                }
            }
            Ok(())
        })
    }

    fn step<'s>(
        &'s self,
        frame: &'s Arc<Frame>,
        s: usize,
    ) -> BoxFuture<'s, (usize, Result<(), Interrupt>)> {
        Box::pin(async move {
            let result = match &self.graph.steps[s].control {
                Some(control) => self.control(frame, s, control).await,
                None => self.action(frame, s).await,
            };
            (s, result)
        })
    }

    /// Replays a durable record of this step instance, if there is one.
    pub(crate) fn replay(&self, frame: &Frame, s: usize, key: &str) -> Option<&'a StepRecord> {
        let record = self.req.completed.get(key)?;
        frame.set_output(s, record.output.clone());
        Some(record)
    }

    pub(crate) fn start(&self, frame: &Frame, s: usize) -> Finished {
        Finished {
            key: step_key(&self.graph.steps[s].id, frame.path()),
            attempt: 1,
            input: Value::Null,
            started_at: Utc::now(),
            clock: Instant::now(),
        }
    }

    /// Buffers the record of a finished step instance.
    pub(crate) fn record(&self, s: usize, done: Finished, output: Value, error: Option<String>) {
        let status = if error.is_some() { StepStatus::Fail } else { StepStatus::Success };
        let record = StepRecord {
            step_key: done.key,
            step_id: self.graph.steps[s].id.clone(),
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            status,
            attempt: done.attempt,
            cost_ms: i64::try_from(done.clock.elapsed().as_millis()).unwrap_or(i64::MAX),
            input: done.input,
            output,
            error,
            started_at: done.started_at,
        };
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner).push(record);
    }

    /// Makes every buffered record durable.
    async fn checkpoint(&self, step: &Step) -> Result<(), Interrupt> {
        let batch =
            std::mem::take(&mut *self.buffer.lock().unwrap_or_else(PoisonError::into_inner));
        if batch.is_empty() {
            return Ok(());
        }
        // Keep a copy so that a failed write leaves the records for the final commit.
        let copy = batch.clone();
        let Err(err) = self.journal.checkpoint(batch).await else { return Ok(()) };
        let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        let newer = std::mem::replace(&mut *buffer, copy);
        buffer.extend(newer);
        Err(Interrupt::fail(step, format!("checkpoint around an external step failed: {err}")))
    }

    /// Runs a connector step.
    async fn action(&self, frame: &Arc<Frame>, s: usize) -> Result<(), Interrupt> {
        let step = &self.graph.steps[s];
        let mut done = self.start(frame, s);
        if let Some(record) = self.replay(frame, s, &done.key) {
            return match record.status {
                StepStatus::Success => {
                    self.respond(step, &record.output);
                    Ok(())
                }
                StepStatus::Fail => {
                    Err(Interrupt::fail(step, record.error.clone().unwrap_or_default()))
                }
            };
        }
        let input = if s == self.graph.trigger {
            Ok(self.req.input.clone())
        } else {
            step.input.eval(self.scope(frame)).map_err(|missing| format!("input {missing}"))
        };
        let input = match input {
            Ok(input) => input,
            Err(message) => return self.fail(s, done, message),
        };
        done.input = input;

        let mock = step.mock.as_ref().filter(|_| self.req.mode == RunMode::Test);
        let result = match mock {
            Some(mock) => Ok(mock.clone()),
            None => {
                if step.external {
                    self.checkpoint(step).await?;
                }
                let (result, attempt) = self.invoke(step, frame.path(), &done.input).await;
                done.attempt = attempt;
                result
            }
        };
        let result = result.and_then(|output| self.check_size(output));
        let ended = match result {
            Ok(output) => {
                self.respond(step, &output);
                frame.set_output(s, output.clone());
                self.record(s, done, output, None);
                Ok(())
            }
            Err(message) => self.fail(s, done, message),
        };
        if step.external && mock.is_none() {
            self.checkpoint(step).await?;
        }
        ended
    }

    /// Keeps the output of the run's first `Response` step for the HTTP caller.
    fn respond(&self, step: &Step, output: &Value) {
        if step.connector_id != RESPONSE_CONNECTOR {
            return;
        }
        let mut response = self.response.lock().unwrap_or_else(PoisonError::into_inner);
        response.get_or_insert_with(|| output.clone());
    }

    /// Records a failed step instance and returns the failure.
    pub(crate) fn fail(&self, s: usize, done: Finished, message: String) -> Result<(), Interrupt> {
        let step = &self.graph.steps[s];
        tracing::debug!(step_id = %step.id, error = %message, "step failed");
        self.record(s, done, Value::Null, Some(message.clone()));
        Err(Interrupt::fail(step, message))
    }

    pub(crate) fn check_size(&self, output: Value) -> Result<Value, String> {
        let cap = self.limits().max_output_bytes;
        let mut counter = ByteCounter { seen: 0, cap };
        if serde_json::to_writer(&mut counter, &output).is_err() {
            return Err(format!("output is larger than the {cap}-byte limit"));
        }
        Ok(output)
    }

    /// Calls the connector with retries; returns the result and the last attempt number.
    async fn invoke(&self, step: &Step, path: &str, input: &Value) -> (Result<Value, String>, i32) {
        let connection = match &step.connection_id {
            None => None,
            Some(id) => match self.engine.connections.resolve(&self.req.project_id, id).await {
                Ok(connection) => Some(connection),
                Err(err) => return (Err(format!("connection `{id}`: {err}")), 1),
            },
        };
        let timeout = step.timeout.unwrap_or(self.limits().default_step_timeout);
        let iteration = if path.is_empty() { "0" } else { path };
        let mut attempt: u32 = 1;
        loop {
            let call = Invocation {
                operation: step.operation.clone(),
                input: input.clone(),
                config: step.config.clone(),
                idempotency_key: format!("{}/{}/{iteration}/{attempt}", self.req.run_id, step.id),
                connection: connection.clone(),
                timeout,
            };
            let err = match tokio::time::timeout(timeout, step.connector.invoke(call)).await {
                Ok(Ok(output)) => return (Ok(output), attempt as i32),
                Ok(Err(err)) => err,
                Err(_) => {
                    ConnectorError::failed(format!("timed out after {} ms", timeout.as_millis()))
                }
            };
            if !err.is_retryable() || attempt >= step.retry.attempts {
                return (Err(err.to_string()), attempt as i32);
            }
            attempt += 1;
            let pause = step.retry.delay_before(attempt);
            tracing::warn!(step_id = %step.id, attempt, error = %err, "retrying step");
            tokio::time::sleep(pause).await;
        }
    }
}

/// Counts serialized bytes and stops the serializer once past the cap.
struct ByteCounter {
    seen: usize,
    cap: usize,
}

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.seen += buf.len();
        if self.seen > self.cap {
            return Err(io::Error::other("output cap exceeded"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
