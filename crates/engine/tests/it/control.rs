//! Control actions: branches, loops, jumps, try/catch and sharding.

use serde_json::{json, Value};
use workbench_engine::RunStatus;

use crate::{control, echo, trigger, Harness};

fn condition(id: &str, left: &str, op: &str, right: Value, then: &[&str]) -> Value {
    control(
        id,
        "condition",
        json!({"combinator": "all",
            "conditions": [{"left": left, "operator": op, "right": right}]}),
        json!({"branches": {"yes": ["yes"], "no": ["no"]}}),
        then,
    )
}

/// P4: a condition on a missing field took the `true` branch. Missing operands compare false
/// for every operator except `is_empty`.
#[tokio::test]
async fn condition_on_missing_field_never_takes_yes() {
    let h = Harness::new();
    for (op, right, branch) in [
        (">", json!(5), "no"),
        ("=", json!(""), "no"),
        ("!=", json!(""), "no"),
        ("is_not_empty", Value::Null, "no"),
        ("is_empty", Value::Null, "yes"),
    ] {
        let steps = json!([
            trigger("t", &["c"]),
            condition("c", "{{ $.trigger.body.a }}", op, right, &["end"]),
            echo("yes", json!({}), &[]),
            echo("no", json!({}), &[]),
            echo("end", json!({}), &[])
        ]);
        let ran = h.run(steps, json!({"b": 1})).await;
        ran.assert_success();
        let out = ran.output("c");
        assert_eq!(out["branch"], branch, "operator {op}: {out}");
        assert_eq!(out["predicates"][0]["left_missing"], true);
        assert!(ran.ran(branch) && ran.ran("end"));
    }
}

#[tokio::test]
async fn condition_compares_number_with_numeric_string() {
    let steps = json!([
        trigger("t", &["c"]),
        condition("c", "{{ $.trigger.body.n }}", "≥", json!(" 10 "), &[]),
        echo("yes", json!({}), &[]),
        echo("no", json!({}), &[])
    ]);
    let ran = Harness::new().run(steps, json!({"n": 12})).await;
    assert_eq!(ran.output("c")["branch"], "yes");
    assert_eq!(ran.output("c")["predicates"][0]["left"], 12);
}

#[tokio::test]
async fn switch_picks_case_or_default() {
    let h = Harness::new();
    let flow = |value: Value| {
        json!([
            trigger("t", &["s"]),
            control(
                "s",
                "switch",
                json!({"value": value}),
                json!({"branches": {"red": ["r"], "2": ["two"], "default": ["d"]}}),
                &[]
            ),
            echo("r", json!({}), &[]),
            echo("two", json!({}), &[]),
            echo("d", json!({}), &[])
        ])
    };
    let ran = h.run(flow(json!("{{ $.trigger.body.color }}")), json!({"color": "red"})).await;
    assert!(ran.ran("r") && !ran.ran("d"));
    let ran = h.run(flow(json!(2)), json!({})).await;
    assert!(ran.ran("two"));
    let ran = h.run(flow(json!("{{ $.trigger.body.color }}")), json!({})).await;
    assert!(ran.ran("d") && ran.output("s")["branch"] == "default");
}

#[tokio::test]
async fn parallel_and_fan_out_join() {
    let steps = json!([
        trigger("t", &["p", "a"]),
        control("p", "parallel", json!({}), json!({"branches": {"x": ["x"], "y": ["y"]}}), &["j"]),
        echo("x", json!({}), &[]),
        echo("y", json!({}), &[]),
        echo("a", json!({"v": 1}), &["j"]),
        echo("j", json!({"a": "{{ $.steps.a.v }}", "p": "{{ $.steps.p.branches }}"}), &[])
    ]);
    let ran = Harness::new().run(steps, json!({})).await;
    ran.assert_success();
    assert!(ran.ran("x") && ran.ran("y"));
    assert_eq!(ran.output("j"), json!({"a": 1, "p": ["x", "y"]}));
    assert_eq!(ran.keys().iter().filter(|k| *k == "j").count(), 1);
    let seq_j = ran.records().iter().find(|r| r.step_key == "j").unwrap().seq;
    assert_eq!(seq_j as usize, ran.records().len());
}

fn foreach(id: &str, items: Value, body: &[&str], then: &[&str]) -> Value {
    control(id, "foreach", json!({"items": items}), json!({"branches": {"body": body}}), then)
}

/// P5: a loop over an empty list crashed or hung; it must finish at once with `[]`.
#[tokio::test]
async fn loop_over_empty_list_finishes() {
    let h = Harness::new();
    for (items, input) in
        [(json!([]), json!({})), (json!("{{ $.trigger.body.list }}"), json!({"list": []}))]
    {
        let steps = json!([
            trigger("t", &["l"]),
            foreach("l", items, &["b"], &["after"]),
            echo("b", json!({"i": "{{ $.item }}"}), &[]),
            echo("after", json!({}), &[])
        ]);
        let ran = h.run(steps, input).await;
        ran.assert_success();
        assert_eq!(ran.output("l"), json!([]));
        assert!(ran.ran("after") && !ran.keys().iter().any(|k| k.starts_with("b#")));
    }
    // [[]]: one iteration whose inner loop over the empty item finishes at once.
    let steps = json!([
        trigger("t", &["outer"]),
        foreach("outer", json!([[]]), &["inner"], &["after"]),
        foreach("inner", json!("{{ $.item }}"), &["b"], &[]),
        echo("b", json!({}), &[]),
        echo("after", json!({}), &[])
    ]);
    let ran = h.run(steps, json!({})).await;
    ran.assert_success();
    assert_eq!(ran.output("outer"), json!([[]]));
    assert_eq!(ran.output("inner#0"), json!([]));
}

#[tokio::test]
async fn nested_foreach_keys_and_outputs() {
    let steps = json!([
        trigger("t", &["outer"]),
        foreach("outer", json!([[1, 2], [3]]), &["inner"], &[]),
        foreach("inner", json!("{{ $.item }}"), &["b"], &[]),
        echo(
            "b",
            json!({"v": "{{ $.item }}", "o": "{{ $.loops.outer.index }}",
            "i": "{{ $.index }}"}),
            &[]
        )
    ]);
    let ran = Harness::new().run(steps, json!({})).await;
    ran.assert_success();
    assert_eq!(ran.output("b#1.0"), json!({"v": 3, "o": 1, "i": 0}));
    assert_eq!(
        ran.output("outer"),
        json!([[{"v": 1, "o": 0, "i": 0}, {"v": 2, "o": 0, "i": 1}], [{"v": 3, "o": 1, "i": 0}]])
    );
}

#[tokio::test]
async fn foreach_concurrency_keeps_order() {
    let mut each = foreach("l", json!([30, 1, 10]), &["s"], &[]);
    each["call"]["actionRef"]["config"]["concurrency"] = json!(3);
    let steps = json!([
        trigger("t", &["l"]),
        each,
        crate::action("s", "Test", "sleep", json!({"ms": "{{ $.item }}"}), &["e"]),
        echo("e", json!({"v": "{{ $.item }}"}), &[])
    ]);
    let ran = Harness::new().run(steps, json!({})).await;
    ran.assert_success();
    assert_eq!(ran.output("l"), json!([{"v": 30}, {"v": 1}, {"v": 10}]));
}

fn while_step(id: &str, below: u64, config: Value) -> Value {
    let mut config = config;
    config["branches"] = json!({"body": ["w_body"]});
    control(
        id,
        "while",
        json!({"conditions": [
        {"left": "{{ $.index }}", "operator": "<", "right": below}]}),
        config,
        &[],
    )
}

#[tokio::test]
async fn while_runs_until_false_and_fails_past_its_cap() {
    let h = Harness::new();
    let steps = json!([
        trigger("t", &["w"]),
        while_step("w", 3, json!({})),
        echo("w_body", json!({"i": "{{ $.index }}"}), &[])
    ]);
    let ran = h.run(steps, json!({})).await;
    ran.assert_success();
    assert_eq!(ran.output("w"), json!({"iterations": 3, "last": {"i": 2}}));
    let steps = json!([
        trigger("t", &["w"]),
        while_step("w", 1000, json!({"max_iterations": 4})),
        echo("w_body", json!({}), &[])
    ]);
    let ran = h.run(steps, json!({})).await;
    assert_eq!(ran.outcome.status, RunStatus::Fail);
    let message = ran.outcome.message.unwrap();
    assert!(message.contains("`w`") && message.contains("after 4 iterations"), "{message}");
}

#[tokio::test]
async fn break_continue_and_terminate() {
    let h = Harness::new();
    // Body: check -> (yes: continue | no: nothing) -> ... ; break at item 3.
    let steps = json!([
        trigger("t", &["l"]),
        foreach("l", json!([1, 2, 3, 4]), &["c"], &["after"]),
        control(
            "c",
            "switch",
            json!({"value": "{{ $.item }}"}),
            json!({"branches": {"2": ["skip"], "3": ["stop"]}}),
            &["b"]
        ),
        control("skip", "continue", json!({}), json!({}), &[]),
        control("stop", "break", json!({}), json!({}), &[]),
        echo("b", json!({"v": "{{ $.item }}"}), &[]),
        echo("after", json!({}), &[])
    ]);
    let ran = h.run(steps, json!({})).await;
    ran.assert_success();
    assert_eq!(ran.output("l"), json!([{"v": 1}, null]));
    assert!(ran.ran("after") && !ran.ran("b#1") && !ran.ran("c#3"));

    let steps = json!([
        trigger("t", &["end"]),
        control(
            "end",
            "terminate",
            json!({"status": "fail", "message": "stop here"}),
            json!({}),
            &["never"]
        ),
        echo("never", json!({}), &[])
    ]);
    let ran = h.run(steps, json!({})).await;
    assert_eq!(ran.outcome.status, RunStatus::Fail);
    assert_eq!(ran.outcome.message.as_deref(), Some("stop here"));
    assert!(!ran.ran("never"));
}

#[tokio::test]
async fn scope_catches_failures_and_exposes_the_error() {
    let h = Harness::new();
    let scope = |branches: Value| {
        control("s", "scope", json!({}), json!({"branches": branches}), &["after"])
    };
    let steps = json!([
        trigger("t", &["s"]),
        scope(json!({"try": ["bad"], "catch": ["handle"]})),
        crate::action("bad", "Test", "fail", json!({}), &[]),
        echo("handle", json!({"e": "{{ $.error.message }}", "who": "{{ $.error.step_id }}"}), &[]),
        echo("after", json!({}), &[])
    ]);
    let ran = h.run(steps, json!({})).await;
    ran.assert_success();
    assert_eq!(ran.output("handle"), json!({"e": "boom", "who": "bad"}));
    assert_eq!(ran.output("s")["status"], "caught");
    assert!(ran.ran("after"));

    let steps = json!([
        trigger("t", &["s"]),
        scope(json!({"try": ["bad"]})),
        crate::action("bad", "Test", "fail", json!({}), &[]),
        echo("after", json!({}), &[])
    ]);
    let ran = h.run(steps, json!({})).await;
    assert_eq!(ran.outcome.status, RunStatus::Fail);
    assert_eq!(ran.outcome.message.as_deref(), Some("step `bad` failed: boom"));
    assert!(!ran.ran("after"));
}

#[tokio::test]
async fn shard_splits_into_chunks() {
    let steps = json!([
        trigger("t", &["s"]),
        control("s", "shard", json!({"items": "{{ $.trigger.body }}"}), json!({"size": 2}), &[])
    ]);
    let ran = Harness::new().run(steps, json!([1, 2, 3, 4, 5])).await;
    assert_eq!(ran.output("s"), json!([[1, 2], [3, 4], [5]]));
}
