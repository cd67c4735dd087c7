//! Checks a FlowMeta `steps` array and builds the [`FlowGraph`] from it.
//!
//! Every rule of contract §5.3 plus the engine's own (blocks, references, control step
//! configuration) is checked here, once, when a flow is saved or loaded; the executor trusts the
//! result. All problems are collected so an editor can show them together.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use connector_api::{Connector, Registry};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::condition::Condition;
use crate::expr::Template;
use crate::model::{Block, Control, ControlOp, FlowGraph, Step, CONTROL_CONNECTOR};
use crate::policy::{self, RetryPolicy, ENGINE_KEYS};

mod references;

/// Which rule a flow breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ValidationKind {
    NoTrigger,
    MultipleTriggers,
    InvalidTriggerType,
    UnknownStep,
    Cycle,
    UnknownConnector,
    UnknownOperation,
    BadReference,
    Invalid,
}

/// One broken rule, naming the step (when there is one) and the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct ValidationError {
    pub kind: ValidationKind,
    pub step_id: Option<String>,
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// `triggerRef.type` values the contract allows.
const TRIGGER_TYPES: [&str; 5] = ["instant", "schedule", "http", "poll", "event"];

fn error(kind: ValidationKind, step: Option<&str>, message: String) -> ValidationError {
    ValidationError { kind, step_id: step.map(str::to_string), message }
}

/// A step as read from JSON, before anything is resolved.
struct Raw<'a> {
    id: String,
    connector_ref: String,
    operation: String,
    is_trigger: bool,
    trigger_type: Option<String>,
    connection_id: Option<String>,
    input: &'a Value,
    config: &'a Value,
    transmit: Vec<String>,
    mock: Option<Value>,
}

pub(crate) fn build(steps: &Value, registry: &Registry) -> Result<FlowGraph, Vec<ValidationError>> {
    let Some(list) = steps.as_array() else {
        return Err(vec![error(ValidationKind::Invalid, None, "`steps` must be an array".into())]);
    };
    let mut errs = Vec::new();
    let raws: Vec<Raw<'_>> =
        list.iter().enumerate().filter_map(|(i, s)| read_step(i, s, &mut errs)).collect();

    let mut ids = HashMap::new();
    for (i, raw) in raws.iter().enumerate() {
        if ids.insert(raw.id.clone(), i).is_some() {
            let msg = format!("step `{}`: stepId is used by more than one step", raw.id);
            errs.push(error(ValidationKind::Invalid, Some(&raw.id), msg));
        }
    }
    let trigger = check_triggers(&raws, &mut errs);
    let connectors = resolve_connectors(&raws, registry, &mut errs);
    let controls = read_controls(&raws, &ids, &mut errs);
    let transmit = resolve_transmit(&raws, &ids, &mut errs);
    let edges: Vec<Vec<usize>> = (0..raws.len())
        .map(|i| {
            let entries = controls[i].iter().flat_map(|c| c.1.iter().flat_map(|b| &b.1));
            transmit[i].iter().chain(entries).copied().collect()
        })
        .collect();
    let acyclic = check_cycles(&raws, &edges, &mut errs);
    let (Some(trigger), true) = (trigger, acyclic) else {
        return Err(errs);
    };
    check_trigger_incoming(&raws, trigger, &edges, &mut errs);
    let graph = Blocks::assign(&raws, trigger, &transmit, &controls, &mut errs);

    let mut steps = Vec::with_capacity(raws.len());
    for (i, raw) in raws.iter().enumerate() {
        let (op, branches) = match &controls[i] {
            Some((op, branches)) => (Some(op), branches.as_slice()),
            None => (None, &[][..]),
        };
        let built = finish_step(raw, op, &ids, &mut errs);
        let Some((input, control_op, config, timeout, retry)) = built else { continue };
        let Some((connector, external)) = connectors[i].clone() else { continue };
        let control = control_op.map(|op| Control {
            op,
            branches: branches
                .iter()
                .enumerate()
                .map(|(b, (name, _))| {
                    let block = graph.branch_block[i].get(b).copied().unwrap_or(usize::MAX);
                    (name.clone(), block)
                })
                .collect(),
        });
        steps.push(Step {
            id: raw.id.clone(),
            connector_id: raw.connector_ref.clone(),
            operation: raw.operation.clone(),
            connector,
            external,
            trigger_type: raw.trigger_type.clone(),
            connection_id: raw.connection_id.clone(),
            input,
            config,
            timeout,
            retry,
            mock: raw.mock.clone(),
            transmit: transmit[i].clone(),
            control,
            block: graph.block_of[i],
            preds_in_block: graph.preds[i],
        });
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let flow = FlowGraph { steps, by_id: ids, blocks: graph.blocks, trigger };
    references::check_references(&flow, &mut errs);
    if errs.is_empty() {
        Ok(flow)
    } else {
        Err(errs)
    }
}

/// Reads the shape of one step; `None` when it has no usable `stepId`.
fn read_step<'a>(at: usize, step: &'a Value, errs: &mut Vec<ValidationError>) -> Option<Raw<'a>> {
    let invalid = |id: Option<&str>, msg: String| error(ValidationKind::Invalid, id, msg);
    let Some(obj) = step.as_object() else {
        errs.push(invalid(None, format!("steps[{at}] must be an object")));
        return None;
    };
    let Some(id) = obj.get("stepId").and_then(Value::as_str).filter(|s| !s.is_empty()) else {
        errs.push(invalid(None, format!("steps[{at}] has no stepId string")));
        return None;
    };
    let fail = |errs: &mut Vec<ValidationError>, msg: String| {
        errs.push(invalid(Some(id), format!("step `{id}`: {msg}")));
    };
    let call = obj.get("call").and_then(Value::as_object);
    let Some(call) = call else {
        fail(errs, "`call` must be an object".into());
        return None;
    };
    let connector_ref = call.get("connectorRef").and_then(Value::as_str).unwrap_or_default();
    if connector_ref.is_empty() {
        fail(errs, "`call.connectorRef` is missing".into());
        return None;
    }
    let present = |key: &str| call.get(key).filter(|v| !v.is_null());
    let (reference, is_trigger) = match (present("triggerRef"), present("actionRef")) {
        (Some(r), None) => (r, true),
        (None, Some(r)) => (r, false),
        (Some(_), Some(_)) => {
            fail(errs, "sets both `call.triggerRef` and `call.actionRef`".into());
            return None;
        }
        (None, None) => {
            fail(errs, "sets neither `call.triggerRef` nor `call.actionRef`".into());
            return None;
        }
    };
    let Some(reference) = reference.as_object() else {
        fail(errs, "`triggerRef`/`actionRef` must be an object".into());
        return None;
    };
    let text = |key: &str| reference.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
    let Some(operation) = text("refId").or_else(|| text("refName")) else {
        fail(errs, "the call names no operation (`refId` or `refName`)".into());
        return None;
    };
    let trigger_type = if is_trigger { text("type").map(str::to_string) } else { None };
    let connection_id = reference
        .get("authentication")
        .and_then(|a| a.get("connectionId"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let input = reference.get("input").unwrap_or(&Value::Null);
    let config = reference.get("config").unwrap_or(&Value::Null);
    if !(input.is_null() || input.is_object()) {
        fail(errs, "`input` must be an object".into());
    }
    if !(config.is_null() || config.is_object()) {
        fail(errs, "`config` must be an object".into());
    }
    let transmit = match obj.get("transmit") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let names: Option<Vec<String>> =
                items.iter().map(|v| v.as_str().map(str::to_string)).collect();
            names.unwrap_or_else(|| {
                fail(errs, "`transmit` must list step ids".into());
                Vec::new()
            })
        }
        Some(_) => {
            fail(errs, "`transmit` must be an array".into());
            Vec::new()
        }
    };
    let mock = match obj.get("mockOutput") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => {
            Some(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone())))
        }
        Some(other) => Some(other.clone()),
    };
    Some(Raw {
        id: id.to_string(),
        connector_ref: connector_ref.to_string(),
        operation: operation.to_string(),
        is_trigger,
        trigger_type,
        connection_id,
        input,
        config,
        transmit,
        mock,
    })
}

fn check_triggers(raws: &[Raw<'_>], errs: &mut Vec<ValidationError>) -> Option<usize> {
    let triggers: Vec<usize> = (0..raws.len()).filter(|&i| raws[i].is_trigger).collect();
    for &t in &triggers {
        let raw = &raws[t];
        let Some(kind) = raw.trigger_type.as_deref() else { continue };
        if !TRIGGER_TYPES.contains(&kind) {
            let msg = format!(
                "step `{}`: triggerRef.type `{kind}` is not one of instant, schedule, http, poll, \
                 event",
                raw.id
            );
            errs.push(error(ValidationKind::InvalidTriggerType, Some(&raw.id), msg));
        }
    }
    match triggers.as_slice() {
        [one] => Some(*one),
        [] => {
            let msg = "the flow has no trigger step (a step with `call.triggerRef`)".to_string();
            errs.push(error(ValidationKind::NoTrigger, None, msg));
            None
        }
        many => {
            let names: Vec<&str> = many.iter().map(|&i| raws[i].id.as_str()).collect();
            for &i in &many[1..] {
                let msg = format!(
                    "step `{}`: a flow has exactly one trigger step, found {}: {}",
                    raws[i].id,
                    many.len(),
                    names.join(", ")
                );
                errs.push(error(ValidationKind::MultipleTriggers, Some(&raws[i].id), msg));
            }
            None
        }
    }
}

type Resolved = Option<(Arc<dyn Connector>, bool)>;

fn resolve_connectors(
    raws: &[Raw<'_>],
    registry: &Registry,
    errs: &mut Vec<ValidationError>,
) -> Vec<Resolved> {
    let mut out = Vec::with_capacity(raws.len());
    for raw in raws {
        let Some(connector) = registry.get(&raw.connector_ref) else {
            let msg = format!("step `{}`: unknown connector `{}`", raw.id, raw.connector_ref);
            errs.push(error(ValidationKind::UnknownConnector, Some(&raw.id), msg));
            out.push(None);
            continue;
        };
        let descriptor = connector.descriptor();
        let (found, kind) = if raw.is_trigger {
            (descriptor.trigger(&raw.operation), "trigger")
        } else {
            (descriptor.action(&raw.operation), "action")
        };
        let Some(op) = found else {
            let msg = format!(
                "step `{}`: connector `{}` has no {kind} `{}`",
                raw.id, raw.connector_ref, raw.operation
            );
            errs.push(error(ValidationKind::UnknownOperation, Some(&raw.id), msg));
            out.push(None);
            continue;
        };
        if let Err(msg) = connector.check_config(&raw.operation, raw.config) {
            let msg = format!("step `{}`: {msg}", raw.id);
            errs.push(error(ValidationKind::Invalid, Some(&raw.id), msg));
        }
        out.push(Some((connector.clone(), op.external)));
    }
    out
}

type Branches = Vec<(String, Vec<usize>)>;

/// Reads `config.branches` of control steps and checks the names each action allows.
fn read_controls(
    raws: &[Raw<'_>],
    ids: &HashMap<String, usize>,
    errs: &mut Vec<ValidationError>,
) -> Vec<Option<(String, Branches)>> {
    let mut out = Vec::with_capacity(raws.len());
    for raw in raws {
        if raw.connector_ref != CONTROL_CONNECTOR || raw.is_trigger {
            out.push(None);
            continue;
        }
        let id = raw.id.as_str();
        let invalid = |errs: &mut Vec<ValidationError>, msg: String| {
            errs.push(error(ValidationKind::Invalid, Some(id), format!("step `{id}`: {msg}")));
        };
        let mut branches = Vec::new();
        match raw.config.get("branches") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (name, entries) in map {
                    let list: Vec<&str> = match entries {
                        Value::String(one) => vec![one.as_str()],
                        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                        _ => {
                            invalid(errs, format!("branch `{name}` must list entry step ids"));
                            continue;
                        }
                    };
                    let mut resolved = Vec::new();
                    for entry in list {
                        match ids.get(entry) {
                            Some(&idx) => resolved.push(idx),
                            None => errs.push(error(
                                ValidationKind::UnknownStep,
                                Some(id),
                                format!(
                                    "step `{id}`: branch `{name}` enters unknown step `{entry}`"
                                ),
                            )),
                        }
                    }
                    branches.push((name.clone(), resolved));
                }
            }
            Some(_) => invalid(errs, "`config.branches` must be an object".into()),
        }
        let names: Vec<&str> = branches.iter().map(|(n, _)| n.as_str()).collect();
        let allowed: Option<&[&str]> = match raw.operation.as_str() {
            "condition" => Some(&["yes", "no"]),
            "foreach" | "while" => Some(&["body"]),
            "scope" => Some(&["try", "catch"]),
            "break" | "continue" | "terminate" | "shard" => Some(&[]),
            _ => None,
        };
        if let Some(allowed) = allowed {
            for name in names.iter().filter(|n| !allowed.contains(n)) {
                invalid(
                    errs,
                    format!(
                        "`{}` does not take a branch `{name}` (allowed: {})",
                        raw.operation,
                        if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") }
                    ),
                );
            }
        }
        let required = match raw.operation.as_str() {
            "foreach" | "while" => Some("body"),
            "scope" => Some("try"),
            _ => None,
        };
        if let Some(required) = required.filter(|r| !names.contains(r)) {
            invalid(errs, format!("`{}` needs a `{required}` branch", raw.operation));
        }
        out.push(Some((raw.operation.clone(), branches)));
    }
    out
}

fn resolve_transmit(
    raws: &[Raw<'_>],
    ids: &HashMap<String, usize>,
    errs: &mut Vec<ValidationError>,
) -> Vec<Vec<usize>> {
    let mut out = Vec::with_capacity(raws.len());
    for raw in raws {
        let mut targets = Vec::with_capacity(raw.transmit.len());
        for target in &raw.transmit {
            match ids.get(target) {
                Some(&idx) if !targets.contains(&idx) => targets.push(idx),
                Some(_) => {}
                None => {
                    let msg = format!("step `{}`: transmit names unknown step `{target}`", raw.id);
                    errs.push(error(ValidationKind::UnknownStep, Some(&raw.id), msg));
                }
            }
        }
        out.push(targets);
    }
    out
}

/// Depth-first search for back edges over transmit and branch edges; `true` when acyclic.
fn check_cycles(raws: &[Raw<'_>], edges: &[Vec<usize>], errs: &mut Vec<ValidationError>) -> bool {
    const NEW: u8 = 0;
    const OPEN: u8 = 1;
    const DONE: u8 = 2;
    let mut color = vec![NEW; raws.len()];
    let mut acyclic = true;
    for start in 0..raws.len() {
        if color[start] != NEW {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        color[start] = OPEN;
        while let Some(top) = stack.last_mut() {
            let (node, next) = *top;
            let Some(&child) = edges[node].get(next) else {
                color[node] = DONE;
                stack.pop();
                continue;
            };
            top.1 += 1;
            match color[child] {
                NEW => {
                    color[child] = OPEN;
                    stack.push((child, 0));
                }
                OPEN => {
                    acyclic = false;
                    let from = stack.iter().position(|(s, _)| *s == child).unwrap_or(0);
                    let mut path: Vec<&str> =
                        stack[from..].iter().map(|(s, _)| raws[*s].id.as_str()).collect();
                    path.push(&raws[child].id);
                    let msg = format!(
                        "step `{}` is on a cycle ({}); loops must use a foreach or while step",
                        raws[child].id,
                        path.join(" → ")
                    );
                    errs.push(error(ValidationKind::Cycle, Some(&raws[child].id), msg));
                }
                _ => {}
            }
        }
    }
    acyclic
}

fn check_trigger_incoming(
    raws: &[Raw<'_>],
    trigger: usize,
    edges: &[Vec<usize>],
    errs: &mut Vec<ValidationError>,
) {
    for (from, targets) in edges.iter().enumerate() {
        if targets.contains(&trigger) {
            let msg = format!(
                "trigger step `{}` must have no incoming edge, but step `{}` leads to it",
                raws[trigger].id, raws[from].id
            );
            errs.push(error(ValidationKind::Invalid, Some(&raws[trigger].id), msg));
        }
    }
}

/// Entry steps of a block still to assign, and the control step and branch that own it.
type PendingBlock = (Vec<usize>, Option<(usize, String)>);

/// The block structure of a graph.
struct Blocks {
    blocks: Vec<Block>,
    block_of: Vec<usize>,
    preds: Vec<u32>,
    /// For each step, the block of each of its branches (in `config.branches` order).
    branch_block: Vec<Vec<usize>>,
}

impl Blocks {
    fn assign(
        raws: &[Raw<'_>],
        trigger: usize,
        transmit: &[Vec<usize>],
        controls: &[Option<(String, Branches)>],
        errs: &mut Vec<ValidationError>,
    ) -> Self {
        const NONE: usize = usize::MAX;
        let n = raws.len();
        let mut block_of = vec![NONE; n];
        let mut blocks = Vec::new();
        let mut branch_block = vec![Vec::new(); n];
        let mut work: Vec<PendingBlock> = vec![(vec![trigger], None)];
        while let Some((entries, owner)) = work.pop() {
            let b = blocks.len();
            let mut members = Vec::new();
            let mut queue = Vec::new();
            let mut claim = |s: usize, via: &str, queue: &mut Vec<usize>| {
                if block_of[s] == NONE {
                    block_of[s] = b;
                    queue.push(s);
                } else if block_of[s] != b {
                    let msg = format!(
                        "step `{}` is reached from two places ({via}); each step must belong to \
                         exactly one branch or the main path",
                        raws[s].id
                    );
                    errs.push(error(ValidationKind::Invalid, Some(&raws[s].id), msg));
                }
            };
            let via = match &owner {
                Some((c, name)) => format!("branch `{name}` of `{}`", raws[*c].id),
                None => "the trigger".to_string(),
            };
            for &e in &entries {
                claim(e, &via, &mut queue);
            }
            while let Some(s) = queue.pop() {
                members.push(s);
                for &t in &transmit[s] {
                    claim(t, &format!("transmit of `{}`", raws[s].id), &mut queue);
                }
                if let Some((_, branches)) = &controls[s] {
                    for (name, entries) in branches {
                        branch_block[s].push(NONE);
                        work.push((entries.clone(), Some((s, name.clone()))));
                    }
                }
            }
            if let Some((c, name)) = &owner {
                let pos =
                    controls[*c].as_ref().and_then(|(_, br)| br.iter().position(|x| &x.0 == name));
                if let Some(pos) = pos {
                    branch_block[*c][pos] = b;
                }
            }
            let (owner, branch) = match owner {
                Some((c, name)) => (Some(c), name),
                None => (None, String::new()),
            };
            blocks.push(Block { owner, branch, members, roots: Vec::new(), sinks: Vec::new() });
        }
        for (s, raw) in raws.iter().enumerate() {
            if block_of[s] == NONE {
                let msg = format!("step `{}` is not reachable from the trigger", raw.id);
                errs.push(error(ValidationKind::Invalid, Some(&raw.id), msg));
            }
        }
        let mut preds = vec![0u32; n];
        for (s, targets) in transmit.iter().enumerate() {
            for &t in targets.iter().filter(|&&t| block_of[t] == block_of[s]) {
                preds[t] += 1;
            }
        }
        for block in &mut blocks {
            block.members.sort_unstable();
            block.roots = block.members.iter().copied().filter(|&s| preds[s] == 0).collect();
            block.sinks =
                block.members.iter().copied().filter(|&s| transmit[s].is_empty()).collect();
        }
        Self { blocks, block_of, preds, branch_block }
    }
}

type Finished = (Template, Option<ControlOp>, Value, Option<std::time::Duration>, RetryPolicy);

/// Compiles a step's input, control settings and engine config keys.
fn finish_step(
    raw: &Raw<'_>,
    control: Option<&String>,
    ids: &HashMap<String, usize>,
    errs: &mut Vec<ValidationError>,
) -> Option<Finished> {
    let id = raw.id.as_str();
    let before = errs.len();
    let mut push =
        |kind, msg: String| errs.push(error(kind, Some(id), format!("step `{id}`: {msg}")));
    let input = match raw.input {
        Value::Null => Ok(Template::empty()),
        v => Template::compile(v, ids),
    };
    let input = input.unwrap_or_else(|msg| {
        push(ValidationKind::BadReference, msg);
        Template::empty()
    });
    let timeout = policy::parse_timeout(raw.config.get("timeout_ms")).unwrap_or_else(|msg| {
        push(ValidationKind::Invalid, msg);
        None
    });
    let retry =
        RetryPolicy::parse(raw.config.get("retry").unwrap_or(&Value::Null)).unwrap_or_else(|msg| {
            push(ValidationKind::Invalid, msg);
            RetryPolicy::default()
        });
    let config = match raw.config {
        Value::Object(map) => {
            let rest: Map<String, Value> = map
                .iter()
                .filter(|(k, _)| !ENGINE_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Value::Object(rest)
        }
        _ => Value::Null,
    };
    let op = match control {
        Some(name) => match control_op(name, raw, ids) {
            Ok(op) => Some(op),
            Err((kind, msg)) => {
                push(kind, msg);
                None
            }
        },
        None => None,
    };
    (errs.len() == before).then_some((input, op, config, timeout, retry))
}

fn control_op(
    name: &str,
    raw: &Raw<'_>,
    ids: &HashMap<String, usize>,
) -> Result<ControlOp, (ValidationKind, String)> {
    let invalid = |msg: String| (ValidationKind::Invalid, msg);
    let positive = |key: &str| -> Result<Option<u64>, (ValidationKind, String)> {
        match raw.config.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64().filter(|n| *n > 0) {
                Some(n) => Ok(Some(n)),
                None => Err(invalid(format!("`config.{key}` must be a positive integer"))),
            },
        }
    };
    let condition =
        || Condition::compile(raw.input, ids).map_err(|msg| (ValidationKind::BadReference, msg));
    let op = match name {
        "condition" => ControlOp::Condition(condition()?),
        "switch" => ControlOp::Switch,
        "parallel" => ControlOp::Parallel,
        "foreach" => {
            if raw.input.get("items").is_none() {
                return Err(invalid("foreach needs an `items` input".into()));
            }
            let concurrency = positive("concurrency")?.unwrap_or(1);
            ControlOp::Foreach { concurrency: concurrency.min(1024) as usize }
        }
        "while" => {
            let max = positive("max_iterations")?.map(|n| n.min(u64::from(u32::MAX)) as u32);
            ControlOp::While { condition: condition()?, max_iterations: max }
        }
        "break" => ControlOp::Break,
        "continue" => ControlOp::Continue,
        "terminate" => {
            let status = raw.input.get("status").and_then(Value::as_str);
            if let Some(s) = status.filter(|s| !matches!(*s, "success" | "fail")) {
                return Err(invalid(format!("terminate status `{s}` is not `success` or `fail`")));
            }
            ControlOp::Terminate
        }
        "scope" => ControlOp::Scope,
        "shard" => ControlOp::Shard { size: positive("size")?.map(|n| n as usize) },
        other => {
            let msg = format!("the engine does not implement control action `{other}`");
            return Err((ValidationKind::UnknownOperation, msg));
        }
    };
    Ok(op)
}
