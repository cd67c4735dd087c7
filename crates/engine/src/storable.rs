//! Values made storable in PostgreSQL, whose `text` and `jsonb` cannot hold U+0000.
//!
//! A step may legitimately produce a NUL (a decoded binary, a byte read off the network), and
//! a run's record must still commit: one unstorable value would otherwise fail the whole batch
//! of runs it is written with. What is stored has each NUL replaced by U+FFFD; the running flow
//! keeps the original value in memory, so only the record (and a resume from it) differs.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::journal::StepRecord;

/// What stands in for a NUL in stored text.
const REPLACEMENT: &str = "\u{FFFD}";

/// `text` without NUL characters, borrowed when it had none.
pub fn text(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', REPLACEMENT))
    } else {
        Cow::Borrowed(text)
    }
}

/// `value` with NUL characters replaced in every string and key, borrowed when it had none.
pub fn json(value: &Value) -> Cow<'_, Value> {
    if has_nul(value) {
        Cow::Owned(replaced(value))
    } else {
        Cow::Borrowed(value)
    }
}

/// The JSON text of the records' inputs and outputs, in bytes, as the statements that store
/// them as rows bind it: what sizes a batch of them.
pub fn records_len(records: &[StepRecord]) -> usize {
    records.iter().map(|r| json_len(&r.input) + json_len(&r.output)).sum()
}

/// The length of `value` as JSON text, counted without building the text.
pub fn json_len(value: &impl serde::Serialize) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing to a counter cannot fail, and a `Value` always serializes.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn replaced(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace('\0', REPLACEMENT)),
        Value::Array(items) => Value::Array(items.iter().map(replaced).collect()),
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map {
                out.insert(k.replace('\0', REPLACEMENT), replaced(v));
            }
            Value::Object(out)
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_without_nul_are_borrowed() {
        let v = json!({"a": ["x", 1, {"b": null}]});
        assert!(matches!(json(&v), Cow::Borrowed(_)));
        assert!(matches!(text("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn nul_in_strings_and_keys_is_replaced() {
        let v = json!({"k\u{0}": ["a\u{0}b", 2], "n": {"m": "\u{0}"}});
        let stored = json(&v).into_owned();
        assert_eq!(stored, json!({"k\u{FFFD}": ["a\u{FFFD}b", 2], "n": {"m": "\u{FFFD}"}}));
        assert_eq!(text("x\u{0}y"), "x\u{FFFD}y");
    }
}
