//! Connections, custom connectors from OpenAPI, the catalog, templates and key rotation, end
//! to end: a local pet store publishes its OpenAPI document and demands an API key.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::{get, post};
use axum::Json;
use reqwest::StatusCode;
use serde_json::{json, Value};
use workbench::Settings;

use crate::support::{flow, step, temp_dir, trigger, TestApp};

const KEY: &str = "pet-key-7d3f9a1c5e";

#[derive(Clone, Default)]
struct Seen {
    keys: Arc<Mutex<Vec<String>>>,
}

fn pet_document(base: &str) -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Pet store", "version": "1.0.0", "description": "A small pet store"},
        "servers": [{"url": base}],
        "components": {
            "securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "X-Pet-Key"}},
            "schemas": {"Pet": {"type": "object", "required": ["name"], "properties": {
                "id": {"type": "integer"}, "name": {"type": "string"}}}}
        },
        "security": [{"key": []}],
        "paths": {"/pets": {
            "post": {"operationId": "addPet", "summary": "Add a pet",
                "requestBody": {"required": true, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Pet"}}}},
                "responses": {"201": {"description": "Created", "content": {"application/json":
                    {"schema": {"$ref": "#/components/schemas/Pet"}}}}}},
            "get": {"operationId": "listPets", "parameters": [
                {"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "Pets"}}}
        }}
    })
}

/// The pet store: `GET /openapi.json`, and `POST /pets` that needs `X-Pet-Key: KEY`.
async fn pet_store() -> (String, Seen) {
    let seen = Seen::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let doc = pet_document(&base);
    let app = axum::Router::new()
        .route("/openapi.json", get(move || async move { Json(doc) }))
        .route(
            "/pets",
            post(
                |State(seen): State<Seen>, headers: HeaderMap, Json(pet): Json<Value>| async move {
                    let key = headers.get("x-pet-key").and_then(|v| v.to_str().ok()).unwrap_or("");
                    seen.keys.lock().unwrap().push(key.to_owned());
                    if key != KEY {
                        return (AxumStatus::UNAUTHORIZED, Json(json!({"error": "no key"})));
                    }
                    (AxumStatus::CREATED, Json(json!({"id": 7, "name": pet["name"]})))
                },
            ),
        )
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

async fn make_connector(app: &TestApp, base: &str) -> String {
    let doc: Value =
        reqwest::get(format!("{base}/openapi.json")).await.unwrap().json().await.unwrap();
    let (status, body) = app
        .post(
            "/v2/{p}/connectors/custom-connectors",
            &json!({"api_config": {"name": "Pets"}, "swagger": doc}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Pets");
    assert_eq!(body["version"], "1");
    body["id"].as_str().unwrap().to_owned()
}

async fn make_connection(app: &TestApp, name: &str) -> String {
    let (status, body) = app
        .post(
            "/v1/{p}/connections",
            &json!({"connection_name": name, "auth_type": "API_KEY",
                    "auth_info": {"api_key": KEY}, "description": "pet store key"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["res_code"], 200);
    assert_eq!(body["res_msg"], "success");
    body["id"].as_str().unwrap().to_owned()
}

fn pet_flow(name: &str, connector: &str, connection: &str) -> Value {
    let mut add = step("add", connector, "addPet", json!({"body": {"name": "Rex"}}), &[]);
    add["call"]["actionRef"]["authentication"] = json!({"connectionId": connection});
    flow(name, vec![trigger(&["add"]), add])
}

fn error_code(body: &Value) -> &str {
    body["error_code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_custom_connector_calls_the_pet_store_with_the_sealed_key() {
    let app = TestApp::spawn().await;
    let (base, seen) = pet_store().await;
    let connector = make_connector(&app, &base).await;
    let connection = make_connection(&app, "pets").await;

    let (flow_id, run_id) =
        app.start_run(&pet_flow("adopt", &connector, &connection), json!({})).await;
    let detail = app.wait_run(&flow_id, &run_id, Duration::from_secs(30)).await;
    assert_eq!(detail["status"], "success", "{detail}");
    assert_eq!(seen.keys.lock().unwrap().as_slice(), [KEY.to_string()]);
    let add = detail["steps"].as_array().unwrap().iter().find(|s| s["stepId"] == "add").unwrap();
    assert_eq!(add["output"]["status"], 201, "{add}");
    assert_eq!(add["output"]["body"]["name"], "Rex");
    assert!(!detail.to_string().contains(KEY), "the run detail shows the key: {detail}");

    // Only ciphertext in the database.
    let pool = &app.server.as_ref().unwrap().pool;
    let (sealed, rest): (Vec<u8>, String) = sqlx::query_as(
        "SELECT auth_sealed, concat_ws(' ', name, auth_masked::text, settings::text) \
         FROM connections",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(!sealed.windows(KEY.len()).any(|w| w == KEY.as_bytes()));
    assert!(!rest.contains(KEY), "{rest}");
    let steps: String = sqlx::query_scalar(
        "SELECT coalesce(string_agg(concat_ws(' ', input::text, output::text, error), ' '), '') \
         FROM run_records",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(!steps.contains(KEY));

    // C5 and C4 mask the secret.
    let (status, info) = app.get(&format!("/v1/{{p}}/connections/{connection}")).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["auth_info"]["api_key"], "****");
    assert_eq!(info["connection_name"], "pets");
    assert!(info["create_time"].as_str().unwrap().ends_with('Z'));
    let (_, list) = app.get("/v1/{p}/connections?offset=1&limit=10").await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["connections"][0]["auth_info"]["api_key"], "****");

    // C2 with the masked value keeps the key; the flow still authenticates.
    let (status, body) = app
        .put(
            &format!("/v1/{{p}}/connections/{connection}"),
            &json!({"description": "renamed", "auth_info": {"api_key": "****"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The catalog lists built-ins and the custom connector.
    let (_, catalog) = app.get("/v2/{p}/connectors?offset=0&limit=100").await;
    let ids: Vec<&str> =
        catalog["connectors"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
    assert!(ids.contains(&"HTTP") && ids.contains(&connector.as_str()), "{ids:?}");
    let (_, custom) = app.get("/v2/{p}/connectors?offset=0&limit=100&scope=custom").await;
    assert_eq!(custom["count"], 1);
    let actions = custom["connectors"][0]["actions"].as_array().unwrap();
    let ops: Vec<&str> = actions.iter().filter_map(|a| a["operation_id"].as_str()).collect();
    assert!(ops.contains(&"addPet") && ops.contains(&"listPets"), "{ops:?}");
    assert_eq!(custom["connectors"][0]["status"], "dev");

    // In use: the connection by the enabled flow, the connector by the flow.
    let (status, body) = app.delete(&format!("/v1/{{p}}/connections/{connection}")).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "MSSI.00017010"));
    let path = format!("/v2/{{p}}/connectors/custom-connectors/{connector}");
    let (status, body) = app.delete(&path).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "MSSI.00010005"));

    // Disabled and deleted, both go.
    app.post(&format!("/v1/{{p}}/flows/{flow_id}/disable"), &json!({})).await;
    let (status, _) = app.delete(&format!("/v1/{{p}}/connections/{connection}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.delete(&format!("/v1/{{p}}/flows/{flow_id}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.delete(&path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn connection_and_connector_errors_carry_their_codes() {
    let app = TestApp::spawn().await;
    let (base, _) = pet_store().await;
    let missing = uuid::Uuid::new_v4();

    let (status, body) = app.get(&format!("/v1/{{p}}/connections/{missing}")).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "MSSI.00015001"));
    let (_, body) = app.delete(&format!("/v1/{{p}}/connections/{missing}")).await;
    assert_eq!(error_code(&body), "MSSI.00015001");
    make_connection(&app, "twice").await;
    let (status, body) = app
        .post("/v1/{p}/connections", &json!({"connection_name": "twice", "auth_type": "none"}))
        .await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "MSSI.00015002"));
    let (_, body) = app
        .post("/v1/{p}/connections", &json!({"connection_name": "b", "auth_type": "basic"}))
        .await;
    assert_eq!(error_code(&body), "MSSI.00020011");
    assert!(body["error_msg"].as_str().unwrap().contains("username"), "{body}");

    let k3 = "/v2/{p}/connectors/custom-connectors";
    let (status, body) = app.post(k3, &json!({"swagger": {"info": {"title": "x"}}})).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "MSSI.00017008"));
    assert!(body["error_msg"].as_str().unwrap().contains("openapi"), "{body}");
    let dangling = json!({"openapi": "3.0.0", "info": {"title": "d"}, "paths": {"/a": {"get": {
        "operationId": "a", "responses": {"200": {"$ref": "#/components/responses/Gone"}}}}}});
    let (_, body) = app.post(k3, &json!({"swagger": dangling})).await;
    assert!(body["error_msg"].as_str().unwrap().contains("#/components/responses/Gone"));
    let yaml = "openapi: 3.0.0\ninfo: {title: Yaml}\npaths:\n  /a:\n    get:\n      \
                operationId: a\n      responses: {'200': {description: ok}}\n";
    let (status, body) = app.post(k3, &json!({"swagger": yaml})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Yaml");

    let (_, body) = app.delete(&format!("{k3}/HTTP")).await;
    assert_eq!(error_code(&body), "MSSI.00010004");
    let (_, body) = app.delete(&format!("{k3}/{missing}")).await;
    assert_eq!(error_code(&body), "MSSI.00010001");
    let (_, body) = app.post(&format!("{k3}/{missing}/release"), &json!({})).await;
    assert_eq!(error_code(&body), "MSSI.00010001");

    // K5 releases; K2 shows it.
    let connector = make_connector(&app, &base).await;
    let (status, body) = app.post(&format!("{k3}/{connector}/release"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, list) = app.get(&format!("{k3}?offset=0&limit=10&name=Pets")).await;
    assert_eq!(list["count"], 1, "{list}");
    let info = &list["connector_infos"][0];
    assert_eq!(info["status"], "released");
    assert_eq!(info["release_version"], "1");
    assert!(info["swagger"].as_str().unwrap().contains("addPet"));

    // A flow may be saved before its connection exists, but not enabled.
    let flow_id = app.create_flow(&pet_flow("early", &connector, &missing.to_string())).await;
    let enable = format!("/v1/{{p}}/flows/{flow_id}/enable");
    let (status, body) = app.post(&enable, &json!({})).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "MSSI.00020011"));
    assert!(body["error_msg"].as_str().unwrap().contains(&missing.to_string()), "{body}");
    let connection = make_connection(&app, "late").await;
    let definition = pet_flow("early", &connector, &connection);
    let (status, body) = app.put(&format!("/v1/{{p}}/flows/{flow_id}"), &definition).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.post(&enable, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn templates_copy_flows_and_make_new_ones() {
    let app = TestApp::spawn().await;
    let noop = step("t", "DataTransform", "transform", json!({"value": 1}), &[]);
    let flow_id = app.create_flow(&flow("original", vec![trigger(&["t"]), noop])).await;
    let missing = uuid::Uuid::new_v4();

    let path = format!("/v1/{{p}}/flows/{flow_id}/templates");
    let (status, body) =
        app.post(&path, &json!({"template_name": "tpl", "template_label": "demo"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let template = body["template_id"].as_str().unwrap().to_owned();
    assert_eq!(body["flow_id"], template.as_str());
    let (_, body) = app.post(&path, &json!({"template_name": "tpl"})).await;
    assert_eq!(error_code(&body), "MSSI.00017006");
    let (_, body) = app
        .post(
            &format!("/v1/{{p}}/flows/{missing}/templates"),
            &json!({"template_name": "x", "template_label": "y"}),
        )
        .await;
    assert_eq!(error_code(&body), "MSSI.00011001");

    let (_, list) = app.get("/v1/{p}/templates?offset=0&limit=10").await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["templates"][0]["template_label"], "demo");

    let (status, body) =
        app.post(&format!("/v1/{{p}}/templates/{template}/flows"), &json!({"name": "copy"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let copy = body["flow_id"].as_str().unwrap();
    let (_, meta) = app.get(&format!("/v2/{{p}}/flows/{copy}")).await;
    assert_eq!(meta["name"], "copy");
    assert_eq!(meta["steps"].as_array().unwrap().len(), 2);
    let (_, body) =
        app.post(&format!("/v1/{{p}}/templates/{template}/flows"), &json!({"name": "copy"})).await;
    assert_eq!(error_code(&body), "MSSI.00011004");
    let (_, body) =
        app.post(&format!("/v1/{{p}}/templates/{missing}/flows"), &json!({"name": "z"})).await;
    assert_eq!(error_code(&body), "MSSI.00012001");
}

#[tokio::test]
async fn rotating_the_encryption_key_keeps_keys_and_connections_working() {
    let database_url = workbench_test_support::fresh_database_url().await;
    let data_dir = temp_dir("rotate");
    let settings = Settings {
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: Some(database_url),
        data_dir: data_dir.clone(),
        workers: 1,
        ..Settings::default()
    };
    let (base, seen) = pet_store().await;

    let server = workbench::server::start(settings.clone()).await.unwrap();
    let app = TestApp::attach(server.addr, &data_dir);
    let connector = make_connector(&app, &base).await;
    let connection = make_connection(&app, "pets").await;
    let flow_id = app.create_flow(&pet_flow("adopt", &connector, &connection)).await;
    app.post(&format!("/v1/{{p}}/flows/{flow_id}/enable"), &json!({})).await;
    server.shutdown().await.unwrap();

    let old_key = std::fs::read_to_string(data_dir.join("master.key")).unwrap();
    let db = workbench::database::Database::open(&settings, 2).await.unwrap();
    let old = workbench_api::secrets::Sealer::new(
        workbench::database::load_master_key(&data_dir).unwrap(),
    );
    let rotated = workbench::database::rotate_encryption(&db.pool, &data_dir, &old).await.unwrap();
    assert_eq!((rotated.access_keys, rotated.connections), (1, 1));
    db.close().await;
    assert_ne!(std::fs::read_to_string(data_dir.join("master.key")).unwrap(), old_key);

    // The restarted server opens the same access key and the same connection.
    let server = workbench::server::start(settings.clone()).await.unwrap();
    let app = TestApp::attach(server.addr, &data_dir);
    let run = app.run(&flow_id, json!({})).await;
    let detail = app.wait_run(&flow_id, &run, Duration::from_secs(30)).await;
    assert_eq!(detail["status"], "success", "{detail}");
    assert_eq!(seen.keys.lock().unwrap().as_slice(), [KEY.to_string()]);
    server.shutdown().await.unwrap();

    // The old key no longer fits the database.
    let db = workbench::database::Database::open(&settings, 2).await.unwrap();
    assert!(workbench::database::check_master_key(&db.pool, &old).await.is_err());
    db.close().await;
}

/// Rotation used to run under a live server, which then answered 500s and kept sealing new
/// secrets under the old key.
#[tokio::test]
async fn rotating_the_encryption_key_is_refused_while_a_server_runs() {
    let database_url = workbench_test_support::fresh_database_url().await;
    let data_dir = temp_dir("rotate-live");
    let settings = Settings {
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: Some(database_url),
        data_dir: data_dir.clone(),
        workers: 1,
        ..Settings::default()
    };
    let server = workbench::server::start(settings.clone()).await.unwrap();
    let old_key = std::fs::read_to_string(data_dir.join("master.key")).unwrap();
    let db = workbench::database::Database::open(&settings, 2).await.unwrap();
    let old = workbench_api::secrets::Sealer::new(
        workbench::database::load_master_key(&data_dir).unwrap(),
    );

    let refused = workbench::database::rotate_encryption(&db.pool, &data_dir, &old).await;
    let message = format!("{:#}", refused.expect_err("rotation ran under a live server"));
    assert!(message.contains("stop every workbench server using this database"), "{message}");
    assert_eq!(std::fs::read_to_string(data_dir.join("master.key")).unwrap(), old_key);
    assert!(workbench::database::check_master_key(&db.pool, &old).await.is_ok());

    // Once the server is gone the rotation goes ahead.
    server.shutdown().await.unwrap();
    workbench::database::rotate_encryption(&db.pool, &data_dir, &old).await.unwrap();
    db.close().await;
}
