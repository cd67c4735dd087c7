//! The flow definitions the scenarios run, in the MSSI step shape.

use serde_json::{json, Value};

fn action(
    id: &str,
    connector: &str,
    op: &str,
    input: Value,
    config: Value,
    transmit: &[&str],
) -> Value {
    let mut step = json!({"stepId": id, "name": id, "call": {"connectorRef": connector,
        "connectorVersion": "1", "actionRef": {"refId": op, "refName": op}}, "transmit": transmit});
    step["call"]["actionRef"]["input"] = input;
    step["call"]["actionRef"]["config"] = config;
    step
}

fn trigger(connector: &str, op: &str, kind: &str, config: Value, transmit: &[&str]) -> Value {
    let mut step = json!({"stepId": "trigger", "name": "trigger", "call": {
        "connectorRef": connector, "connectorVersion": "1", "triggerRef": {"refId": op,
        "refName": op, "type": kind, "input": {}}}, "transmit": transmit});
    step["call"]["triggerRef"]["config"] = config;
    step
}

/// The step ids of [`manual_transform_condition`], in order.
pub(crate) const THREE_STEPS: [&str; 3] = ["trigger", "shape", "check"];

/// Scenario 1 and 4: manual trigger → transform → condition.
pub(crate) fn manual_transform_condition(name: &str) -> Value {
    let steps = vec![
        trigger("ManualTrigger", "manual", "instant", Value::Null, &["shape"]),
        action(
            "shape",
            "DataTransform",
            "transform",
            json!({"value": {"n": "{{ $.trigger.body.n }}", "kind": "bench"}}),
            Value::Null,
            &["check"],
        ),
        action(
            "check",
            "Control",
            "condition",
            json!({"combinator": "all", "conditions": [
                {"left": "{{ $.steps.shape.n }}", "operator": ">=", "right": 0}]}),
            json!({"branches": {"yes": [], "no": []}}),
            &[],
        ),
    ];
    json!({"name": name, "steps": steps})
}

/// The step ids of [`manual_delay_transform_condition`], in order.
pub(crate) const FOUR_STEPS: [&str; 4] = ["trigger", "wait", "shape", "check"];

/// Scenario 1's flow with a 0 ms `Delay` first: an external step, so its runs go through the
/// run queue and its workers rather than being executed where they are accepted.
pub(crate) fn manual_delay_transform_condition(name: &str) -> Value {
    let mut flow = manual_transform_condition(name);
    let steps = flow["steps"].as_array_mut().expect("steps");
    steps[0]["transmit"] = json!(["wait"]);
    steps.insert(1, action("wait", "Delay", "delay", json!({"ms": 0}), Value::Null, &["shape"]));
    flow
}

/// Scenario 2: HTTP trigger (sync, no caller auth) → transform → Response.
pub(crate) fn http_transform_response(name: &str) -> Value {
    let steps = vec![
        trigger(
            "HttpTrigger",
            "http_request",
            "http",
            json!({"method": "POST", "auth": "none", "mode": "sync"}),
            &["shape"],
        ),
        action(
            "shape",
            "DataTransform",
            "transform",
            json!({"value": {"echo": "{{ $.trigger.body.n }}"}}),
            Value::Null,
            &["reply"],
        ),
        action(
            "reply",
            "Response",
            "response",
            json!({"body": "{{ $.steps.shape }}"}),
            Value::Null,
            &[],
        ),
    ];
    json!({"name": name, "steps": steps})
}

/// Scenario 6: a schedule trigger alone, due at the start of every minute.
pub(crate) fn every_minute(name: &str) -> Value {
    let config = json!({"first_run": "2020-01-01T00:00:00", "every": 1, "unit": "minute",
                        "misfire": "latest"});
    let steps = vec![trigger("Schedule", "repeat", "schedule", config, &[])];
    json!({"name": name, "steps": steps})
}
