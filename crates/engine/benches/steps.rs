//! Scenario 3 of `docs/benchmarks.md`: the engine's overhead per step, in process. Chains of
//! 1, 10 and 100 transform steps after a manual trigger, run by `Engine::run` with an
//! in-memory journal, with and without checkpointing.
//!
//! "Without" uses the built-in `DataTransform`, whose operation is not external, so the
//! engine never calls the journal during the run. "With" uses `Checkpointed`, a connector that
//! does exactly what `DataTransform` does but marks its operation external, so the engine
//! checkpoints before and after every step. The journal only counts records: this is the
//! engine's own cost of checkpointing, not a database's.
//!
//! `cargo bench -p workbench-engine --bench steps`; criterion reports time per run, and the
//! throughput line gives steps per second (per step = run time / steps).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use connector_api::{async_trait, Connector, ConnectorError, Descriptor, Invocation, Operation};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::{json, Value};
use uuid::Uuid;
use workbench_engine::{
    builtin_registry, Engine, FlowGraph, Journal, JournalError, Limits, NoConnections, RunMode,
    RunRequest, RunStatus, StepRecord,
};

/// `DataTransform`'s behaviour behind an operation the engine checkpoints around.
struct Checkpointed(Descriptor);

impl Checkpointed {
    fn new() -> Self {
        let operation = Operation {
            id: "transform".into(),
            name: "transform".into(),
            description: String::new(),
            input_schema: json!({}),
            output_schema: json!({}),
            external: true,
        };
        Checkpointed(Descriptor {
            id: "Checkpointed".into(),
            version: "1".into(),
            name: "Checkpointed".into(),
            description: String::new(),
            category: "bench".into(),
            triggers: Vec::new(),
            actions: vec![operation],
        })
    }
}

#[async_trait]
impl Connector for Checkpointed {
    fn descriptor(&self) -> &Descriptor {
        &self.0
    }

    async fn invoke(&self, call: Invocation) -> Result<Value, ConnectorError> {
        let Value::Object(mut input) = call.input else { return Ok(Value::Null) };
        Ok(input.remove("value").unwrap_or(Value::Null))
    }
}

/// Counts what it is given and keeps nothing.
#[derive(Default)]
struct CountingJournal(AtomicUsize);

#[async_trait]
impl Journal for CountingJournal {
    async fn checkpoint(&self, records: Vec<StepRecord>) -> Result<(), JournalError> {
        self.0.fetch_add(records.len(), Ordering::Relaxed);
        Ok(())
    }
}

/// A manual trigger and `n` transform steps, each reading the previous step's output.
fn chain(connector: &str, n: usize) -> Value {
    let mut steps = vec![json!({"stepId": "t", "name": "t", "call": {
        "connectorRef": "ManualTrigger", "connectorVersion": "1",
        "triggerRef": {"refId": "manual", "type": "instant", "input": {}}}, "transmit": ["s0"]})];
    for i in 0..n {
        let previous = if i == 0 {
            "{{ $.trigger.body.n }}".to_owned()
        } else {
            format!("{{{{ $.steps.s{}.n }}}}", i - 1)
        };
        let next: Vec<String> = if i + 1 < n { vec![format!("s{}", i + 1)] } else { Vec::new() };
        steps.push(json!({"stepId": format!("s{i}"), "name": format!("s{i}"), "call": {
            "connectorRef": connector, "connectorVersion": "1", "actionRef": {
                "refId": "transform", "refName": "transform",
                "input": {"value": {"n": previous, "step": i}}}}, "transmit": next}));
    }
    Value::Array(steps)
}

fn steps(c: &mut Criterion) {
    let mut registry = builtin_registry();
    registry.register(Arc::new(Checkpointed::new()));
    let engine =
        Engine::new(Arc::new(registry.clone()), Arc::new(NoConnections), Limits::default());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let mut group = c.benchmark_group("engine_steps");
    for (variant, connector) in [("no_checkpoint", "DataTransform"), ("checkpoint", "Checkpointed")]
    {
        for n in [1usize, 10, 100] {
            let graph = match FlowGraph::parse(&chain(connector, n), &registry) {
                Ok(graph) => Arc::new(graph),
                Err(errors) => panic!("chain does not validate: {errors:#?}"),
            };
            let request = || RunRequest {
                run_id: Uuid::nil(),
                flow_id: Uuid::nil(),
                project_id: "bench".into(),
                flow: graph.clone(),
                input: json!({"n": 1}),
                mode: RunMode::Manual,
                completed: Default::default(),
            };
            let journal = CountingJournal::default();
            let outcome = runtime.block_on(engine.run(request(), &journal));
            assert_eq!(outcome.status, RunStatus::Success, "{:?}", outcome.message);

            group.throughput(Throughput::Elements(n as u64));
            group.bench_function(BenchmarkId::new(variant, n), |b| {
                b.to_async(&runtime).iter(|| engine.run(request(), &journal));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, steps);
criterion_main!(benches);
