//! Turning an HTTP request to a flow's hook into the HTTP trigger's output.
//!
//! Pure functions: the rules for bodies by Content-Type (JSON parsed, forms parsed with repeated
//! keys kept, anything else kept as text or base64), query strings and headers. A body is never
//! dropped; only malformed JSON under a JSON Content-Type is refused.

use axum::http::request::Parts;
use axum::http::HeaderMap;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult, Code};

/// Headers that carry credentials; they are not copied into the run's input, which is stored
/// and shown in the run history.
const HIDDEN_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "x-auth-token"];

/// `{method, headers, query, body, content_type, path}`, plus `body_encoding: "base64"` when
/// the body is binary.
pub fn trigger_input(parts: &Parts, body: &[u8]) -> ApiResult<Value> {
    let content_type = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let (body, binary) = parse_body(content_type.as_deref(), body)?;
    let mut input = json!({
        "method": parts.method.as_str(),
        "headers": headers(&parts.headers),
        "query": pairs(parts.uri.query().unwrap_or("").as_bytes()),
        "body": body,
        "content_type": content_type,
        "path": parts.uri.path(),
    });
    if binary {
        input["body_encoding"] = json!("base64");
    }
    Ok(input)
}

/// What kind of body a Content-Type announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Form,
    Raw,
}

fn kind(content_type: Option<&str>) -> BodyKind {
    let Some(content_type) = content_type else { return BodyKind::Raw };
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let Some((_, subtype)) = essence.split_once('/') else { return BodyKind::Raw };
    if subtype == "json" || subtype.ends_with("+json") {
        BodyKind::Json
    } else if essence == "application/x-www-form-urlencoded" {
        BodyKind::Form
    } else {
        BodyKind::Raw
    }
}

/// The body as JSON and whether it is base64 of binary bytes. An empty body is `null`.
fn parse_body(content_type: Option<&str>, bytes: &[u8]) -> ApiResult<(Value, bool)> {
    if bytes.is_empty() {
        return Ok((Value::Null, false));
    }
    match kind(content_type) {
        // serde_json's recursion limit turns absurd nesting into an error, not a stack
        // overflow.
        BodyKind::Json => serde_json::from_slice(bytes)
            .map(|v| (v, false))
            .map_err(|e| ApiError::with(Code::DataFormat, e)),
        BodyKind::Form => Ok((pairs(bytes), false)),
        // Text with a NUL is binary as far as storage goes: PostgreSQL text cannot hold it.
        BodyKind::Raw => Ok(match std::str::from_utf8(bytes) {
            Ok(text) if !text.contains('\0') => (Value::String(text.to_owned()), false),
            _ => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
                (Value::String(encoded), true)
            }
        }),
    }
}

/// `application/x-www-form-urlencoded` pairs as an object: a key given once maps to its text,
/// a repeated key to the array of its texts in order. Invalid UTF-8 is replaced, not refused.
fn pairs(bytes: &[u8]) -> Value {
    let mut map = Map::new();
    for (key, value) in form_urlencoded_parse(bytes) {
        add(&mut map, key, Value::String(value));
    }
    Value::Object(map)
}

fn form_urlencoded_parse(bytes: &[u8]) -> Vec<(String, String)> {
    bytes
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &pair[..0]),
            };
            (decode(key), decode(value))
        })
        .collect()
}

/// Decodes one form component: `+` is a space, `%XX` a byte.
fn decode(raw: &[u8]) -> String {
    let spaced: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn add(map: &mut Map<String, Value>, key: String, value: Value) {
    match map.get_mut(&key) {
        None => {
            map.insert(key, value);
        }
        Some(Value::Array(values)) => values.push(value),
        Some(first) => {
            let first = first.take();
            map.insert(key, Value::Array(vec![first, value]));
        }
    }
}

/// Header names in lower case; a repeated header becomes an array.
fn headers(headers: &HeaderMap) -> Value {
    let mut map = Map::new();
    for (name, value) in headers {
        if HIDDEN_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        add(&mut map, name.as_str().to_owned(), Value::String(text));
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(content_type: Option<&str>, bytes: &[u8]) -> Value {
        parse_body(content_type, bytes).unwrap().0
    }

    #[test]
    fn json_types_are_kept_and_empty_is_null() {
        for text in ["{}", "[]", "null", "42", "\"x\"", "{\"😀\":1,\"a.b\":2}"] {
            let expected: Value = serde_json::from_str(text).unwrap();
            assert_eq!(body(Some("application/json"), text.as_bytes()), expected);
        }
        assert_eq!(body(Some("application/json"), b""), Value::Null);
        assert_eq!(
            body(Some("application/cloudevents+json; charset=utf-8"), b"{\"a\":1}"),
            json!({"a": 1})
        );
        assert_eq!(body(Some("Text/JSON"), b"1"), json!(1));
        assert!(parse_body(Some("application/json"), b"{").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(parse_body(Some("application/json"), deep.as_bytes()).is_err());
    }

    #[test]
    fn forms_keep_repeats_and_utf8() {
        let form =
            body(Some("application/x-www-form-urlencoded"), b"a=1&a=2&b=%F0%9F%98%80&c+d=e+f");
        assert_eq!(form, json!({"a": ["1", "2"], "b": "😀", "c d": "e f"}));
        assert_eq!(pairs(b"a=1&a=2&a=3&x"), json!({"a": ["1", "2", "3"], "x": ""}));
    }

    #[test]
    fn anything_else_is_text_or_base64() {
        let payload = b"{\"test\":\"ok\"}";
        for content_type in [None, Some(""), Some("text/plain"), Some("application/octet-stream")] {
            assert_eq!(body(content_type, payload), json!("{\"test\":\"ok\"}"), "{content_type:?}");
        }
        let (value, binary) = parse_body(Some("application/octet-stream"), &[0xff, 0x00]).unwrap();
        assert_eq!((value, binary), (json!("/wA="), true));
        let (value, binary) = parse_body(Some("text/plain"), b"a\0b").unwrap();
        assert_eq!((value, binary), (json!("YQBi"), true));
    }
}
