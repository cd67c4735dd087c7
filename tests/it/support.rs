//! The harness: a real server on 127.0.0.1 over a fresh database, and a client that signs
//! requests the way the MSSI SDKs do.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use workbench::{Running, Settings};
use workbench_api::auth::signature;

/// Credentials and date to sign one request with.
#[derive(Clone, Copy)]
pub(crate) struct Key<'a> {
    pub(crate) ak: &'a str,
    pub(crate) sk: &'a str,
    pub(crate) date: &'a str,
}

pub(crate) fn now_sdk_date() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string()
}

/// A server started for one test.
pub(crate) struct TestApp {
    pub(crate) server: Option<Running>,
    pub(crate) base: String,
    pub(crate) host: String,
    pub(crate) project_id: String,
    pub(crate) ak: String,
    pub(crate) sk: String,
    pub(crate) password: String,
    pub(crate) client: reqwest::Client,
}

pub(crate) fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wb-it-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl TestApp {
    pub(crate) async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub(crate) async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let database_url = workbench_test_support::fresh_database_url().await;
        let data_dir = temp_dir("app");
        let mut settings = Settings {
            bind: "127.0.0.1:0".parse().unwrap(),
            database_url: Some(database_url.clone()),
            data_dir: data_dir.clone(),
            workers: 2,
            ..Settings::default()
        };
        adjust(&mut settings);
        let server = workbench::server::start(settings).await.expect("server starts");
        let addr = server.addr;
        let mut app = Self::attach(addr, &data_dir);
        app.server = Some(server);
        app
    }

    /// A client of a server running elsewhere (another process) on `addr`, whose first start
    /// wrote its credentials into `data_dir`.
    pub(crate) fn attach(addr: std::net::SocketAddr, data_dir: &std::path::Path) -> TestApp {
        let creds: Value = serde_json::from_str(
            &std::fs::read_to_string(data_dir.join("credentials.json")).unwrap(),
        )
        .unwrap();
        let host = addr.to_string();
        TestApp {
            base: format!("http://{host}"),
            host,
            project_id: creds["project_id"].as_str().unwrap().to_owned(),
            ak: creds["key"]["ak"].as_str().unwrap().to_owned(),
            sk: creds["key"]["sk"].as_str().unwrap().to_owned(),
            password: creds["password"].as_str().unwrap().to_owned(),
            server: None,
            client: reqwest::Client::new(),
        }
    }

    /// `path` with `{p}` replaced by the project id.
    pub(crate) fn path(&self, path: &str) -> String {
        path.replace("{p}", &self.project_id)
    }

    /// A request signed with the admin access key, as the Python SDK signs it.
    pub(crate) async fn signed(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let date = now_sdk_date();
        let key = Key { ak: &self.ak, sk: &self.sk, date: &date };
        self.signed_with(method, path, body, key).await
    }

    pub(crate) async fn signed_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        key: Key<'_>,
    ) -> (StatusCode, Value) {
        let path = self.path(path);
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
        let headers = self.sign(&method, &path, &bytes, key);
        let (raw_path, query) = path.split_once('?').unwrap_or((&path, ""));
        let url = if query.is_empty() {
            format!("{}{raw_path}", self.base)
        } else {
            format!("{}{raw_path}?{query}", self.base)
        };
        let response =
            self.client.request(method, url).headers(headers).body(bytes).send().await.unwrap();
        read(response).await
    }

    /// The headers the SDK would send for this request.
    pub(crate) fn sign(&self, method: &Method, path: &str, body: &[u8], key: Key<'_>) -> HeaderMap {
        let Key { ak, sk, date } = key;
        let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
        let mut headers = HeaderMap::new();
        let mut put = |k: &str, v: &str| {
            headers.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        };
        put("content-type", "application/json");
        put("host", &self.host);
        put("user-agent", "huaweicloud-usdk-python/3.0; workbench-tests");
        put("x-project-id", &self.project_id);
        put("x-sdk-date", date);
        let signed: Vec<String> =
            ["content-type", "host", "user-agent", "x-project-id", "x-sdk-date"]
                .map(String::from)
                .into();
        let received = signature::Received {
            method: method.as_str(),
            raw_path,
            raw_query: query,
            headers: &headers,
            body,
        };
        let canonical = signature::canonical_request(&received, &signed).unwrap();
        let sig = signature::sign(sk, &signature::string_to_sign(date, &canonical));
        let auth = format!(
            "SDK-HMAC-SHA256 Access={ak}, SignedHeaders={}, Signature={sig}",
            signed.join(";")
        );
        headers.insert("authorization", HeaderValue::from_str(&auth).unwrap());
        headers
    }

    /// An `X-Auth-Token` for the admin user.
    pub(crate) async fn token(&self) -> String {
        self.token_for("admin", &self.password).await
    }

    /// An `X-Auth-Token` for a user of the default domain.
    pub(crate) async fn token_for(&self, user: &str, password: &str) -> String {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "password": password, "domain": {"name": "workbench"}}}},
            "scope": {"project": {"name": "cn-north-4"}}}});
        let response = self
            .client
            .post(format!("{}/v3/auth/tokens", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.headers()["x-subject-token"].to_str().unwrap().to_owned()
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.signed(Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.signed(Method::POST, path, Some(body)).await
    }

    pub(crate) async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.signed(Method::PUT, path, Some(body)).await
    }

    pub(crate) async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.signed(Method::DELETE, path, None).await
    }

    /// Creates a flow and returns its id.
    pub(crate) async fn create_flow(&self, flow: &Value) -> String {
        let (status, body) = self.post("/v1/{p}/flows", flow).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["flow_id"].as_str().unwrap().to_owned()
    }

    /// Creates, enables and runs a flow; returns (flow id, running id).
    pub(crate) async fn start_run(&self, flow: &Value, input: Value) -> (String, String) {
        let id = self.create_flow(flow).await;
        let (status, body) = self.post(&format!("/v1/{{p}}/flows/{id}/enable"), &json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let run = self.run(&id, input).await;
        (id, run)
    }

    pub(crate) async fn run(&self, flow_id: &str, input: Value) -> String {
        let (status, body) = self
            .post(
                &format!("/v1/{{p}}/flows/{flow_id}/run"),
                &json!({"run_mode": "manual", "input": input}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["running_id"].as_str().unwrap().to_owned()
    }

    /// Polls R3 until the run has ended; returns the detail.
    pub(crate) async fn wait_run(&self, flow_id: &str, run_id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, detail) =
                self.get(&format!("/v2/{{p}}/flows/{flow_id}/running-history/{run_id}")).await;
            assert_eq!(status, StatusCode::OK, "{detail}");
            if detail["status"] != "running" {
                return detail;
            }
            assert!(Instant::now() < deadline, "run {run_id} still running: {detail}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub(crate) async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// A step of a flow, in the MSSI step shape.
pub(crate) fn step(id: &str, connector: &str, op: &str, input: Value, transmit: &[&str]) -> Value {
    let mut step = json!({"stepId": id, "name": id, "call": {"connectorRef": connector,
        "connectorVersion": "1", "actionRef": {"refId": op, "refName": op}}, "transmit": transmit});
    step["call"]["actionRef"]["input"] = input;
    step
}

pub(crate) fn trigger(transmit: &[&str]) -> Value {
    json!({"stepId": "trigger", "name": "manual", "call": {"connectorRef": "ManualTrigger",
        "connectorVersion": "1", "triggerRef": {"refId": "manual", "type": "instant", "input": {}}},
        "transmit": transmit})
}

pub(crate) fn flow(name: &str, steps: Vec<Value>) -> Value {
    let mut flow = json!({ "name": name });
    flow["steps"] = Value::Array(steps);
    flow
}
