//! The JSON types of FlowMeta's documented fields (contract §5.1). A body that breaks them is
//! refused before it is stored, since F4/F5 would echo it and the SDKs fail to decode it.

use serde_json::{Map, Value};

/// What a documented field must hold. `null` is accepted for every field: both SDKs read it
/// as absent.
#[derive(Debug, Clone, Copy)]
enum Kind {
    String,
    Bool,
    Object,
    ObjectList,
    TagList,
}

/// The fields a client sends. `id`, `type`, `status`, `version` and the times are set by the
/// server, which drops what the client sent, so they are not checked.
const FIELDS: &[(&str, Kind)] = &[
    ("name", Kind::String),
    ("description", Kind::String),
    ("icon", Kind::String),
    ("dev_status", Kind::String),
    ("schemaVersion", Kind::String),
    ("steps", Kind::ObjectList),
    ("graph", Kind::Object),
    ("functions", Kind::Object),
    ("extend_configs", Kind::Object),
    ("connectors", Kind::ObjectList),
    ("connectors_latest", Kind::ObjectList),
    ("installed_connector", Kind::String),
    ("tags", Kind::TagList),
    ("template_id", Kind::String),
    ("template_name", Kind::String),
    ("flow_source_type", Kind::String),
    ("test_result", Kind::String),
    ("is_valid", Kind::Bool),
    ("label", Kind::String),
    ("notice_status", Kind::String),
    ("his_transfer_status", Kind::String),
    ("webhook", Kind::String),
    ("apig_url", Kind::String),
    ("apic_id", Kind::String),
    ("apic_release_status", Kind::String),
    ("project_id", Kind::String),
    ("domain_id", Kind::String),
    ("user_id", Kind::String),
    ("enterprise_project_id", Kind::String),
    ("enterprise_project_name", Kind::String),
];

/// The first documented field whose value has the wrong JSON type, described for the caller.
pub(crate) fn wrong_type(meta: &Map<String, Value>) -> Option<String> {
    FIELDS.iter().find_map(|&(field, kind)| {
        let value = meta.get(field)?;
        let wanted = match kind {
            _ if value.is_null() => return None,
            Kind::String if value.is_string() => return None,
            Kind::Bool if value.is_boolean() => return None,
            Kind::Object if value.is_object() => return None,
            Kind::ObjectList if is_list_of(value, Value::is_object) => return None,
            Kind::TagList if is_list_of(value, is_tag) => return None,
            Kind::String => "a string",
            Kind::Bool => "a boolean",
            Kind::Object => "an object",
            Kind::ObjectList => "a list of objects",
            Kind::TagList => "a list of {\"tagKey\": string, \"tagValue\": string} objects",
        };
        Some(format!("`{field}` must be {wanted}, got {}", type_name(value)))
    })
}

fn is_list_of(value: &Value, item: fn(&Value) -> bool) -> bool {
    value.as_array().is_some_and(|items| items.iter().all(item))
}

fn is_tag(value: &Value) -> bool {
    let Some(tag) = value.as_object() else {
        return false;
    };
    ["tagKey", "tagValue"]
        .iter()
        .all(|key| tag.get(*key).is_none_or(|v| v.is_string() || v.is_null()))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(meta: &Value) -> Option<String> {
        wrong_type(meta.as_object().unwrap())
    }

    #[test]
    fn documented_fields_must_have_their_types() {
        assert_eq!(check(&json!({"icon": 5})).unwrap(), "`icon` must be a string, got a number");
        assert!(check(&json!({"tags": "x"})).unwrap().starts_with("`tags` must be a list"));
        assert!(check(&json!({"tags": [{"tagKey": 1}]})).is_some());
        assert!(check(&json!({"is_valid": "true"})).unwrap().contains("a boolean"));
        assert!(check(&json!({"graph": []})).unwrap().contains("`graph` must be an object"));
        assert!(check(&json!({"connectors": [1]})).is_some());
    }

    #[test]
    fn well_typed_nulls_and_unknown_fields_pass() {
        let meta = json!({"name": "a", "icon": null, "tags": [{"tagKey": "k", "tagValue": "v"}],
            "is_valid": true, "graph": {}, "connectors": [{}], "whatever": 5});
        assert_eq!(check(&meta), None);
    }
}
