//! Engine integration tests: flows built as JSON, run against built-in and fake connectors.

// Flow builders take JSON by value so call sites can pass `json!` literals directly.
#![allow(clippy::needless_pass_by_value)]

mod control;
mod execution;
mod validation;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connector_api::{async_trait, Connector, ConnectorError, Descriptor, Invocation, Operation};
use serde_json::{json, Value};
use uuid::Uuid;
use workbench_engine::{
    builtin_registry, Engine, FlowGraph, Journal, JournalError, Limits, NoConnections, RunMode,
    RunOutcome, RunRequest, StepRecord,
};

/// A fake connector `Test` that counts invocations.
/// Actions: `echo` (returns input), `fail` (fatal error), `sleep` (`ms`), `big` (`bytes`),
/// `ext` (external echo), `flaky` (retryable failure for the first `fails` calls).
pub(crate) struct TestConnector {
    descriptor: Descriptor,
    pub(crate) calls: AtomicUsize,
    pub(crate) keys: Mutex<Vec<String>>,
}

impl TestConnector {
    pub(crate) fn new() -> Self {
        let op = |id: &str, external: bool| Operation {
            id: id.into(),
            name: id.into(),
            description: String::new(),
            input_schema: json!({}),
            output_schema: json!({}),
            external,
        };
        let descriptor = Descriptor {
            id: "Test".into(),
            version: "1".into(),
            name: "Test".into(),
            description: String::new(),
            category: "test".into(),
            triggers: Vec::new(),
            actions: vec![
                op("echo", false),
                op("fail", false),
                op("sleep", false),
                op("big", false),
                op("ext", true),
                op("flaky", false),
            ],
        };
        Self { descriptor, calls: AtomicUsize::new(0), keys: Mutex::new(Vec::new()) }
    }
}

#[async_trait]
impl Connector for TestConnector {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    async fn invoke(&self, call: Invocation) -> Result<Value, ConnectorError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.keys.lock().unwrap().push(call.idempotency_key.clone());
        match call.operation.as_str() {
            "echo" | "ext" => Ok(call.input),
            "fail" => Err(ConnectorError::fatal("boom")),
            "sleep" => {
                let ms = call.input["ms"].as_u64().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(json!({}))
            }
            "big" => Ok(Value::String("x".repeat(call.input["bytes"].as_u64().unwrap() as usize))),
            "flaky" if (n as u64) < call.input["fails"].as_u64().unwrap_or(0) => {
                Err(ConnectorError::failed("not yet"))
            }
            "flaky" => Ok(json!({"ok": true})),
            other => Err(ConnectorError::UnknownOperation(other.into())),
        }
    }
}

/// Remembers every checkpoint batch.
#[derive(Default)]
pub(crate) struct RecordingJournal {
    pub(crate) batches: Mutex<Vec<Vec<StepRecord>>>,
}

#[async_trait]
impl Journal for RecordingJournal {
    async fn checkpoint(&self, records: Vec<StepRecord>) -> Result<(), JournalError> {
        self.batches.lock().unwrap().push(records);
        Ok(())
    }
}

impl RecordingJournal {
    pub(crate) fn keys(&self) -> Vec<Vec<String>> {
        let batches = self.batches.lock().unwrap();
        batches.iter().map(|b| b.iter().map(|r| r.step_key.clone()).collect()).collect()
    }
}

pub(crate) fn trigger(id: &str, transmit: &[&str]) -> Value {
    json!({"stepId": id, "name": id, "call": {"connectorRef": "ManualTrigger",
        "connectorVersion": "1", "triggerRef": {"refId": "ManualTrigger", "type": "instant",
        "authentication": {"connectionId": null}, "input": {"body": {}}, "config": null}},
        "transmit": transmit, "mockOutput": null})
}

pub(crate) fn action(
    id: &str,
    connector: &str,
    op: &str,
    input: Value,
    transmit: &[&str],
) -> Value {
    json!({"stepId": id, "name": id, "call": {"connectorRef": connector, "connectorVersion": "1",
        "actionRef": {"refId": op, "refName": op, "type": "action", "input": input,
        "config": null}}, "transmit": transmit, "mockOutput": null, "extra": {"kept": true}})
}

pub(crate) fn echo(id: &str, input: Value, transmit: &[&str]) -> Value {
    action(id, "Test", "echo", input, transmit)
}

pub(crate) fn control(id: &str, op: &str, input: Value, config: Value, transmit: &[&str]) -> Value {
    let mut step = action(id, "Control", op, input, transmit);
    step["call"]["actionRef"]["config"] = config;
    step
}

/// A test harness: the built-in registry plus `Test`.
pub(crate) struct Harness {
    pub(crate) test: Arc<TestConnector>,
    pub(crate) engine: Engine,
    pub(crate) registry: connector_api::Registry,
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub(crate) fn with_limits(limits: Limits) -> Self {
        let test = Arc::new(TestConnector::new());
        let mut registry = builtin_registry();
        registry.register(test.clone());
        let engine = Engine::new(Arc::new(registry.clone()), Arc::new(NoConnections), limits);
        Self { test, engine, registry }
    }

    pub(crate) fn parse(&self, steps: &Value) -> Arc<FlowGraph> {
        match FlowGraph::parse(steps, &self.registry) {
            Ok(graph) => Arc::new(graph),
            Err(errs) => panic!("flow does not validate: {errs:#?}"),
        }
    }

    pub(crate) fn request(&self, steps: &Value, input: Value) -> RunRequest {
        RunRequest {
            run_id: Uuid::nil(),
            flow_id: Uuid::nil(),
            project_id: "p".into(),
            flow: self.parse(steps),
            input,
            mode: RunMode::Manual,
            completed: Default::default(),
        }
    }

    pub(crate) async fn run(&self, steps: Value, input: Value) -> Ran {
        let journal = RecordingJournal::default();
        let outcome = self.engine.run(self.request(&steps, input), &journal).await;
        Ran { outcome, journal }
    }
}

pub(crate) struct Ran {
    pub(crate) outcome: RunOutcome,
    pub(crate) journal: RecordingJournal,
}

impl Ran {
    /// Every record, checkpointed or pending, in seq order.
    pub(crate) fn records(&self) -> Vec<StepRecord> {
        let mut all: Vec<StepRecord> =
            self.journal.batches.lock().unwrap().iter().flatten().cloned().collect();
        all.extend(self.outcome.pending.iter().cloned());
        all.sort_by_key(|r| r.seq);
        all
    }

    pub(crate) fn output(&self, key: &str) -> Value {
        let records = self.records();
        let Some(record) = records.iter().find(|r| r.step_key == key) else {
            panic!("no record `{key}` in {:?}", self.keys());
        };
        record.output.clone()
    }

    pub(crate) fn keys(&self) -> Vec<String> {
        self.records().into_iter().map(|r| r.step_key).collect()
    }

    pub(crate) fn ran(&self, key: &str) -> bool {
        self.records().iter().any(|r| r.step_key == key)
    }

    pub(crate) fn assert_success(&self) {
        assert_eq!(
            self.outcome.status,
            workbench_engine::RunStatus::Success,
            "run failed: {:?}",
            self.outcome.message
        );
    }
}
