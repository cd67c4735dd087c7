//! U+0000, which PostgreSQL text and jsonb cannot hold: refused as bad input at the API, and
//! replaced in what a run records, so that a step producing one never leaves its run (or the
//! other runs recorded with it) `running`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{flow, step, trigger, TestApp};

fn assert_bad_input(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let code = body["error_code"].as_str().unwrap_or_default();
    assert!(code == "MSSI.00017001" || code == "MSSI.00020011", "{body}");
    assert!(body["error_msg"].as_str().unwrap().contains("NUL"), "{body}");
}

#[tokio::test]
async fn a_step_that_outputs_nul_is_recorded_and_other_runs_finish() {
    let app = TestApp::spawn().await;
    let decode = flow(
        "decode-nul",
        vec![
            trigger(&["decode"]),
            step("decode", "Text", "base64_decode", json!({"text": "YQBi"}), &[]),
        ],
    );
    let plain = flow(
        "plain",
        vec![
            trigger(&["x"]),
            step("x", "DataTransform", "transform", json!({"value": {"n": 1}}), &[]),
        ],
    );
    let decode_id = app.create_flow(&decode).await;
    let plain_id = app.create_flow(&plain).await;
    for id in [&decode_id, &plain_id] {
        app.post(&format!("/v1/{{p}}/flows/{id}/enable"), &json!({})).await;
    }

    // Runs submitted together finish in the same recording batches as the poisoned ones.
    let mut runs = Vec::new();
    for i in 0..12 {
        let flow_id = if i % 3 == 0 { &decode_id } else { &plain_id };
        runs.push((flow_id.clone(), app.run(flow_id, json!({})).await));
    }
    for (flow_id, run_id) in &runs {
        let detail = app.wait_run(flow_id, run_id, Duration::from_secs(20)).await;
        assert_eq!(detail["status"], "success", "{detail}");
        if flow_id == &decode_id {
            assert_eq!(detail["steps"][1]["output"], json!({"result": "a\u{FFFD}b"}), "{detail}");
        }
    }
}

#[tokio::test]
async fn nul_in_api_input_is_a_client_error() {
    let app = TestApp::spawn().await;
    let plain = flow(
        "nul-free",
        vec![trigger(&["x"]), step("x", "DataTransform", "transform", json!({"value": 1}), &[])],
    );
    let mut named = plain.clone();
    named["name"] = json!("bad\u{0}name");
    let (status, body) = app.post("/v1/{p}/flows", &named).await;
    assert_bad_input(status, &body);
    let mut keyed = plain.clone();
    keyed["steps"][1]["call"]["actionRef"]["input"] = json!({"k\u{0}": 1});
    let (status, body) = app.post("/v1/{p}/flows", &keyed).await;
    assert_bad_input(status, &body);

    let id = app.create_flow(&plain).await;
    app.post(&format!("/v1/{{p}}/flows/{id}/enable"), &json!({})).await;
    let run = json!({"run_mode": "manual", "input": {"a": "\u{0}"}});
    let (status, body) = app.post(&format!("/v1/{{p}}/flows/{id}/run"), &run).await;
    assert_bad_input(status, &body);
    let (status, body) = app.post("/v1/{p}/connections", &json!({"description": "a\u{0}"})).await;
    assert_bad_input(status, &body);

    for path in [
        "/v1/{p}/flows?offset=0&limit=10&name=%00",
        "/v2/{p}/flows/running-history?name=a%00b",
        "/v1/{p}/connections?offset=1&limit=10&name=%00",
    ] {
        let (status, body) = app.get(path).await;
        assert_bad_input(status, &body);
    }
    let (status, body) = app.get(&format!("/v2/{{p}}/flows/{id}%00/running-history")).await;
    assert_bad_input(status, &body);

    // Nothing was stored by the refused requests.
    let (_, runs) = app.get(&format!("/v2/{{p}}/flows/{id}/running-history")).await;
    assert_eq!(runs["count"], 0, "{runs}");
    let (_, flows) = app.get("/v1/{p}/flows?offset=0&limit=10").await;
    assert_eq!(flows["count"], "1", "{flows}");
}

#[tokio::test]
async fn a_hook_body_with_nul_starts_a_run_that_records_it_replaced() {
    let app = TestApp::spawn().await;
    let hook_trigger = json!({"stepId": "trigger", "name": "http", "call": {
        "connectorRef": "HttpTrigger", "connectorVersion": "1", "triggerRef": {
        "refId": "http_request", "type": "http", "input": {}, "config": {"mode": "async"}}},
        "transmit": ["x"]});
    let echo =
        step("x", "DataTransform", "transform", json!({"value": "{{ $.trigger.body }}"}), &[]);
    let (status, created) =
        app.post("/v1/{p}/flows", &flow("hook-nul", vec![hook_trigger, echo])).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["flow_id"].as_str().unwrap().to_owned();
    app.post(&format!("/v1/{{p}}/flows/{id}/enable"), &json!({})).await;
    let url = format!("{}{}", app.base, created["apig_url"].as_str().unwrap());

    let response = app
        .client
        .post(format!("{url}?q=%00"))
        .header("content-type", "application/json")
        .body(r#"{"k\u0000":"v\u0000"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let (_, accepted) = crate::support::read(response).await;
    let run_id = accepted["running_id"].as_str().expect("a running_id").to_owned();
    let detail = app.wait_run(&id, &run_id, Duration::from_secs(20)).await;
    assert_eq!(detail["status"], "success", "{detail}");
    assert_eq!(detail["steps"][1]["output"], json!({"k\u{FFFD}": "v\u{FFFD}"}), "{detail}");
}
