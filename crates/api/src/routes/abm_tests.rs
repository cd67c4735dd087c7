//! HTTP-level tests of the ABM routes: the router in-process (`oneshot`, no socket) on a fresh
//! database, a token caller, and percent-encoded composite URNs in the path.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use tower::ServiceExt;
use workbench_metamodel::wire::AddEntitiesRequest;
use workbench_metamodel::{Metamodel, Scope};

use crate::auth::token::Claims;
use crate::secrets::Sealer;
use crate::{ApiConfig, AppState};

const PROJECT: &str = "0123456789abcdef0123456789abcdef";
const BASE: &str = "/v3/0123456789abcdef0123456789abcdef/abm/instances/default/metadata3";
const DATASET: &str = "urn:abm:Metamodel3-Dataset:(urn:abm:Metamodel3-DataPlatformInstance:\
    (MySQL,3ca1d906860167e88b9bfe0577a69),def.sys.x$wait_classes_global_by_avg_latency)";

struct TestApp {
    router: Router,
    metamodel: Metamodel,
    state: AppState,
}

impl TestApp {
    async fn new() -> Self {
        let pool = workbench_test_support::fresh_pool().await;
        sqlx::query("INSERT INTO domains (id, name) VALUES ('dom', 'dom')")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO projects (id, domain_id, name) VALUES ($1, 'dom', 'p')")
            .bind(PROJECT)
            .execute(&pool)
            .await
            .unwrap();
        let sealer = Arc::new(Sealer::new([7; 32]));
        let state = AppState::new(pool.clone(), ApiConfig::default(), sealer, Arc::default());
        TestApp { router: crate::app(state.clone()), metamodel: Metamodel::new(pool), state }
    }

    fn token(&self, actions: &[&str]) -> String {
        let now = chrono::Utc::now().timestamp();
        self.state.tokens.issue(&Claims {
            sub: "u1".into(),
            name: "user".into(),
            domain_id: "dom".into(),
            domain_name: "dom".into(),
            project_id: PROJECT.into(),
            project_name: "p".into(),
            admin: false,
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
            iat: now,
            exp: now + 3600,
        })
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_as(&["mssi:abm:*"], method, path, body).await
    }

    async fn call_as(
        &self,
        actions: &[&str],
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("x-auth-token", self.token(actions))
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 1 << 24).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

fn encoded(urn: &str) -> String {
    utf8_percent_encode(urn, NON_ALPHANUMERIC).to_string()
}

fn entities(n: usize) -> Value {
    let items: Vec<Value> = (0..n)
        .map(|i| {
            json!({"package_id": "Metamodel3", "entity_name": format!("e{i}"),
                   "entity_type": "Metamodel3-SubjectArea"})
        })
        .collect();
    json!({ "entities": items })
}

#[tokio::test]
async fn add_get_update_and_delete_over_http() {
    let app = TestApp::new().await;
    let (status, body) =
        app.call(Method::POST, &format!("{BASE}/entities"), Some(entities(1))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["msg"], Value::Null);
    let urn = body["success"][0]["entity_urn"].as_str().unwrap().to_owned();
    let path = format!("{BASE}/entities/{}", encoded(&urn));

    let (status, body) = app.call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["entity_name"], "e0");

    let update = json!({"package_id": "Metamodel3", "entity_name": "renamed",
                        "entity_type": "Metamodel3-SubjectArea"});
    let (status, body) = app.call(Method::PUT, &path, Some(update)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["entity_name"], "renamed");

    let (status, body) = app.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"]["success"][0], urn.as_str());
    let (status, body) = app.call(Method::DELETE, &path, None).await;
    assert_eq!((status, &body["error_code"]), (StatusCode::NOT_FOUND, &json!("MSSI.00050021")));
}

#[tokio::test]
async fn batch_over_the_cap_is_refused_and_writes_nothing() {
    let app = TestApp::new().await;
    let (status, body) =
        app.call(Method::POST, &format!("{BASE}/entities"), Some(entities(201))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "MSSI.00050018");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM abm_entities")
        .fetch_one(app.metamodel.pool())
        .await
        .unwrap();
    assert_eq!(count, 0);

    let (status, body) =
        app.call(Method::POST, &format!("{BASE}/entities"), Some(entities(200))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"].as_array().unwrap().len(), 200);
}

#[tokio::test]
async fn composite_urn_in_the_path_and_signatures() {
    let app = TestApp::new().await;
    let mut item: workbench_metamodel::wire::EntityInput = serde_json::from_value(json!({
        "package_id": "Metamodel3", "entity_name": "x$wait", "entity_type": "Metamodel3-Dataset"
    }))
    .unwrap();
    item.entity_urn = Some(DATASET.into());
    let scope = Scope::new(PROJECT, "default");
    let added =
        app.metamodel.add_entities(&scope, AddEntitiesRequest { entities: Some(vec![item]) });
    assert_eq!(added.await.unwrap().success.len(), 1);

    let signatures = json!({"package_id": "Metamodel3", "entity_urn": DATASET, "signatures": [
        {"change_type": "UPsert", "signature_type": "Metamodel3-securityPrivacy",
         "signature_name": "密级隐私", "signature_attributes": [
            {"attribute_id": "Metamodel3-securityPrivacy-NAME", "attribute_value": "tesk0"}]}
    ]});
    let (status, body) =
        app.call(Method::POST, &format!("{BASE}/signatures"), Some(signatures)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"][0]["signature_attributes"][0]["attribute_code"], "NAME");

    let (status, body) =
        app.call(Method::GET, &format!("{BASE}/entities/{}", encoded(DATASET)), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["entity_urn"], DATASET);
    assert_eq!(body["signatures"][0]["version"], "0");
}

#[tokio::test]
async fn relationships_listing_and_lineage() {
    let app = TestApp::new().await;
    let body = json!({"entities": [
        {"package_id": "Metamodel3", "entity_name": "r", "entity_type": "Metamodel3-Report"},
        {"package_id": "Metamodel3", "entity_name": "g", "entity_type": "Metamodel3-ReportGroup"}
    ]});
    let (_, body) = app.call(Method::POST, &format!("{BASE}/entities"), Some(body)).await;
    let report = body["success"][0]["entity_urn"].as_str().unwrap().to_owned();
    let group = body["success"][1]["entity_urn"].as_str().unwrap().to_owned();
    let rel = json!({"relationships": [{"from_urn": report, "target_urn": group,
        "relationship_code": "Metamodel3-Report-Metamodel3-ReportGroup_CO",
        "change_type": "UPsert"}]});
    let (status, body) = app.call(Method::POST, &format!("{BASE}/relationships"), Some(rel)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"][0]["relationship_extend"], Value::Null);

    let path = format!("{BASE}/entities/{}/relationships?direction=in", encoded(&group));
    let (status, body) = app.call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["from_urn"], report.as_str());

    let path = format!("{BASE}/entities/{}/lineage?hops=2&direction=out", encoded(&report));
    let (status, body) = app.call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["nodes"].as_array().unwrap().len(), 2);

    let path = format!("{BASE}/entities?type=Metamodel3-Report&name=R&offset=0&limit=10");
    let (status, body) = app.call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total"], 1);

    let (status, body) = app.call(Method::GET, &format!("{BASE}/entities?limit=x"), None).await;
    assert_eq!((status, &body["error_code"]), (StatusCode::BAD_REQUEST, &json!("MSSI.00050018")));
}

#[tokio::test]
async fn unknown_instance_and_missing_action() {
    let app = TestApp::new().await;
    let path = format!("/v3/{PROJECT}/abm/instances/nope/metadata3/entities");
    let (status, body) = app.call(Method::POST, &path, Some(entities(1))).await;
    assert_eq!((status, &body["error_code"]), (StatusCode::NOT_FOUND, &json!("MSSI.00050021")));

    let path = format!("{BASE}/entities");
    let (status, body) =
        app.call_as(&["mssi:abm:get"], Method::POST, &path, Some(entities(1))).await;
    assert_eq!((status, &body["error_code"]), (StatusCode::FORBIDDEN, &json!("MSSI.00050022")));
}
