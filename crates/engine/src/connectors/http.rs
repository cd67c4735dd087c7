//! The `HTTP` connector: one request per invocation, with connection-based authentication.

use std::time::Duration;

use connector_api::{async_trait, Connection, Connector, ConnectorError, Descriptor, Invocation};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, Url};
use serde_json::{json, Map, Value};

use super::operation;

/// The methods a request step may use.
const METHODS: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
];

/// Action `request`.
#[derive(Debug)]
pub struct HttpConnector {
    descriptor: Descriptor,
    client: reqwest::Client,
}

impl HttpConnector {
    pub fn new() -> Self {
        let schema = json!({"type": "object", "required": ["url"], "properties": {
            "method": {"type": "string"}, "url": {"type": "string"},
            "headers": {"type": "object"}, "query": {"type": "object"},
            "body": {}, "text": {"type": "string"}, "timeout_ms": {"type": "integer"},
            "fail_on_error": {"type": "boolean"}}});
        let descriptor = Descriptor {
            id: "HTTP".into(),
            version: "1".into(),
            name: "HTTP".into(),
            description: "Call an HTTP endpoint".into(),
            category: "builtin".into(),
            triggers: Vec::new(),
            actions: vec![operation("request", "Send one HTTP request", schema, true)],
        };
        Self { descriptor, client: reqwest::Client::new() }
    }

    fn build(&self, call: &Invocation) -> Result<RequestBuilder, ConnectorError> {
        let input = &call.input;
        let text = |key: &str| input.get(key).and_then(Value::as_str);
        let Some(url) = text("url") else {
            return Err(ConnectorError::InvalidInput("`url` is required".into()));
        };
        let mut url = Url::parse(url)
            .map_err(|e| ConnectorError::InvalidInput(format!("bad url `{url}`: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConnectorError::InvalidInput(format!(
                "`url` must be an http or https URL, not `{}:`",
                url.scheme()
            )));
        }
        let method = text("method").unwrap_or("GET").to_ascii_uppercase();
        let method = METHODS.iter().find(|m| m.as_str() == method).cloned().ok_or_else(|| {
            ConnectorError::InvalidInput(format!(
                "bad method `{method}`: use GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS"
            ))
        })?;
        if let Some(query) = input.get("query").and_then(Value::as_object) {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in query {
                match value {
                    Value::Array(values) => values.iter().for_each(|v| {
                        pairs.append_pair(key, &plain(v));
                    }),
                    other => {
                        pairs.append_pair(key, &plain(other));
                    }
                }
            }
        }
        if let Some(connection) = &call.connection {
            apply_query_auth(connection, &mut url)?;
        }
        let mut headers = HeaderMap::new();
        if let Some(map) = input.get("headers").and_then(Value::as_object) {
            for (name, value) in map {
                insert_header(&mut headers, name, &plain(value))?;
            }
        }
        insert_header(&mut headers, "Idempotency-Key", &call.idempotency_key)?;
        let timeout = input
            .get("timeout_ms")
            .and_then(Value::as_u64)
            .map_or(call.timeout, |ms| Duration::from_millis(ms).min(call.timeout));
        let mut request = self.client.request(method, url).headers(headers).timeout(timeout);
        if let Some(connection) = &call.connection {
            request = apply_header_auth(connection, request)?;
        }
        request = match (input.get("body").filter(|b| !b.is_null()), text("text")) {
            (Some(body), _) => request.json(body),
            (None, Some(text)) => request.body(text.to_string()),
            (None, None) => request,
        };
        Ok(request)
    }
}

impl Default for HttpConnector {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Connector for HttpConnector {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    async fn invoke(&self, call: Invocation) -> Result<Value, ConnectorError> {
        if call.operation != "request" {
            return Err(ConnectorError::UnknownOperation(call.operation));
        }
        let fail_on_error = call.input.get("fail_on_error").and_then(Value::as_bool) != Some(false);
        let request = self.build(&call)?;
        exchange(request, fail_on_error).await
    }
}

/// A reqwest error with its causes ("error sending request: ... : Connection refused"), but
/// without the URL, which may hold a query API key. The causes below reqwest (hyper, the
/// socket, DNS) name at most the host.
pub(crate) fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

/// Sends a request and reads the answer as `{status, headers, body}`; a non-2xx answer fails
/// when `fail_on_error`. Error texts never carry the URL, which may hold a query API key.
pub(crate) async fn exchange(
    request: RequestBuilder,
    fail_on_error: bool,
) -> Result<Value, ConnectorError> {
    let response = request.send().await.map_err(|e| {
        // Connection problems and timeouts are worth another attempt; a request that
        // could not even be built is not.
        if e.is_builder() {
            ConnectorError::InvalidInput(describe(e))
        } else {
            ConnectorError::failed(format!("request failed: {}", describe(e)))
        }
    })?;
    let status = response.status();
    let mut headers = Map::new();
    for (name, value) in response.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_string(), Value::String(value));
            }
        }
    }
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .is_some_and(|ct| ct.ends_with("/json") || ct.ends_with("+json"));
    let bytes = response.bytes().await.map_err(|e| {
        ConnectorError::failed(format!("reading the response failed: {}", describe(e)))
    })?;
    let body = match is_json {
        true => serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        false => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
    };
    if fail_on_error && !status.is_success() {
        let retryable = status.is_server_error() || status.as_u16() == 429;
        let snippet: String = plain(&body).chars().take(200).collect();
        let message = format!("HTTP {} from the server: {snippet}", status.as_u16());
        return Err(ConnectorError::Failed { message, retryable });
    }
    Ok(json!({"status": status.as_u16(), "headers": headers, "body": body}))
}

/// Text of a header or query value: strings raw, anything else as compact JSON.
pub(crate) fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn insert_header(
    headers: &mut HeaderMap,
    name: &str,
    value: &str,
) -> Result<(), ConnectorError> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| ConnectorError::InvalidInput(format!("bad header name `{name}`")))?;
    let value = HeaderValue::from_str(value)
        .map_err(|_| ConnectorError::InvalidInput(format!("bad value for header `{name}`")))?;
    headers.insert(name, value);
    Ok(())
}

fn secret<'a>(connection: &'a Connection, keys: &[&str]) -> Result<&'a str, ConnectorError> {
    keys.iter().find_map(|k| connection.auth_info.get(*k)).map(String::as_str).ok_or_else(|| {
        ConnectorError::fatal(format!(
            "connection `{}` ({}) lacks `{}`",
            connection.id, connection.auth_type, keys[0]
        ))
    })
}

/// Whether an API key goes in the query string rather than a header.
fn key_in_query(connection: &Connection) -> bool {
    connection.auth_info.get("in").is_some_and(|place| place == "query")
}

pub(crate) fn apply_query_auth(
    connection: &Connection,
    url: &mut Url,
) -> Result<(), ConnectorError> {
    if normalized(&connection.auth_type) != "api_key" || !key_in_query(connection) {
        return Ok(());
    }
    let name = connection.auth_info.get("name").map_or("api_key", String::as_str);
    let value = secret(connection, &["api_key", "value", "key"])?;
    url.query_pairs_mut().append_pair(name, value);
    Ok(())
}

pub(crate) fn apply_header_auth(
    connection: &Connection,
    request: RequestBuilder,
) -> Result<RequestBuilder, ConnectorError> {
    let request = match normalized(&connection.auth_type).as_str() {
        "" | "none" => request,
        "basic" => {
            let user = secret(connection, &["username", "user"])?;
            let password = connection.auth_info.get("password").map(String::as_str);
            request.basic_auth(user, password)
        }
        "bearer" | "token" | "oauth2" => request.bearer_auth(secret(connection, &["token"])?),
        "api_key" if key_in_query(connection) => request,
        "api_key" => {
            let name = connection.auth_info.get("name").map_or("X-API-Key", String::as_str);
            request.header(name, secret(connection, &["api_key", "value", "key"])?)
        }
        other => {
            let msg = format!("connection `{}`: unsupported auth_type `{other}`", connection.id);
            return Err(ConnectorError::fatal(msg));
        }
    };
    Ok(request)
}

fn normalized(auth_type: &str) -> String {
    auth_type.trim().to_ascii_lowercase().replace(['-', ' '], "_").replace("apikey", "api_key")
}
