//! Execution of control steps (connector `Control`): branching, loops, jumps, try/catch and
//! sharding. The `Control` connector itself is never invoked; the engine runs these here.
//!
//! Outputs, as documented in `docs/flows.md`:
//! condition `{result, branch, combinator, predicates}`, switch `{value, branch}`,
//! parallel `{branches}`, foreach `[<body result>...]`, while `{iterations, last}`,
//! break/continue `{}`, terminate `{status, message}`, scope `{status, error}`,
//! shard `[[...], ...]`.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::try_join_all;
use futures::stream::{self, StreamExt};
use serde_json::{json, Map, Value};

use crate::condition::Condition;
use crate::executor::{Failure, Interrupt, Run};
use crate::expr::Template;
use crate::journal::StepStatus;
use crate::model::{Control, ControlOp};
use crate::scope::{Frame, LoopVars};

/// What a control step produced: its recorded input and output, and how the block around it
/// must continue.
struct Outcome {
    input: Value,
    output: Value,
    interrupt: Option<Interrupt>,
}

impl Outcome {
    fn done(input: Value, output: Value) -> Self {
        Self { input, output, interrupt: None }
    }

    fn own_failure(input: Value, step_id: &str, message: String) -> Self {
        let failure = Failure { step_id: step_id.to_string(), message };
        Self { input, output: Value::Null, interrupt: Some(Interrupt::Fail(failure)) }
    }
}

impl Run<'_> {
    /// Runs a control step and records it after the construct has finished.
    pub(crate) async fn control(
        &self,
        frame: &Arc<Frame>,
        s: usize,
        control: &Control,
    ) -> Result<(), Interrupt> {
        let step = &self.graph.steps[s];
        let mut done = self.start(frame, s);
        if let Some(record) = self.replay(frame, s, &done.key) {
            return replayed(control, step, record);
        }
        let outcome = match &control.op {
            ControlOp::Condition(condition) => self.condition(frame, control, condition).await,
            ControlOp::Switch => self.switch(frame, s, control).await,
            ControlOp::Parallel => self.parallel(frame, control).await,
            ControlOp::Foreach { concurrency } => {
                self.foreach(frame, s, control, *concurrency).await
            }
            ControlOp::While { condition, max_iterations } => {
                self.while_loop(frame, s, control, condition, *max_iterations).await
            }
            ControlOp::Break => jump(Interrupt::Break),
            ControlOp::Continue => jump(Interrupt::Continue),
            ControlOp::Terminate => self.terminate(frame, s),
            ControlOp::Scope => self.scope_step(frame, control).await,
            ControlOp::Shard { size } => self.shard(frame, s, *size),
        };
        done.input = outcome.input;
        match outcome.interrupt {
            Some(Interrupt::Fail(failure)) => {
                let error = if failure.step_id == step.id {
                    failure.message.clone()
                } else {
                    failure.to_string()
                };
                self.record(s, done, Value::Null, Some(error));
                Err(Interrupt::Fail(failure))
            }
            other => {
                let output = match self.check_size(outcome.output) {
                    Ok(output) => output,
                    Err(message) => return self.fail(s, done, message),
                };
                frame.set_output(s, output.clone());
                self.record(s, done, output, None);
                other.map_or(Ok(()), Err)
            }
        }
    }

    async fn condition(
        &self,
        frame: &Arc<Frame>,
        control: &Control,
        condition: &Condition,
    ) -> Outcome {
        let verdict = condition.eval(self.scope(frame));
        let branch = if verdict.result { "yes" } else { "no" };
        let mut detail = verdict.detail;
        let input = json!({"combinator": detail["combinator"], "conditions": detail["predicates"]});
        detail["branch"] = Value::from(branch);
        let interrupt = match control.branch(branch) {
            Some(b) => self.block(frame, b).await.err(),
            None => None,
        };
        Outcome { input, output: detail, interrupt }
    }

    async fn switch(&self, frame: &Arc<Frame>, s: usize, control: &Control) -> Outcome {
        let step = &self.graph.steps[s];
        // A missing value is not an error here: it selects the `default` branch.
        let value = field_lenient(&step.input, "value", self, frame);
        let label = value.as_ref().map(|v| match v {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        });
        let chosen = label
            .as_deref()
            .and_then(|l| control.branches.iter().find(|(name, _)| name == l))
            .or_else(|| control.branches.iter().find(|(name, _)| name == "default"));
        let input = json!({"value": value});
        let output = json!({"value": value, "branch": chosen.map(|(name, _)| name)});
        let interrupt = match chosen {
            Some((_, b)) => self.block(frame, *b).await.err(),
            None => None,
        };
        Outcome { input, output, interrupt }
    }

    async fn parallel(&self, frame: &Arc<Frame>, control: &Control) -> Outcome {
        let names: Vec<&str> = control.branches.iter().map(|(n, _)| n.as_str()).collect();
        let all = control.branches.iter().map(|(_, b)| self.block(frame, *b));
        let interrupt = try_join_all(all).await.err();
        Outcome { input: Value::Null, output: json!({"branches": names}), interrupt }
    }

    async fn foreach(
        &self,
        frame: &Arc<Frame>,
        s: usize,
        control: &Control,
        concurrency: usize,
    ) -> Outcome {
        let step = &self.graph.steps[s];
        let input = match step.input.eval(self.scope(frame)) {
            Ok(input) => input,
            Err(missing) => {
                return Outcome::own_failure(Value::Null, &step.id, format!("input {missing}"))
            }
        };
        let items = match input.get("items") {
            Some(Value::Array(items)) => items.clone(),
            other => {
                let kind = other.map_or("nothing", json_type);
                let msg = format!("foreach `items` must be an array, got {kind}");
                return Outcome::own_failure(input, &step.id, msg);
            }
        };
        let Some(body) = control.branch("body") else {
            return Outcome::done(input, Value::Array(Vec::new()));
        };
        let mut results = Vec::with_capacity(items.len());
        let iterations = stream::iter(items.into_iter().enumerate())
            .map(|(index, item)| {
                let vars = LoopVars { step: s, item, index };
                self.iteration(Frame::iteration(frame, vars, HashMap::new()), body)
            })
            .buffered(concurrency);
        futures::pin_mut!(iterations);
        while let Some(result) = iterations.next().await {
            match result {
                Ok(value) => results.push(value),
                Err(Interrupt::Break) => break,
                Err(other) => {
                    return Outcome { input, output: Value::Array(results), interrupt: Some(other) }
                }
            }
        }
        Outcome::done(input, Value::Array(results))
    }

    /// Runs one loop body in its own frame and returns the body's result.
    async fn iteration(&self, frame: Arc<Frame>, body: usize) -> Result<Value, Interrupt> {
        match self.block(&frame, body).await {
            Ok(()) | Err(Interrupt::Continue) => Ok(self.block_result(&frame.take_outputs(), body)),
            Err(other) => Err(other),
        }
    }

    /// A loop body's result: the output of its last step, or an object keyed by step id when
    /// the body ends in several steps; `null` for a step that did not run.
    fn block_result(&self, outputs: &HashMap<usize, Value>, block: usize) -> Value {
        let sinks = &self.graph.blocks[block].sinks;
        if let [only] = sinks.as_slice() {
            return outputs.get(only).cloned().unwrap_or(Value::Null);
        }
        let map: Map<String, Value> = sinks
            .iter()
            .map(|s| {
                (self.graph.steps[*s].id.clone(), outputs.get(s).cloned().unwrap_or(Value::Null))
            })
            .collect();
        Value::Object(map)
    }

    async fn while_loop(
        &self,
        frame: &Arc<Frame>,
        s: usize,
        control: &Control,
        condition: &Condition,
        max_iterations: Option<u32>,
    ) -> Outcome {
        let step = &self.graph.steps[s];
        let max = max_iterations.unwrap_or(self.limits().max_while_iterations) as usize;
        let Some(body) = control.branch("body") else {
            return Outcome::done(Value::Null, json!({"iterations": 0, "last": null}));
        };
        let mut carried = HashMap::new();
        let mut count = 0usize;
        let mut last = Value::Null;
        let mut first_check = Value::Null;
        loop {
            let vars = LoopVars { step: s, item: Value::Null, index: count };
            let iteration = Frame::iteration(frame, vars, carried);
            let verdict = condition.eval(self.scope(&iteration));
            if count == 0 {
                first_check = verdict.detail["predicates"].clone();
            }
            if !verdict.result {
                break;
            }
            if count >= max {
                let msg = format!(
                    "while loop still true after {max} iterations (the limit; raise it with \
                     config.max_iterations)"
                );
                return Outcome::own_failure(first_check, &step.id, msg);
            }
            let result = self.block(&iteration, body).await;
            count += 1;
            carried = iteration.take_outputs();
            last = self.block_result(&carried, body);
            match result {
                Ok(()) | Err(Interrupt::Continue) => {}
                Err(Interrupt::Break) => break,
                Err(other) => {
                    let output = json!({"iterations": count, "last": last});
                    return Outcome { input: first_check, output, interrupt: Some(other) };
                }
            }
        }
        Outcome::done(first_check, json!({"iterations": count, "last": last}))
    }

    fn terminate(&self, frame: &Arc<Frame>, s: usize) -> Outcome {
        let step = &self.graph.steps[s];
        let input = match step.input.eval(self.scope(frame)) {
            Ok(input) => input,
            Err(missing) => {
                return Outcome::own_failure(Value::Null, &step.id, format!("input {missing}"))
            }
        };
        let success = match input.get("status").and_then(Value::as_str).unwrap_or("success") {
            "success" => true,
            "fail" => false,
            other => {
                let msg = format!("terminate status `{other}` is not `success` or `fail`");
                return Outcome::own_failure(input, &step.id, msg);
            }
        };
        let message = match input.get("message") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(other) => Some(other.to_string()),
        };
        let status = if success { "success" } else { "fail" };
        let output = json!({"status": status, "message": message});
        Outcome { input, output, interrupt: Some(Interrupt::Terminate { success, message }) }
    }

    async fn scope_step(&self, frame: &Arc<Frame>, control: &Control) -> Outcome {
        let Some(try_block) = control.branch("try") else {
            return Outcome::done(Value::Null, json!({"status": "success", "error": null}));
        };
        let failure = match self.block(frame, try_block).await {
            Ok(()) => {
                return Outcome::done(Value::Null, json!({"status": "success", "error": null}))
            }
            Err(Interrupt::Fail(failure)) => failure,
            Err(other) => {
                return Outcome { input: Value::Null, output: Value::Null, interrupt: Some(other) }
            }
        };
        let Some(catch_block) = control.branch("catch") else {
            return Outcome {
                input: Value::Null,
                output: Value::Null,
                interrupt: Some(Interrupt::Fail(failure)),
            };
        };
        let error = json!({"step_id": failure.step_id, "message": failure.message});
        let catch_frame = Frame::catch(frame, error.clone());
        let interrupt = self.block(&catch_frame, catch_block).await.err();
        Outcome {
            input: Value::Null,
            output: json!({"status": "caught", "error": error}),
            interrupt,
        }
    }

    fn shard(&self, frame: &Arc<Frame>, s: usize, size: Option<usize>) -> Outcome {
        let step = &self.graph.steps[s];
        let input = match step.input.eval(self.scope(frame)) {
            Ok(input) => input,
            Err(missing) => {
                return Outcome::own_failure(Value::Null, &step.id, format!("input {missing}"))
            }
        };
        let size = input.get("size").and_then(Value::as_u64).map(|n| n as usize).or(size);
        let Some(size) = size.filter(|n| *n > 0) else {
            let msg = "shard needs a positive `size` (input or config)".to_string();
            return Outcome::own_failure(input, &step.id, msg);
        };
        let Some(Value::Array(items)) = input.get("items") else {
            let msg = "shard `items` must be an array".to_string();
            return Outcome::own_failure(input, &step.id, msg);
        };
        let chunks: Vec<Value> = items.chunks(size).map(|c| Value::Array(c.to_vec())).collect();
        Outcome::done(input, Value::Array(chunks))
    }
}

fn jump(interrupt: Interrupt) -> Outcome {
    Outcome { input: Value::Null, output: json!({}), interrupt: Some(interrupt) }
}

/// Continues after a control step that already finished in an earlier claim. A jump step
/// jumps again; any other construct is skipped as a whole.
fn replayed(
    control: &Control,
    step: &crate::model::Step,
    record: &crate::journal::StepRecord,
) -> Result<(), Interrupt> {
    if record.status == StepStatus::Fail {
        return Err(Interrupt::fail(step, record.error.clone().unwrap_or_default()));
    }
    match control.op {
        ControlOp::Break => Err(Interrupt::Break),
        ControlOp::Continue => Err(Interrupt::Continue),
        ControlOp::Terminate => {
            let success = record.output.get("status").and_then(Value::as_str) != Some("fail");
            let message = record.output.get("message").and_then(Value::as_str).map(str::to_string);
            Err(Interrupt::Terminate { success, message })
        }
        _ => Ok(()),
    }
}

/// Evaluates one field of an object input, treating a reference to nothing as absent.
fn field_lenient(template: &Template, key: &str, run: &Run<'_>, frame: &Frame) -> Option<Value> {
    if let Some(value) = template.literal_field(key) {
        return Some(value.clone());
    }
    template.field(key)?.eval(run.scope(frame)).ok()
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
