//! `Text`: a small connector of string utilities, kept in its own crate to show that a
//! connector needs nothing from the engine beyond `connector-api`.
//!
//! Every action reads `text` (or `items` for `join`) and returns `{"result": ...}`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use connector_api::{async_trait, Connector, ConnectorError, Descriptor, Invocation, Operation};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The connector id used as `call.connectorRef`.
pub const TEXT_CONNECTOR: &str = "Text";

const ACTIONS: [(&str, &str); 7] = [
    ("base64_encode", "Encode `text` (UTF-8) as standard base64"),
    ("base64_decode", "Decode standard base64 `text` into UTF-8 text"),
    ("sha256_hex", "Lower-case hex SHA-256 of `text` (UTF-8)"),
    ("upper", "Upper-case `text`"),
    ("lower", "Lower-case `text`"),
    ("split", "Split `text` on `separator` (default `,`) into an array"),
    ("join", "Join the strings in `items` with `separator` (default `,`)"),
];

/// String utilities.
#[derive(Debug)]
pub struct TextConnector {
    descriptor: Descriptor,
}

impl TextConnector {
    pub fn new() -> Self {
        let actions = ACTIONS
            .iter()
            .map(|(id, description)| Operation {
                id: (*id).to_string(),
                name: (*id).to_string(),
                description: (*description).to_string(),
                input_schema: json!({"type": "object"}),
                output_schema: json!({"type": "object", "properties": {"result": {}}}),
                external: false,
            })
            .collect();
        let descriptor = Descriptor {
            id: TEXT_CONNECTOR.into(),
            version: "1".into(),
            name: "Text".into(),
            description: "Encode, hash and reshape text".into(),
            category: "utility".into(),
            triggers: Vec::new(),
            actions,
        };
        Self { descriptor }
    }
}

impl Default for TextConnector {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Connector for TextConnector {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    async fn invoke(&self, call: Invocation) -> Result<Value, ConnectorError> {
        let input = &call.input;
        let separator = input.get("separator").and_then(Value::as_str).unwrap_or(",");
        let result = match call.operation.as_str() {
            "base64_encode" => Value::from(STANDARD.encode(text(input)?)),
            "base64_decode" => {
                let bytes = STANDARD
                    .decode(text(input)?.trim())
                    .map_err(|e| ConnectorError::InvalidInput(format!("not base64: {e}")))?;
                let decoded = String::from_utf8(bytes).map_err(|_| {
                    ConnectorError::InvalidInput("decoded bytes are not UTF-8".into())
                })?;
                Value::from(decoded)
            }
            "sha256_hex" => Value::from(to_hex(&Sha256::digest(text(input)?.as_bytes()))),
            "upper" => Value::from(text(input)?.to_uppercase()),
            "lower" => Value::from(text(input)?.to_lowercase()),
            "split" => Value::from(text(input)?.split(separator).collect::<Vec<_>>()),
            "join" => {
                let Some(items) = input.get("items").and_then(Value::as_array) else {
                    return Err(ConnectorError::InvalidInput("`items` must be an array".into()));
                };
                let parts: Vec<String> = items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                Value::from(parts.join(separator))
            }
            _ => return Err(ConnectorError::UnknownOperation(call.operation)),
        };
        Ok(json!({ "result": result }))
    }
}

fn text(input: &Value) -> Result<&str, ConnectorError> {
    input
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| ConnectorError::InvalidInput("`text` must be a string".into()))
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn run(operation: &str, input: Value) -> Result<Value, ConnectorError> {
        let call = Invocation {
            operation: operation.into(),
            input,
            config: Value::Null,
            idempotency_key: "run/step/0/1".into(),
            connection: None,
            timeout: Duration::from_secs(1),
        };
        TextConnector::new().invoke(call).await
    }

    #[tokio::test]
    async fn actions_produce_results() {
        let encoded = run("base64_encode", json!({"text": "héllo"})).await.unwrap();
        assert_eq!(encoded, json!({"result": "aMOpbGxv"}));
        let decoded = run("base64_decode", json!({"text": "aMOpbGxv"})).await.unwrap();
        assert_eq!(decoded, json!({"result": "héllo"}));
        let hash = run("sha256_hex", json!({"text": "abc"})).await.unwrap();
        assert_eq!(
            hash["result"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let upper = run("upper", json!({"text": "a😀"})).await.unwrap();
        assert_eq!(upper, json!({"result": "A😀"}));
        let split = run("split", json!({"text": "a;b", "separator": ";"})).await.unwrap();
        assert_eq!(split, json!({"result": ["a", "b"]}));
        let joined = run("join", json!({"items": ["a", 1]})).await.unwrap();
        assert_eq!(joined, json!({"result": "a,1"}));
    }

    #[tokio::test]
    async fn bad_input_is_not_retryable() {
        let err = run("base64_decode", json!({"text": "%%"})).await.unwrap_err();
        assert!(!err.is_retryable());
        let err = run("nope", json!({})).await.unwrap_err();
        assert!(matches!(err, ConnectorError::UnknownOperation(_)));
    }
}
