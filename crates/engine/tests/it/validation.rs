//! Every validation rule is reported with the step and the rule it breaks.

use serde_json::{json, Value};
use workbench_engine::{FlowGraph, ValidationError, ValidationKind};

use crate::{action, control, echo, trigger, Harness};

fn errors(steps: Value) -> Vec<ValidationError> {
    let harness = Harness::new();
    match FlowGraph::parse(&steps, &harness.registry) {
        Ok(_) => panic!("flow unexpectedly validates"),
        Err(errs) => errs,
    }
}

/// Asserts that one error has `kind`, names `step` and mentions `words` in its message.
fn expect(errs: &[ValidationError], kind: ValidationKind, step: Option<&str>, words: &str) {
    let found = errs.iter().any(|e| {
        e.kind == kind
            && e.step_id.as_deref() == step
            && e.message.contains(words)
            && step.is_none_or(|s| e.message.contains(s))
    });
    assert!(found, "no {kind:?} error for {step:?} mentioning `{words}` in {errs:#?}");
}

#[test]
fn no_trigger_and_multiple_triggers() {
    let errs = errors(json!([echo("a", json!({}), &[])]));
    expect(&errs, ValidationKind::NoTrigger, None, "no trigger");
    let errs = errors(json!([trigger("t1", &[]), trigger("t2", &[])]));
    expect(&errs, ValidationKind::MultipleTriggers, Some("t2"), "exactly one trigger");
}

#[test]
fn trigger_type_must_be_known() {
    let mut t = trigger("t", &[]);
    t["call"]["triggerRef"]["type"] = json!("cron");
    let errs = errors(json!([t]));
    expect(&errs, ValidationKind::InvalidTriggerType, Some("t"), "`cron`");
    // A missing type is fine.
    let mut t = trigger("t", &[]);
    t["call"]["triggerRef"].as_object_mut().unwrap().remove("type");
    Harness::new().parse(&json!([t]));
}

#[test]
fn transmit_and_branch_targets_must_exist() {
    let errs = errors(json!([trigger("t", &["ghost"])]));
    expect(&errs, ValidationKind::UnknownStep, Some("t"), "`ghost`");
    let cond = control(
        "c",
        "condition",
        json!({"conditions": []}),
        json!({"branches": {"yes": ["nowhere"]}}),
        &[],
    );
    let errs = errors(json!([trigger("t", &["c"]), cond]));
    expect(&errs, ValidationKind::UnknownStep, Some("c"), "`nowhere`");
}

#[test]
fn cycles_are_refused_including_branch_edges() {
    let errs = errors(json!([
        trigger("t", &["a"]),
        echo("a", json!({}), &["b"]),
        echo("b", json!({}), &["a"])
    ]));
    expect(&errs, ValidationKind::Cycle, Some("a"), "cycle");
    let each =
        control("l", "foreach", json!({"items": [1]}), json!({"branches": {"body": ["x"]}}), &[]);
    let errs = errors(json!([trigger("t", &["l"]), each, echo("x", json!({}), &["l"])]));
    expect(&errs, ValidationKind::Cycle, Some("l"), "cycle");
}

#[test]
fn connectors_and_operations_must_be_registered() {
    let errs = errors(json!([
        trigger("t", &["a", "b"]),
        action("a", "Nope", "x", json!({}), &[]),
        action("b", "Test", "nope", json!({}), &[])
    ]));
    expect(&errs, ValidationKind::UnknownConnector, Some("a"), "`Nope`");
    expect(&errs, ValidationKind::UnknownOperation, Some("b"), "`nope`");
    let errs =
        errors(json!([trigger("t", &["c"]), control("c", "goto", json!({}), json!({}), &[])]));
    expect(&errs, ValidationKind::UnknownOperation, Some("c"), "`goto`");
}

#[test]
fn references_must_point_at_steps_that_run_before() {
    // `b` runs in parallel with `a`, so it cannot read it.
    let steps = json!([
        trigger("t", &["a", "b"]),
        echo("a", json!({}), &[]),
        echo("b", json!({"x": "{{ $.steps.a.y }}"}), &[])
    ]);
    expect(&errors(steps), ValidationKind::BadReference, Some("b"), "does not always finish");
    let steps = json!([trigger("t", &["a"]), echo("a", json!({"x": "{{ $.steps.zz }}"}), &[])]);
    expect(&errors(steps), ValidationKind::BadReference, Some("a"), "unknown step `zz`");
    let steps = json!([trigger("t", &["a"]), echo("a", json!({"x": "{{ $.item }}"}), &[])]);
    expect(&errors(steps), ValidationKind::BadReference, Some("a"), "outside any loop");
    let steps = json!([trigger("t", &["a"]), echo("a", json!({"x": "{{ $[ }}"}), &[])]);
    expect(&errors(steps), ValidationKind::BadReference, Some("a"), "not a valid JSONPath");
    // A step inside a condition branch is not visible after the condition.
    let cond = control(
        "c",
        "condition",
        json!({"conditions": []}),
        json!({"branches": {"yes": ["y"]}}),
        &["after"],
    );
    let steps = json!([
        trigger("t", &["c"]),
        cond,
        echo("y", json!({}), &[]),
        echo("after", json!({"v": "{{ $.steps.y }}"}), &[])
    ]);
    expect(&errors(steps), ValidationKind::BadReference, Some("after"), "`y`");
}

#[test]
fn shape_duplicates_and_reachability() {
    let errs =
        errors(json!([trigger("t", &[]), echo("a", json!({}), &[]), echo("a", json!({}), &[])]));
    expect(&errs, ValidationKind::Invalid, Some("a"), "more than one step");
    let errs = errors(json!([trigger("t", &[]), echo("lost", json!({}), &[])]));
    expect(&errs, ValidationKind::Invalid, Some("lost"), "not reachable");
    let errs = errors(json!([trigger("t", &[]), {"stepId": "s", "call": {}}]));
    expect(&errs, ValidationKind::Invalid, Some("s"), "connectorRef");
    let errs =
        errors(json!([trigger("t", &["b"]), control("b", "break", json!({}), json!({}), &[])]));
    expect(&errs, ValidationKind::Invalid, Some("b"), "inside a loop");
    let errs = errors(json!([trigger("t", &["t"])]));
    expect(&errs, ValidationKind::Cycle, Some("t"), "cycle");
}

#[test]
fn trigger_step_exposes_its_kind() {
    let graph = Harness::new().parse(&json!([trigger("t", &[])]));
    assert_eq!(graph.trigger_id(), "t");
    assert_eq!(graph.trigger_type(), Some("instant"));
    assert!(graph.has_step("t"));
}
