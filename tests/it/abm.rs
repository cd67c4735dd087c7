//! The application model over real HTTP: the admin surface, A1-A6 and the reads with signed
//! requests, composite URNs percent-encoded in paths, and malformed input that must never
//! answer 500.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{now_sdk_date, read, Key, TestApp};

const BASE: &str = "/v3/{p}/abm/instances/default/metadata3";
const PLATFORM: &str =
    "urn:abm:Metamodel3-DataPlatformInstance:(MySQL,3ca1d906860167e88b9bfe0577a69)";
const DATASET: &str = "urn:abm:Metamodel3-Dataset:(urn:abm:Metamodel3-DataPlatformInstance:\
    (MySQL,3ca1d906860167e88b9bfe0577a69),def.sys.x$wait_classes_global_by_avg_latency)";

/// Percent-encodes everything but RFC 3986 unreserved characters, as the SDKs do for path
/// parameters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn entity(entity_type: &str, name: &str) -> Value {
    json!({"package_id": "Metamodel3", "entity_type": entity_type, "entity_name": name})
}

/// Adds entities; returns their URNs in order.
async fn add(app: &TestApp, items: Vec<Value>) -> Vec<String> {
    let (status, body) = app.post(&format!("{BASE}/entities"), &json!({"entities": items})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["failure"], json!([]), "{body}");
    let success = body["success"].as_array().unwrap();
    success.iter().map(|s| s["entity_urn"].as_str().unwrap().to_owned()).collect()
}

/// A signed request with a raw body.
async fn raw(app: &TestApp, method: Method, path: &str, body: &[u8]) -> (StatusCode, Value) {
    let path = app.path(path);
    let date = now_sdk_date();
    let key = Key { ak: &app.ak, sk: &app.sk, date: &date };
    let headers = app.sign(&method, &path, body, key);
    let url = format!("{}{path}", app.base);
    let response =
        app.client.request(method, url).headers(headers).body(body.to_vec()).send().await;
    read(response.unwrap()).await
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error_code"], code, "{body}");
}

#[tokio::test]
async fn composite_urns_round_trip_through_import_paths_and_reads() {
    let app = TestApp::spawn().await;
    let items = json!({"entities": [
        {"package_id": "Metamodel3", "entity_type": "Metamodel3-DataPlatformInstance",
         "entity_name": "mysql", "entity_urn": PLATFORM},
        {"package_id": "Metamodel3", "entity_type": "Metamodel3-Dataset",
         "entity_name": "x$wait", "entity_urn": DATASET},
        {"package_id": "Metamodel3", "entity_type": "Metamodel3-Dataset",
         "entity_name": "bad", "entity_urn": "urn:abm:Metamodel3-Dataset:(a,(b)"},
        {"package_id": "Metamodel3", "entity_type": "Metamodel3-Report",
         "entity_name": "wrong type", "entity_urn": DATASET}
    ]});
    let (status, body) = app.post(&format!("{BASE}/entities/import"), &items).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"][0]["entity_urn"], PLATFORM);
    assert_eq!(body["success"][1]["entity_urn"], DATASET);
    let failures = body["failure"].as_array().unwrap();
    assert_eq!(failures.len(), 2, "{body}");
    assert!(failures.iter().all(|f| f["error_code"] == "MSSI.00050018"));

    let path = format!("{BASE}/entities/{}", encode(DATASET));
    let (status, body) = app.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["entity_urn"], DATASET);
    assert_eq!(body["entity_attributes"][0]["attribute_id"], "entity_name");

    let edge = json!({"relationships": [{"from_urn": DATASET, "target_urn": PLATFORM,
        "relationship_code": "Metamodel3-Dataset-Metamodel3-DataPlatformInstance_CO",
        "change_type": "upinsert", "relationship_extend": "db.t"}]});
    let (status, body) = app.post(&format!("{BASE}/relationships"), &edge).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"][0]["relationship_extend"], "db.t");

    let walk = format!("{BASE}/entities/{}/lineage?hops=2&direction=in", encode(PLATFORM));
    let (status, body) = app.get(&walk).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let nodes: Vec<&str> = body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["entity_urn"].as_str().unwrap())
        .collect();
    assert!(nodes.contains(&DATASET), "{body}");

    let (status, body) = app.delete(&path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["success"], json!([DATASET]));
    // The edge went with the entity.
    let edges = format!("{BASE}/entities/{}/relationships", encode(PLATFORM));
    let (status, body) = app.get(&edges).await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
    let (status, body) = app.delete(&path).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "MSSI.00050021");

    // A malformed URN in the path is a 400, not a 404 or a 500.
    let bad = format!("{BASE}/entities/{}", encode("urn:abm:X:(a,(b)"));
    let (status, body) = app.delete(&bad).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "MSSI.00050018");
}

#[tokio::test]
async fn listing_pages_by_type_and_name() {
    let app = TestApp::spawn().await;
    let items = (0..5).map(|i| entity("Metamodel3-Report", &format!("Sales_{i}"))).collect();
    add(&app, items).await;
    add(&app, vec![entity("Metamodel3-ReportGroup", "sales group")]).await;

    let (status, body) = app.get(&format!("{BASE}/entities?name=SALES&limit=2&offset=1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 6);
    let names: Vec<&str> = body["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entity_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Sales_1", "Sales_2"]);

    let (_, body) = app.get(&format!("{BASE}/entities?type=Metamodel3-ReportGroup")).await;
    assert_eq!(body["total"], 1);
    // `_` matches literally, not as a wildcard.
    let (_, body) = app.get(&format!("{BASE}/entities?name=s_")).await;
    assert_eq!(body["total"], 5);
}

/// A bulk load leaves `abm_entities` without statistics until autovacuum analyzes it; the
/// foreign-key check of every edge and signature written meanwhile looks an entity up by its
/// primary key, and must not be planned as a scan of the whole scope through another index
/// (which cost about 25 ms per edge among 100,000 entities).
#[tokio::test]
async fn an_entity_lookup_uses_the_primary_key_before_any_statistics() {
    let app = TestApp::spawn().await;
    let first = add(&app, vec![entity("Metamodel3-Report", "first")]).await;
    let pool = &app.server.as_ref().unwrap().pool;
    let (project, instance): (String, String) =
        sqlx::query_as("SELECT project_id, instance_id FROM abm_entities WHERE urn = $1")
            .bind(&first[0])
            .fetch_one(pool)
            .await
            .unwrap();
    sqlx::query(
        "INSERT INTO abm_entities (project_id, instance_id, urn, entity_type, package_id, name) \
         SELECT $1, $2, 'urn:abm:Metamodel3-Report:' || i, 'Metamodel3-Report', 'Metamodel3', \
                'report ' || i \
         FROM generate_series(1, 2000) AS i",
    )
    .bind(&project)
    .bind(&instance)
    .execute(pool)
    .await
    .unwrap();
    // The lookup each foreign-key check runs, with its parameters' generic plan.
    let mut db = pool.acquire().await.unwrap();
    sqlx::query("SET plan_cache_mode = force_generic_plan").execute(&mut *db).await.unwrap();
    let plan: Value = sqlx::query_scalar(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM ONLY abm_entities x \
         WHERE project_id = $1 AND instance_id = $2 AND urn = $3 FOR KEY SHARE OF x",
    )
    .bind(&project)
    .bind(&instance)
    .bind(&first[0])
    .fetch_one(&mut *db)
    .await
    .unwrap();
    sqlx::query("RESET plan_cache_mode").execute(&mut *db).await.unwrap();
    let scan = &plan[0]["Plan"]["Plans"][0];
    assert_eq!(scan["Index Name"], "abm_entities_pkey", "{plan}");
    assert!(scan.get("Filter").is_none(), "{plan}");
}

#[tokio::test]
async fn malformed_bodies_are_client_errors() {
    let app = TestApp::spawn().await;
    let entities = format!("{BASE}/entities");
    let cases: [(&str, &[u8], &str); 5] = [
        ("not json", b"{\"entities\": [", "MSSI.00017001"),
        ("empty body", b"", "MSSI.00017001"),
        ("entities not a list", br#"{"entities": 3}"#, "MSSI.00017006"),
        ("no entities", br#"{}"#, "MSSI.00050018"),
        ("a string", br#""entities""#, "MSSI.00017006"),
    ];
    for (what, body, code) in cases {
        let (status, reply) = raw(&app, Method::POST, &entities, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {reply}");
        assert_eq!(reply["error_code"], code, "{what}: {reply}");
    }

    // Text PostgreSQL cannot store (NUL) fails its item, not the request.
    let items = json!({"entities": [
        entity("Metamodel3-Report", "nul\u{0}name"),
        {"package_id": "Metamodel3", "entity_type": "Metamodel3-Report", "entity_name": "ok",
         "entity_attributes": [{"attribute_id": "Metamodel3-Report-NAME",
                                "attribute_value": "a\u{0}b"}]},
        {"package_id": "Metamodel3", "entity_type": "Metamodel3-Report", "entity_name": 5},
    ]});
    let (status, body) = app.post(&entities, &items).await;
    assert!(status.is_client_error() || status == StatusCode::OK, "{status} {body}");
    if status == StatusCode::OK {
        assert_eq!(body["success"], json!([]), "{body}");
    }

    let items = json!({"entities": [
        entity("Metamodel3-Report", "nul\u{0}name"),
        {"package_id": "Metamodel3", "entity_type": "Metamodel3-Report", "entity_name": "ok",
         "entity_attributes": [{"attribute_id": "Metamodel3-Report-NAME",
                                "attribute_value": "a\u{0}b"}]},
        {"package_id": "Metamodel3", "entity_type": "Metamodel3-Report", "entity_name": "fine",
         "signatures": [{"signature_type": "Metamodel3-descriptionInfo",
                         "signature_name": "x\u{0}"}]},
    ]});
    let (status, body) = app.post(&entities, &items).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], json!([]), "{body}");
    assert_eq!(body["failure"].as_array().unwrap().len(), 3, "{body}");

    let signatures = json!({"package_id": "Metamodel3", "entity_urn": "urn:abm:T:1",
                            "signatures": "nope"});
    let (status, body) = app.post(&format!("{BASE}/signatures"), &signatures).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "MSSI.00017006");
    let relationships = json!({"relationships": [{"from_urn": 1}]});
    let (status, body) = app.post(&format!("{BASE}/relationships"), &relationships).await;
    assert!(status.is_client_error(), "{status} {body}");
    let (status, body) = app.get(&format!("{BASE}/entities?offset=-1&limit=99999")).await;
    assert!(status == StatusCode::OK || status.is_client_error(), "{status} {body}");
}

#[tokio::test]
async fn admin_surface_creates_instances_and_loads_packages() {
    let app = TestApp::spawn().await;
    let yaml = "package_id: Shop\nentity_types:\n  - type: Shop-Order\n    attributes:\n      \
                - {code: total, name: 总额, name_en: Total}\n  - type: Shop-Customer\n\
                relationships:\n  - {code: Shop-Order-Shop-Customer_CO, from_type: Shop-Order, \
                target_type: Shop-Customer}\n";
    let (status, body) = raw(&app, Method::POST, "/v3/{p}/abm/packages", yaml.as_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["package_id"], "Shop");

    let bad = br#"{"package_id": "Bad", "entity_types": [{"type": "Other-X"}]}"#;
    let (status, body) = raw(&app, Method::POST, "/v3/{p}/abm/packages", bad).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "MSSI.00050018");
    let (status, body) = raw(&app, Method::POST, "/v3/{p}/abm/packages", b"\xff\xfe").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "MSSI.00050018");

    let new = json!({"instance_id": "shop", "packages": ["Shop", "Metamodel3"]});
    let (status, body) = app.post("/v3/{p}/abm/instances", &new).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app.post("/v3/{p}/abm/instances", &new).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "MSSI.00050018");
    let unknown = json!({"instance_id": "x", "packages": ["Nope"]});
    let (status, body) = app.post("/v3/{p}/abm/instances", &unknown).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "MSSI.00050018");
    let (status, body) = app.post("/v3/{p}/abm/instances", &json!({"packages": []})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "MSSI.00050018");

    let (status, body) = app.get("/v3/{p}/abm/instances/shop/catalog").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["packages"][0]["entity_types"][0]["type"], "Shop-Order");
    let (status, body) = app.get("/v3/{p}/abm/instances/none/catalog").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "MSSI.00050021");
    let (status, body) = app.get("/v3/{p}/abm/instances/default/catalog").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["packages"][0]["package_id"], "Metamodel3");

    let order = json!({"entities": [
        {"package_id": "Shop", "entity_type": "Shop-Order", "entity_name": "o1",
         "entity_attributes": [{"attribute_id": "Shop-Order-total", "attribute_value": "9"}]},
        {"package_id": "Shop", "entity_type": "Shop-Customer", "entity_name": "c1"}]});
    let path = "/v3/{p}/abm/instances/shop/metadata3/entities";
    let (status, body) = app.post(path, &order).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"].as_array().unwrap().len(), 2, "{body}");
    // The default instance does not hold Shop.
    let (status, body) = app.post(&format!("{BASE}/entities"), &order).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["failure"].as_array().unwrap().len(), 2, "{body}");
}

#[tokio::test]
async fn admin_endpoints_need_the_admin_action() {
    let app = TestApp::spawn().await;
    let pool = &app.server.as_ref().unwrap().pool;
    let actions = ["mssi:abm:create".to_owned(), "mssi:abm:get".to_owned()];
    workbench_api::tenancy::create_user(pool, "writer", "Writer-pass-1", None, &actions)
        .await
        .unwrap();
    let login = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "writer", "password": "Writer-pass-1", "domain": {"name": "workbench"}}}},
        "scope": {"project": {"id": app.project_id}}}});
    let response =
        app.client.post(format!("{}/v3/auth/tokens", app.base)).json(&login).send().await;
    let response = response.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let token = response.headers()["x-subject-token"].to_str().unwrap().to_owned();

    let send = |method: Method, path: &str, body: Value| {
        let url = format!("{}{}", app.base, app.path(path));
        app.client.request(method, url).header("x-auth-token", &token).json(&body).send()
    };
    let (status, body) = read(
        send(
            Method::POST,
            &format!("{BASE}/entities"),
            json!({
        "entities": [entity("Metamodel3-Report", "r")]}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new = json!({"instance_id": "mine"});
    let (status, body) =
        read(send(Method::POST, "/v3/{p}/abm/instances", new).await.unwrap()).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "MSSI.00050022");
    let (status, body) =
        read(send(Method::GET, "/v3/{p}/abm/instances/default/catalog", json!({})).await.unwrap())
            .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "MSSI.00050022");
    let import = json!({"entities": [{"package_id": "Metamodel3", "entity_urn": DATASET,
        "entity_type": "Metamodel3-Dataset", "entity_name": "d"}]});
    let (status, body) =
        read(send(Method::POST, &format!("{BASE}/entities/import"), import).await.unwrap()).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "MSSI.00050022");
}

#[tokio::test]
async fn a_database_failure_answers_the_abm_internal_code() {
    let app = TestApp::spawn().await;
    let (urn,) = {
        let urns = add(&app, vec![entity("Metamodel3-Report", "r")]).await;
        (urns[0].clone(),)
    };
    // Break the table under the server: the next write fails inside PostgreSQL.
    let pool = &app.server.as_ref().unwrap().pool;
    sqlx::query("ALTER TABLE abm_signatures RENAME TO abm_signatures_gone")
        .execute(pool)
        .await
        .unwrap();
    let (status, body) = app.get(&format!("{BASE}/entities/{}", encode(&urn))).await;
    assert_error(status, &body, StatusCode::INTERNAL_SERVER_ERROR, "MSSI.00050001");
    assert_eq!(body["error_msg"], "Internal Server Error");
    assert!(!body.to_string().contains("abm_signatures"), "{body}");
}

/// The README's `packages load` / `instances create` commands, run on `examples/shop.yaml`,
/// and the package example of docs/application-model.md, which used to name an undefined
/// `Shop-Customer`.
#[tokio::test]
async fn the_shop_example_package_loads_as_documented() {
    let database_url = workbench_test_support::fresh_database_url().await;
    let data_dir = crate::support::temp_dir("shop");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let workbench = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_workbench"))
            .args(args)
            .arg("--data-dir")
            .arg(&data_dir)
            .current_dir(root)
            .env("DATABASE_URL", &database_url)
            .env("WORKBENCH_LOG", "warn")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {stderr}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    workbench(&["keys", "create", "--json"]);
    let loaded = workbench(&["packages", "load", "examples/shop.yaml"]);
    assert!(loaded.contains("package Shop loaded: 2 entity types"), "{loaded}");
    let created = workbench(&[
        "instances",
        "create",
        "--instance",
        "shop",
        "--package",
        "Metamodel3",
        "--package",
        "Shop",
    ]);
    assert!(created.contains("instance shop created"), "{created}");

    let docs = std::fs::read_to_string(root.join("docs/application-model.md")).unwrap();
    let (_, after) = docs.split_once("```yaml\n").unwrap();
    let (example, _) = after.split_once("```").unwrap();
    let pool = workbench_test_support::fresh_pool().await;
    let package = workbench_metamodel::Metamodel::new(pool).register_package(example).await;
    assert_eq!(package.unwrap().relationships.len(), 1);
}
