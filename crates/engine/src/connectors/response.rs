//! The `Response` connector: what the caller of an HTTP-triggered flow gets back.
//!
//! Action `response` checks and normalizes `{status, headers, body}`. The engine notices steps
//! of this connector ([`RESPONSE_CONNECTOR`]) and carries the first one's output in
//! `RunOutcome::response`, which the hook hands to the waiting caller.

use connector_api::{async_trait, Connector, ConnectorError, Descriptor, Invocation};
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{json, Map, Value};

use super::operation;

/// The connector id of the Response action.
pub const RESPONSE_CONNECTOR: &str = "Response";

/// Action `response`.
#[derive(Debug)]
pub struct ResponseAction {
    descriptor: Descriptor,
}

impl ResponseAction {
    pub fn new() -> Self {
        let schema = json!({"type": "object", "properties": {
            "status": {"type": ["integer", "string"]}, "headers": {"type": "object"},
            "body": {}}});
        let describe = "Answer the HTTP caller with `status` (default 200), `headers` and `body`";
        let descriptor = Descriptor {
            id: RESPONSE_CONNECTOR.into(),
            version: "1".into(),
            name: "Response".into(),
            description: describe.into(),
            category: "builtin".into(),
            triggers: Vec::new(),
            actions: vec![operation("response", describe, schema, false)],
        };
        Self { descriptor }
    }
}

impl Default for ResponseAction {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Connector for ResponseAction {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    async fn invoke(&self, call: Invocation) -> Result<Value, ConnectorError> {
        if call.operation != "response" {
            return Err(ConnectorError::UnknownOperation(call.operation));
        }
        normalize(&call.input).map_err(ConnectorError::InvalidInput)
    }
}

/// `{status, headers, body}` with the status a number in 100..=599 and every header a valid
/// name with a text value.
fn normalize(input: &Value) -> Result<Value, String> {
    let status = match input.get("status") {
        None | Some(Value::Null) => Some(200),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    let Some(status) = status.filter(|s| (100..=599).contains(s)) else {
        return Err("`status` must be an HTTP status from 100 to 599".into());
    };
    let mut headers = Map::new();
    match input.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let text = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(format!("`{name}` is not a valid header name"));
                }
                if HeaderValue::from_str(&text).is_err() {
                    return Err(format!("the value of header `{name}` is not valid"));
                }
                headers.insert(name.clone(), Value::String(text));
            }
        }
        Some(_) => return Err("`headers` must be an object".into()),
    }
    let body = input.get("body").cloned().unwrap_or(Value::Null);
    Ok(json!({"status": status, "headers": headers, "body": body}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_defaults_to_200_and_is_bounded() {
        let out = normalize(&json!({"body": {"a": 1}})).unwrap();
        assert_eq!(out, json!({"status": 200, "headers": {}, "body": {"a": 1}}));
        assert_eq!(normalize(&json!({"status": "201"})).unwrap()["status"], 201);
        for bad in [json!({"status": 99}), json!({"status": 600}), json!({"status": "x"})] {
            assert!(normalize(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_must_be_valid() {
        let out = normalize(&json!({"headers": {"X-N": 5}})).unwrap();
        assert_eq!(out["headers"], json!({"X-N": "5"}));
        assert!(normalize(&json!({"headers": {"bad name": "x"}})).is_err());
        assert!(normalize(&json!({"headers": {"x": "a\nb"}})).is_err());
        assert!(normalize(&json!({"headers": []})).is_err());
    }
}
