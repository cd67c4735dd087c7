//! Authentication, project isolation and the error envelope over real HTTP.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{now_sdk_date, Key, TestApp};

#[tokio::test]
async fn signed_requests_pass_and_bad_signatures_fail() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/v1/{p}/flows?limit=10&offset=0").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], "0");

    let date = now_sdk_date();
    let key = Key { ak: &app.ak, sk: &app.sk, date: &date };
    let wrong = Key { sk: "wrong secret", ..key };
    let (status, body) = app.signed_with(Method::GET, "/v1/{p}/flows", None, wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error_code"], "APIGW.0301");
    assert!(body["request_id"].as_str().is_some_and(|r| !r.is_empty()));

    let unknown = Key { ak: "NOSUCHKEY", ..key };
    let (status, body) = app.signed_with(Method::GET, "/v1/{p}/flows", None, unknown).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error_msg"].as_str().unwrap().contains("ak not exist"), "{body}");

    let stale = Key { date: "20200101T000000Z", ..key };
    let (status, _) = app.signed_with(Method::GET, "/v1/{p}/flows", None, stale).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_tampered_body_fails_the_signature() {
    let app = TestApp::spawn().await;
    let path = app.path("/v1/{p}/flows");
    let date = now_sdk_date();
    let signed_body = br#"{"name":"a"}"#;
    let key = Key { ak: &app.ak, sk: &app.sk, date: &date };
    let headers = app.sign(&Method::POST, &path, signed_body, key);
    let response = app
        .client
        .post(format!("{}{path}", app.base))
        .headers(headers)
        .body(r#"{"name":"b"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_project_is_forbidden() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/v1/0123456789abcdef0123456789abcdef/flows").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error_code"], "MSSI.00020004");

    let (status, body) = app.get("/v1/%7Bproject_id%7D/flows").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "MSSI.00020011");
}

#[tokio::test]
async fn tokens_authenticate_and_garbage_does_not() {
    let app = TestApp::spawn().await;
    let token = app.token().await;
    let url = format!("{}{}", app.base, app.path("/v1/{p}/flows"));
    let ok = app.client.get(&url).header("x-auth-token", &token).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let bad = app.client.get(&url).header("x-auth-token", "garbage").send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let none = app.client.get(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);

    let wrong = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": "nope", "domain": {"name": "workbench"}}}}}});
    let response =
        app.client.post(format!("{}/v3/auth/tokens", app.base)).json(&wrong).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn malformed_input_gets_the_envelope_never_a_500() {
    let app = TestApp::spawn().await;
    let token = app.token().await;
    let url = format!("{}{}", app.base, app.path("/v1/{p}/flows"));
    let send =
        |body: &'static str| app.client.post(&url).header("x-auth-token", &token).body(body).send();
    let (status, body) = crate::support::read(send("{").await.unwrap()).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MSSI.00017001"))
    );
    let (status, body) = crate::support::read(send("[1]").await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let deep = Box::leak("[".repeat(10_000).into_boxed_str());
    let (status, _) = crate::support::read(send(deep).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, body) =
        crate::support::read(app.client.get(format!("{}/nowhere", app.base)).send().await.unwrap())
            .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("MSSI.00020014"))
    );
    let (status, _) = crate::support::read(
        app.client.patch(&url).header("x-auth-token", &token).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    let (status, body) = app.get("/v1/{p}/flows?limit=abc").await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MSSI.00020011"))
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_anything_runs() {
    let app = TestApp::spawn_with(|s| s.body_limit = 1024).await;
    let token = app.token().await;
    let url = format!("{}{}", app.base, app.path("/v1/{p}/flows"));
    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(4096));
    let response =
        app.client.post(&url).header("x-auth-token", &token).body(big).send().await.unwrap();
    let (status, body) = crate::support::read(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (_, list) = app.get("/v1/{p}/flows").await;
    assert_eq!(list["count"], "0");
}

#[tokio::test]
async fn operational_endpoints_answer() {
    let app = TestApp::spawn().await;
    for path in ["/health", "/ready", "/metrics", "/openapi.json"] {
        let response = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(response.headers().contains_key("x-request-id"));
    }
    let doc: serde_json::Value = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for route in
        ["/v1/{project_id}/flows", "/v2/{project_id}/flows/running-history", "/v3/auth/tokens"]
    {
        assert!(paths.contains_key(route), "{route} missing from the OpenAPI document");
    }
    // The hook used to be missing; it takes no MSSI credentials, so it lists no security.
    let hook = &paths["/hooks/{webhook}"]["post"];
    assert_eq!(hook["parameters"][0]["name"], "webhook", "{hook}");
    assert!(hook.get("security").is_none(), "{hook}");
    for webhook in ["nope", "a%2Fb", &"f".repeat(200)] {
        let url = format!("{}/hooks/{webhook}", app.base);
        let (status, body) = crate::support::read(app.client.post(url).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{webhook}: {body}");
    }
    // A NUL is refused as bad input, as in every other path.
    let url = format!("{}/hooks/%00", app.base);
    let (status, body) = crate::support::read(app.client.post(url).send().await.unwrap()).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MSSI.00020011"))
    );
    let echoed = app
        .client
        .get(format!("{}/health", app.base))
        .header("x-request-id", "abc-1")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-1");
}

#[tokio::test]
async fn each_endpoint_checks_its_action() {
    let app = TestApp::spawn().await;
    let pool = &app.server.as_ref().unwrap().pool;
    let actions = ["mssi:flow:list".to_owned()];
    workbench_api::tenancy::create_user(pool, "viewer", "Viewer-pass-1", None, &actions)
        .await
        .unwrap();
    let token = app.token_for("viewer", "Viewer-pass-1").await;
    let url = format!("{}{}", app.base, app.path("/v1/{p}/flows"));

    let listed = app.client.get(&url).header("x-auth-token", &token).send().await.unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let created = app
        .client
        .post(&url)
        .header("x-auth-token", &token)
        .json(&json!({"name": "nope", "steps": []}))
        .send()
        .await
        .unwrap();
    let (status, body) = crate::support::read(created).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error_code"], "MSSI.00017002");
    assert!(body["error_msg"].as_str().unwrap().contains("mssi:flow:create"), "{body}");
}

/// `users create` used to accept an empty name, an empty password and any action text.
#[tokio::test]
async fn users_create_refuses_blank_credentials_and_unknown_actions() {
    let database_url = workbench_test_support::fresh_database_url().await;
    let data_dir = crate::support::temp_dir("users");
    let create = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_workbench"))
            .args(["users", "create"])
            .args(args)
            .arg("--data-dir")
            .arg(&data_dir)
            .env("DATABASE_URL", &database_url)
            .env_remove("WORKBENCH_USER_PASSWORD")
            .env("WORKBENCH_LOG", "warn")
            .output()
            .unwrap()
    };
    let refused = [
        (&["--name", "", "--password", "Pass-1"][..], "name must not be empty"),
        (&["--name", "ann", "--password", ""][..], "password must not be empty"),
        (&["--name", "ann", "--password", "Pass-1", "--action", "bogus action!!"][..], "bogus"),
        (&["--name", "ann", "--password", "Pass-1", "--action", "mssi:nope:*"][..], "nope"),
    ];
    for (args, message) in refused {
        let output = create(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }

    let granted = ["--name", "ann", "--password", "Pass-1", "--action", "mssi:flow:*"];
    let output = create(&granted);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Token requests used to get a project token whatever their scope said, or without one.
#[tokio::test]
async fn tokens_need_a_project_scope_the_user_belongs_to() {
    let app = TestApp::spawn().await;
    let request = |scope: Option<serde_json::Value>| {
        let mut body = json!({"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"name": "admin", "password": app.password.clone(),
                     "domain": {"name": "workbench"}}}}}});
        if let Some(scope) = scope {
            body["auth"]["scope"] = scope;
        }
        app.client.post(format!("{}/v3/auth/tokens", app.base)).json(&body).send()
    };
    let refused = [
        (None, StatusCode::BAD_REQUEST),
        (Some(json!(null)), StatusCode::BAD_REQUEST),
        (Some(json!({})), StatusCode::BAD_REQUEST),
        (Some(json!({"project": {}})), StatusCode::BAD_REQUEST),
        (Some(json!({"domain": {"name": "other"}})), StatusCode::BAD_REQUEST),
        (Some(json!({"project": {"id": "not-mine"}})), StatusCode::UNAUTHORIZED),
        (Some(json!({"project": {"name": "elsewhere"}})), StatusCode::UNAUTHORIZED),
        (
            Some(json!({"project": {"name": "cn-north-4", "domain": {"name": "other"}}})),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (scope, expected) in refused {
        let (status, body) = crate::support::read(request(scope.clone()).await.unwrap()).await;
        assert_eq!(status, expected, "{scope:?}: {body}");
        let code = if expected == StatusCode::BAD_REQUEST { "MSSI.00020011" } else { "APIGW.0301" };
        assert_eq!(body["error_code"], code, "{scope:?}: {body}");
    }

    let by_id = json!({"project": {"id": app.project_id}});
    let by_name = json!({"project": {"name": "cn-north-4", "domain": {"name": "workbench"}}});
    for scope in [by_id, by_name] {
        let response = request(Some(scope.clone())).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{scope}");
    }
}
