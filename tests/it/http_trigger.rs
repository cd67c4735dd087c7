//! The HTTP trigger and the Response action: `/hooks/{webhook}` in sync, async and deadline
//! modes, body handling (P1, P2, P3), caller authentication and refused flows.

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::{flow, now_sdk_date, read, step, Key, TestApp};

/// An HTTP trigger step with `config`.
fn http_trigger(config: Value, transmit: &[&str]) -> Value {
    let mut step = json!({"stepId": "trigger", "name": "http", "call": {
        "connectorRef": "HttpTrigger", "connectorVersion": "1", "triggerRef": {
        "refId": "http_request", "type": "http", "input": {}}}, "transmit": transmit});
    step["call"]["triggerRef"]["config"] = config;
    step
}

fn response(id: &str, input: Value) -> Value {
    step(id, "Response", "response", input, &[])
}

/// A flow whose answer is the trigger's whole output.
fn echo(name: &str, config: Value) -> Value {
    flow(
        name,
        vec![
            http_trigger(config, &["reply"]),
            response("reply", json!({"body": "{{ $.trigger }}"})),
        ],
    )
}

/// Creates and enables a flow; returns its id and hook URL.
async fn serve(app: &TestApp, definition: &Value) -> (String, String) {
    let (status, created) = app.post("/v1/{p}/flows", definition).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["flow_id"].as_str().unwrap().to_owned();
    let path = created["apig_url"].as_str().expect("an apig_url").to_owned();
    assert!(path.starts_with("/hooks/"), "{path}");
    let (status, body) = app.post(&format!("/v1/{{p}}/flows/{id}/enable"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (id, format!("{}{path}", app.base))
}

async fn run_count(app: &TestApp, flow_id: &str) -> i64 {
    let (_, runs) = app.get(&format!("/v2/{{p}}/flows/{flow_id}/running-history")).await;
    runs["count"].as_i64().unwrap()
}

/// POSTs `body` with an optional Content-Type; returns status and parsed body.
async fn post(
    app: &TestApp,
    url: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> (StatusCode, Value) {
    let mut request = app.client.post(url).body(body.to_vec());
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    read(request.send().await.unwrap()).await
}

#[tokio::test]
async fn a_sync_call_gets_the_response_step_answer() {
    let app = TestApp::spawn().await;
    let definition = flow(
        "greeter",
        vec![
            http_trigger(json!({"method": "POST"}), &["shape"]),
            step(
                "shape",
                "DataTransform",
                "transform",
                json!({"value": {"greet": "hi {{ $.trigger.body.name }}"}}),
                &["reply"],
            ),
            response(
                "reply",
                json!({"status": 201, "headers": {"X-Custom": "yes"},
                    "body": {"msg": "{{ $.steps.shape.greet }}", "a": "{{ $.trigger.query.a }}"}}),
            ),
        ],
    );
    let (id, url) = serve(&app, &definition).await;
    let (_, meta) = app.get(&format!("/v2/{{p}}/flows/{id}")).await;
    assert_eq!(meta["type"], "api");
    assert!(url.ends_with(meta["apig_url"].as_str().unwrap()), "{meta}");

    let response =
        app.client.post(format!("{url}?a=1&a=2")).json(&json!({"name": "ann"})).send().await;
    let response = response.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["x-custom"], "yes");
    assert_eq!(response.headers()["content-type"], "application/json");
    let run = response.headers()["x-workbench-run-id"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"msg": "hi ann", "a": ["1", "2"]}));

    let detail = app.wait_run(&id, &run, Duration::from_secs(20)).await;
    assert_eq!(
        (detail["status"].as_str(), detail["run_model"].as_str()),
        (Some("success"), Some("auto"))
    );
    let (status, body) = read(app.client.get(&url).send().await.unwrap()).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("MSSI.00020010"))
    );
}

#[tokio::test]
async fn async_mode_answers_202_at_once_and_the_run_goes_on() {
    let app = TestApp::spawn().await;
    let (id, url) = serve(&app, &echo("later", json!({"mode": "async"}))).await;
    let (status, body) = post(&app, &url, Some("application/json"), b"{\"n\":1}").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let run = body["running_id"].as_str().unwrap();
    let detail = app.wait_run(&id, run, Duration::from_secs(20)).await;
    assert_eq!(detail["status"], "success");
    assert_eq!(detail["steps"][0]["output"]["body"], json!({"n": 1}));
}

#[tokio::test]
async fn a_run_past_the_deadline_is_handed_off_with_202() {
    let app = TestApp::spawn().await;
    let definition = flow(
        "slow",
        vec![
            http_trigger(json!({"deadline_ms": 100}), &["wait"]),
            step("wait", "Delay", "delay", json!({"ms": 1500}), &["reply"]),
            response("reply", json!({"body": "done"})),
        ],
    );
    let (id, url) = serve(&app, &definition).await;
    let (status, body) = post(&app, &url, None, b"").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let run = body["running_id"].as_str().unwrap();
    let detail = app.wait_run(&id, run, Duration::from_secs(20)).await;
    assert_eq!(detail["status"], "success", "{detail}");
}

#[tokio::test]
async fn a_failed_run_without_a_response_answers_the_envelope() {
    let app = TestApp::spawn().await;
    let definition = flow(
        "broken",
        vec![
            http_trigger(json!({}), &["x"]),
            step(
                "x",
                "DataTransform",
                "transform",
                json!({"value": "{{ $.trigger.body.no }}"}),
                &[],
            ),
        ],
    );
    let (_, url) = serve(&app, &definition).await;
    let (status, body) = post(&app, &url, Some("application/json"), b"{}").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error_code"], "MSSI.00029999");
    assert!(body["running_id"].is_string(), "{body}");
    assert!(body["error_msg"].as_str().unwrap().contains("`x`"), "{body}");
}

/// P1: whatever the Content-Type, the body reaches the run.
#[tokio::test]
async fn every_content_type_keeps_the_body() {
    let app = TestApp::spawn().await;
    let (id, url) = serve(&app, &echo("bodies", json!({}))).await;
    let payload = br#"{"test":"ok"}"#;
    let text = json!("{\"test\":\"ok\"}");
    for (content_type, expected) in [
        (None, text.clone()),
        (Some(""), text.clone()),
        (Some("text/plain"), text.clone()),
        (Some("application/octet-stream"), text.clone()),
        (Some("application/cloudevents+json; charset=utf-8"), json!({"test": "ok"})),
        (Some("application/json"), json!({"test": "ok"})),
    ] {
        let (status, out) = post(&app, &url, content_type, payload).await;
        assert_eq!(status, StatusCode::OK, "{content_type:?}: {out}");
        assert_eq!(out["body"], expected, "{content_type:?}");
        assert_eq!(out["content_type"].as_str(), content_type, "{content_type:?}");
        assert_eq!(out["method"], "POST");
    }
    let form = b"a=1&a=2&b=%F0%9F%98%80";
    let (_, out) = post(&app, &url, Some("application/x-www-form-urlencoded"), form).await;
    assert_eq!(out["body"], json!({"a": ["1", "2"], "b": "😀"}));
    let (_, out) = post(&app, &url, Some("application/octet-stream"), &[0xff, 0xfe, 0]).await;
    assert_eq!((&out["body"], &out["body_encoding"]), (&json!("//4A"), &json!("base64")));

    let (_, runs) = app.get(&format!("/v2/{{p}}/flows/{id}/running-history?limit=100")).await;
    assert_eq!(runs["count"], 8);
    assert!(runs["histories"].as_array().unwrap().iter().all(|r| r["run_model"] == "auto"));
}

/// P2: empty and scalar JSON bodies are inputs; malformed JSON starts nothing; odd keys work.
#[tokio::test]
async fn json_bodies_keep_their_type_and_odd_keys() {
    let app = TestApp::spawn().await;
    let (id, url) = serve(&app, &echo("json", json!({}))).await;
    let (status, out) = post(&app, &url, Some("application/json"), b"").await;
    assert_eq!((status, &out["body"]), (StatusCode::OK, &Value::Null), "{out}");
    for text in ["{}", "[]", "null", "42", "\"x\""] {
        let (status, out) = post(&app, &url, Some("application/json"), text.as_bytes()).await;
        let expected: Value = serde_json::from_str(text).unwrap();
        assert_eq!((status, &out["body"]), (StatusCode::OK, &expected), "{text}");
    }
    let before = run_count(&app, &id).await;
    let (status, out) = post(&app, &url, Some("application/json"), b"{").await;
    assert_eq!(
        (status, out["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MSSI.00017001"))
    );
    assert_eq!(run_count(&app, &id).await, before, "a malformed body starts no run");

    let keys = flow(
        "keys",
        vec![
            http_trigger(json!({}), &["reply"]),
            response(
                "reply",
                json!({"body": {"smile": "{{ $.trigger.body['😀'] }}",
                    "dotted": "{{ $.trigger.body['a.b'] }}"}}),
            ),
        ],
    );
    let (_, url) = serve(&app, &keys).await;
    let body = r#"{"😀": 1, "a.b": [2]}"#.as_bytes();
    let (status, out) = post(&app, &url, Some("application/json"), body).await;
    assert_eq!((status, out), (StatusCode::OK, json!({"smile": 1, "dotted": [2]})));
}

/// P3: the body limit holds before a run exists; deep nesting is a 400, not a crash.
#[tokio::test]
async fn large_and_deep_bodies_are_bounded() {
    let limit = 64 * 1024;
    let app = TestApp::spawn_with(|s| s.body_limit = limit).await;
    let definition = flow(
        "sizes",
        vec![
            http_trigger(json!({}), &["reply"]),
            response("reply", json!({"body": {"len": "{{ $.trigger.body.s }}"}})),
        ],
    );
    let (id, url) = serve(&app, &definition).await;
    let under = format!("{{\"s\":\"{}\"}}", "x".repeat(limit - 10));
    let (status, out) = post(&app, &url, Some("application/json"), under.as_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["len"].as_str().map(str::len), Some(limit - 10));

    let over = format!("{{\"s\":\"{}\"}}", "x".repeat(limit));
    let (status, out) = post(&app, &url, Some("application/json"), over.as_bytes()).await;
    assert_eq!(
        (status, out["error_code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("MSSI.00020013"))
    );
    let head = chunked_post(&app, &url, limit * 4).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");

    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let (status, out) = post(&app, &url, Some("application/json"), deep.as_bytes()).await;
    assert_eq!(
        (status, out["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MSSI.00017001"))
    );
    assert_eq!(run_count(&app, &id).await, 1, "only the body under the limit ran");
}

/// POSTs a chunked JSON body (no Content-Length) of `total` bytes over a raw connection;
/// returns the head of the answer.
async fn chunked_post(app: &TestApp, url: &str, total: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let path = url.strip_prefix(&app.base).unwrap();
    let stream = tokio::net::TcpStream::connect(&app.host).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        app.host
    );
    let writing = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let chunk = [b' '; 8192];
        for _ in 0..total / chunk.len() {
            writer.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
            writer.write_all(&chunk).await?;
            writer.write_all(b"\r\n").await?;
        }
        writer.write_all(b"0\r\n\r\n").await
    });
    let mut answer = vec![0; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), reader.read(&mut answer)).await;
    writing.abort();
    let n = read.expect("an answer in time").unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test]
async fn hmac_mode_checks_the_body_signature() {
    let app = TestApp::spawn().await;
    let (id, url) = serve(&app, &echo("signed", json!({"auth": "hmac", "secret": "s3cret"}))).await;
    let body = br#"{"n":1}"#;
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(body);
    let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let send = |signature: Option<String>| {
        let mut request = app.client.post(&url).header(CONTENT_TYPE, "application/json");
        if let Some(signature) = signature {
            request = request.header("X-Workbench-Signature", signature);
        }
        request.body(body.to_vec()).send()
    };
    let (status, out) = read(send(Some(good)).await.unwrap()).await;
    assert_eq!((status, &out["body"]), (StatusCode::OK, &json!({"n": 1})), "{out}");
    for bad in [None, Some(format!("sha256={}", "0".repeat(64))), Some("md5=00".into())] {
        let (status, out) = read(send(bad.clone()).await.unwrap()).await;
        assert_eq!(
            (status, out["error_code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("APIGW.0301")),
            "{bad:?}"
        );
    }
    assert_eq!(run_count(&app, &id).await, 1);
}

#[tokio::test]
async fn token_and_aksk_modes_need_the_flows_project() {
    let app = TestApp::spawn().await;
    let (_, url) = serve(&app, &echo("by-token", json!({"auth": "token"}))).await;
    let token = app.token().await;
    let response = app.client.post(&url).header("X-Auth-Token", &token).send().await.unwrap();
    let (status, out) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert!(out["headers"].get("x-auth-token").is_none(), "credentials stay out of the run");
    for token in [None, Some("nonsense")] {
        let mut request = app.client.post(&url);
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        let (status, out) = read(request.send().await.unwrap()).await;
        assert_eq!(
            (status, out["error_code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("APIGW.0301"))
        );
    }

    let (_, url) = serve(&app, &echo("by-key", json!({"auth": "aksk"}))).await;
    let path = url.strip_prefix(&app.base).unwrap().to_owned();
    let body = br#"{"k":true}"#;
    let date = now_sdk_date();
    let key = Key { ak: &app.ak, sk: &app.sk, date: &date };
    let headers = app.sign(&Method::POST, &path, body, key);
    let response = app.client.post(&url).headers(headers.clone()).body(body.to_vec()).send();
    let (status, out) = read(response.await.unwrap()).await;
    assert_eq!((status, &out["body"]), (StatusCode::OK, &json!({"k": true})), "{out}");
    let tampered = app.client.post(&url).headers(headers).body(b"{\"k\":false}".to_vec()).send();
    let (status, _) = read(tampered.await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn disabled_unknown_and_manual_flows_serve_nothing() {
    let app = TestApp::spawn().await;
    let (id, url) = serve(&app, &echo("switched", json!({}))).await;
    app.post(&format!("/v1/{{p}}/flows/{id}/disable"), &json!({})).await;
    let (status, out) = post(&app, &url, None, b"x").await;
    assert_eq!(
        (status, out["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("MSSI.00020018"))
    );
    assert_eq!(run_count(&app, &id).await, 0);

    let (status, out) = post(&app, &format!("{}/hooks/nope", app.base), None, b"x").await;
    assert_eq!(
        (status, out["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("MSSI.00020001"))
    );

    let manual = flow("manual", vec![crate::support::trigger(&[])]);
    let (_, created) = app.post("/v1/{p}/flows", &manual).await;
    assert!(created["apig_url"].is_null(), "{created}");
    let (_, meta) =
        app.get(&format!("/v2/{{p}}/flows/{}", created["flow_id"].as_str().unwrap())).await;
    let hook = format!("{}/hooks/{}", app.base, meta["webhook"].as_str().unwrap());
    let (status, out) = post(&app, &hook, None, b"x").await;
    assert_eq!(
        (status, out["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("MSSI.00020001"))
    );

    let bad = echo("misconfigured", json!({"auth": "hmac"}));
    let (status, out) = app.post("/v1/{p}/flows", &bad).await;
    assert_eq!(
        (status, out["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MSSI.00020011")),
        "{out}"
    );
}

/// A Response step with status 204 or 304 used to send its body, Content-Length and
/// Content-Type, which those statuses must not carry.
#[tokio::test]
async fn no_content_statuses_are_sent_without_a_body() {
    let app = TestApp::spawn().await;
    for status in [204, 304] {
        let definition = flow(
            &format!("empty {status}"),
            vec![
                http_trigger(json!({"method": "POST"}), &["reply"]),
                response(
                    "reply",
                    json!({"status": status, "headers": {"Content-Type": "text/plain", "X-A": "b"},
                        "body": {"ignored": true}}),
                ),
            ],
        );
        let (_, url) = serve(&app, &definition).await;
        let answer = app.client.post(&url).json(&json!({})).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), status);
        assert_eq!(answer.headers()["x-a"], "b");
        assert!(answer.headers().get(CONTENT_TYPE).is_none(), "{:?}", answer.headers());
        let length = answer.headers().get("content-length").cloned();
        assert!(length.as_ref().is_none_or(|l| l == "0"), "{length:?}");
        assert!(answer.bytes().await.unwrap().is_empty());
    }
}

/// A manual or R10 run of an HTTP-triggered flow used to hand the trigger the raw input, so
/// `{{ $.trigger.query }}` selected nothing although the flow was valid.
#[tokio::test]
async fn runs_started_without_the_hook_see_a_request_shaped_trigger() {
    let app = TestApp::spawn().await;
    let definition = flow(
        "shaped",
        vec![
            http_trigger(json!({"method": "POST"}), &["shape"]),
            step(
                "shape",
                "DataTransform",
                "transform",
                json!({"value": {"query": "{{ $.trigger.query }}", "method": "{{ $.trigger.method }}",
                    "name": "{{ $.trigger.body.name }}", "type": "{{ $.trigger.content_type }}"}}),
                &["reply"],
            ),
            response("reply", json!({"body": "{{ $.steps.shape }}"})),
        ],
    );
    let (id, _) = serve(&app, &definition).await;
    let expected = json!({"query": {}, "method": "POST", "name": "ann",
        "type": "application/json"});

    let run = app.run(&id, json!({"name": "ann"})).await;
    let detail = app.wait_run(&id, &run, Duration::from_secs(20)).await;
    assert_eq!(detail["status"], "success", "{detail}");
    assert_eq!(detail["steps"][1]["output"], expected);

    let (_, meta) = app.get(&format!("/v2/{{p}}/flows/{id}")).await;
    let hook = meta["webhook"].as_str().unwrap().to_owned();
    let path = format!("/v1/{{p}}/flows/webhook/trigger/{hook}");
    let (status, body) = app.post(&path, &json!({"input": "{\"name\": \"ann\"}"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, runs) = app.get(&format!("/v2/{{p}}/flows/{id}/running-history")).await;
    let hooked = runs["histories"].as_array().unwrap().iter().find(|h| h["id"] != run.as_str());
    let hooked = hooked.unwrap()["id"].as_str().unwrap().to_owned();
    let detail = app.wait_run(&id, &hooked, Duration::from_secs(20)).await;
    assert_eq!(detail["steps"][1]["output"], expected, "{detail}");
}
