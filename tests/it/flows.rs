//! Flow definitions: F1–F5, R8, R9.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{flow, step, trigger, TestApp};

fn simple(name: &str) -> serde_json::Value {
    let mut f = flow(
        name,
        vec![
            trigger(&["x"]),
            step("x", "DataTransform", "transform", json!({"value": {"n": 1}}), &[]),
        ],
    );
    f["tags"] = json!([{"tagKey": "env", "tagValue": "test"}]);
    f["graph"] = json!({"nodes": [1, 2]});
    f["unknown_key"] = json!({"kept": true});
    f["schemaVersion"] = json!("2.0");
    f
}

#[tokio::test]
async fn a_flow_round_trips_with_versions() {
    let app = TestApp::spawn().await;
    let id = app.create_flow(&simple("orders")).await;

    let (status, meta) = app.get(&format!("/v2/{{p}}/flows/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{meta}");
    assert_eq!(meta["id"], id);
    assert_eq!(meta["version"], "1");
    assert_eq!(meta["status"], "disable");
    assert_eq!(meta["type"], "instant");
    assert_eq!(meta["unknown_key"], json!({"kept": true}));
    assert_eq!(meta["tags"][0]["tagKey"], "env");
    assert_eq!(meta["schemaVersion"], "2.0");
    let created = meta["creatd_time"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");

    let mut changed = simple("orders v2");
    changed["description"] = json!("second");
    let (status, body) = app.put(&format!("/v1/{{p}}/flows/{id}"), &changed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, latest) = app.get(&format!("/v2/{{p}}/flows/{id}")).await;
    assert_eq!(
        (latest["version"].as_str(), latest["name"].as_str()),
        (Some("2"), Some("orders v2"))
    );
    let (_, first) = app.get(&format!("/v2/{{p}}/flows/{id}?version=1")).await;
    assert_eq!((first["version"].as_str(), first["name"].as_str()), (Some("1"), Some("orders")));
    let (status, body) = app.get(&format!("/v2/{{p}}/flows/{id}?version=9")).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MSSI.00011001"))
    );

    let (_, list) = app.get("/v1/{p}/flows?offset=0&limit=10&name=v2").await;
    assert_eq!(list["count"], "1");
    assert_eq!(list["flow_metas"][0]["id"], id);
    let (_, none) = app.get("/v1/{p}/flows?offset=0&limit=10&name=zzz").await;
    assert_eq!(none["count"], "0");
    let (_, typed) = app.get("/v1/{p}/flows?offset=0&limit=10&type=instant").await;
    assert_eq!(typed["count"], "1");
}

#[tokio::test]
async fn names_are_unique_per_project() {
    let app = TestApp::spawn().await;
    app.create_flow(&simple("same")).await;
    let (status, body) = app.post("/v1/{p}/flows", &simple("same")).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MSSI.00011004"))
    );
}

#[tokio::test]
async fn broken_graphs_are_refused_naming_step_and_rule() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            flow("none", vec![step("x", "DataTransform", "transform", json!({}), &[])]),
            "MSSI.00020008",
            "",
        ),
        (
            flow("unknown", vec![trigger(&["x"]), step("x", "Nope", "go", json!({}), &[])]),
            "MSSI.00020002",
            "x",
        ),
        (flow("dangling", vec![trigger(&["ghost"])]), "MSSI.00020011", "ghost"),
        (
            flow(
                "cycle",
                vec![
                    trigger(&["a"]),
                    step("a", "DataTransform", "transform", json!({}), &["b"]),
                    step("b", "DataTransform", "transform", json!({}), &["a"]),
                ],
            ),
            "MSSI.00020011",
            "cycle",
        ),
        (
            flow(
                "badref",
                vec![
                    trigger(&["a"]),
                    step(
                        "a",
                        "DataTransform",
                        "transform",
                        json!({"value": "{{ $.steps.b.x }}"}),
                        &["b"],
                    ),
                    step("b", "DataTransform", "transform", json!({}), &[]),
                ],
            ),
            "MSSI.00020011",
            "a",
        ),
    ];
    for (body, code, mentions) in cases {
        let (status, err) = app.post("/v1/{p}/flows", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert_eq!(err["error_code"], code, "{err}");
        assert!(err["error_msg"].as_str().unwrap().contains(mentions), "{err}");
    }
    let (_, list) = app.get("/v1/{p}/flows").await;
    assert_eq!(list["count"], "0");
}

#[tokio::test]
async fn enabled_flows_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let id = app.create_flow(&simple("guarded")).await;
    for _ in 0..2 {
        let (status, body) = app.post(&format!("/v1/{{p}}/flows/{id}/enable"), &json!({})).await;
        assert_eq!(body, json!({"success": true, "message": null}), "{status}");
    }
    let (status, body) = app.delete(&format!("/v1/{{p}}/flows/{id}")).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MSSI.00017011"))
    );
    app.post(&format!("/v1/{{p}}/flows/{id}/disable"), &json!({})).await;
    let (status, body) = app.delete(&format!("/v1/{{p}}/flows/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["res_code"], 200);
    let (status, body) = app.get(&format!("/v2/{{p}}/flows/{id}")).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MSSI.00011001"))
    );
}

#[tokio::test]
async fn unknown_flows_get_their_group_codes() {
    let app = TestApp::spawn().await;
    let ghost = uuid::Uuid::new_v4();
    let (_, body) = app.get(&format!("/v2/{{p}}/flows/{ghost}")).await;
    assert_eq!(body["error_code"], "MSSI.00011001");
    let (_, body) = app.post(&format!("/v1/{{p}}/flows/{ghost}/enable"), &json!({})).await;
    assert_eq!(body["error_code"], "MSSI.00020001");
    let (_, body) = app.post("/v1/{p}/flows/not-a-uuid/run", &json!({"run_mode": "manual"})).await;
    assert_eq!(body["error_code"], "MSSI.00020001");
    let (_, body) = app.get(&format!("/v2/{{p}}/flows/{ghost}/running-history")).await;
    assert_eq!(body["error_code"], "MSSI.00020001");
}

/// FlowMeta fields of the wrong JSON type used to be stored and echoed by F4/F5, which the
/// SDKs then failed to decode.
#[tokio::test]
async fn flow_meta_fields_of_the_wrong_type_are_refused() {
    let app = TestApp::spawn().await;
    for (field, value) in
        [("icon", json!(5)), ("tags", json!("x")), ("is_valid", json!("yes")), ("graph", json!([]))]
    {
        let mut body = simple(&format!("typed {field}"));
        body[field] = value;
        let (status, body) = app.post("/v1/{p}/flows", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
        assert_eq!(body["error_code"], "MSSI.00017006", "{field}: {body}");
        assert!(body["error_msg"].as_str().unwrap().contains(field), "{body}");
    }

    let id = app.create_flow(&simple("typed")).await;
    let mut changed = simple("typed");
    changed["description"] = json!({"not": "a string"});
    let (status, body) = app.put(&format!("/v1/{{p}}/flows/{id}"), &changed).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MSSI.00017006"))
    );
    let (_, list) = app.get("/v1/{p}/flows?offset=0&limit=10").await;
    assert_eq!(list["count"], "1");
}

/// A flow with 200 broken steps used to answer an `error_msg` of 26,892 characters; the
/// contract allows 512.
#[tokio::test]
async fn error_messages_stay_within_the_contract_limit() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "broken", "steps": vec![json!({"stepId": 1}); 200]});
    let (status, body) = app.post("/v1/{p}/flows", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let msg = body["error_msg"].as_str().unwrap();
    assert_eq!(msg.chars().count(), 512, "{msg}");
    assert!(msg.ends_with('…'), "{msg}");
}
