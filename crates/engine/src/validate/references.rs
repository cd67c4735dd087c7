//! The reference rule: an expression may only read data that always exists when its step
//! runs (the trigger, ancestors in the step's block, ancestors of enclosing control steps), and
//! loop variables, `error`, `break` and `continue` only inside the constructs that provide them.

use std::collections::HashSet;

use super::{error, ValidationError, ValidationKind};
use crate::expr::{Expr, Root};
use crate::model::{Control, ControlOp, FlowGraph};

/// What a step may read: the steps that always finish before it, and the loop and catch
/// constructs around it.
struct Visible {
    steps: HashSet<usize>,
    loops: Vec<usize>,
    in_catch: bool,
}

fn visible(flow: &FlowGraph, step: usize) -> Visible {
    let mut steps = HashSet::from([flow.trigger]);
    let mut loops = Vec::new();
    let mut in_catch = false;
    let mut at = Some(step);
    while let Some(s) = at {
        ancestors_in_block(flow, s, &mut steps);
        let block = &flow.blocks[flow.steps[s].block];
        at = block.owner;
        let Some(owner) = block.owner else { break };
        let op = flow.steps[owner].control.as_ref().map(|c| &c.op);
        if op.is_some_and(ControlOp::is_loop) {
            loops.push(owner);
        }
        in_catch |= matches!(op, Some(ControlOp::Scope)) && block.branch == "catch";
    }
    Visible { steps, loops, in_catch }
}

fn ancestors_in_block(flow: &FlowGraph, step: usize, out: &mut HashSet<usize>) {
    let block = &flow.blocks[flow.steps[step].block];
    let mut stack = vec![step];
    while let Some(s) = stack.pop() {
        for &p in &block.members {
            if flow.steps[p].transmit.contains(&s) && out.insert(p) {
                stack.push(p);
            }
        }
    }
}

pub(super) fn check_references(flow: &FlowGraph, errs: &mut Vec<ValidationError>) {
    for (i, step) in flow.steps.iter().enumerate() {
        let mut exprs = Vec::new();
        step.input.exprs(&mut exprs);
        let mut seen = visible(flow, i);
        if let Some(Control { op: ControlOp::While { condition, .. }, .. }) = &step.control {
            condition.templates().for_each(|t| t.exprs(&mut exprs));
            // The condition sees the loop's own index and the previous iteration's outputs.
            seen.loops.push(i);
            if let Some(body) = step.control.as_ref().and_then(|c| c.branch("body")) {
                seen.steps.extend(flow.blocks[body].members.iter().copied());
            }
        }
        if let Some(Control { op: ControlOp::Condition(condition), .. }) = &step.control {
            condition.templates().for_each(|t| t.exprs(&mut exprs));
        }
        for expr in exprs {
            if let Some(problem) = reference_problem(flow, i, expr, &seen) {
                let msg = format!("step `{}`: `{{{{ {} }}}}` {problem}", step.id, expr.text);
                errs.push(error(ValidationKind::BadReference, Some(&step.id), msg));
            }
        }
        let is_jump = matches!(
            step.control.as_ref().map(|c| &c.op),
            Some(ControlOp::Break | ControlOp::Continue)
        );
        if is_jump && visible(flow, i).loops.is_empty() {
            let msg = format!(
                "step `{}`: {} is only allowed inside a loop body",
                step.id, step.operation
            );
            errs.push(error(ValidationKind::Invalid, Some(&step.id), msg));
        }
    }
}

fn reference_problem(flow: &FlowGraph, step: usize, expr: &Expr, seen: &Visible) -> Option<String> {
    match expr.root {
        Root::Step(target) if target == step => Some("refers to the step itself".into()),
        Root::Step(target) if !seen.steps.contains(&target) => Some(format!(
            "reads step `{}`, which does not always finish before this step",
            flow.steps[target].id
        )),
        Root::Item | Root::Index if seen.loops.is_empty() => {
            Some("reads a loop variable outside any loop body".into())
        }
        Root::Loop(target) if !seen.loops.contains(&target) => Some(format!(
            "reads loop `{}`, which does not enclose this step",
            flow.steps[target].id
        )),
        Root::Error if !seen.in_catch => Some("reads `error` outside a catch branch".into()),
        _ => None,
    }
}
