//! Reading an OpenAPI 3.x or Swagger 2.0 document into connector actions, and
//! [`OpenApiConnector`], which runs those actions over HTTP with a connection's
//! authentication.
//!
//! Each operation becomes one action whose id is its `operationId` (or `<method>_<path>` when
//! it has none). The action's input is an object with one property per parameter plus `body`
//! for the request body; its output is `{status, headers, body}` as with the HTTP connector.

use std::collections::HashSet;
use std::sync::OnceLock;

use connector_api::{
    async_trait, Connection, Connector, ConnectorError, Descriptor, Invocation, Operation,
};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};
use serde_json::{json, Map, Value};

use crate::connectors::http::{
    apply_header_auth, apply_query_auth, exchange, insert_header, plain,
};

/// Why a document is not usable; the text names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DocumentError(pub String);

fn bad(text: impl Into<String>) -> DocumentError {
    DocumentError(text.into())
}

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];
/// How deep `$ref`s inside schemas are expanded; deeper (or recursive) ones become `{}`.
const MAX_SCHEMA_DEPTH: usize = 8;

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Path,
    Query,
    Header,
    Cookie,
}

#[derive(Debug, Clone)]
struct Param {
    name: String,
    place: Place,
}

/// One operation, ready to be sent.
#[derive(Debug, Clone)]
struct Endpoint {
    id: String,
    method: Method,
    path: String,
    params: Vec<Param>,
    form_body: bool,
}

/// A parsed document: what the catalog lists and what execution needs.
#[derive(Debug, Clone)]
pub struct ApiDocument {
    pub title: String,
    pub description: String,
    /// `servers[0].url` (3.x) or `scheme://host/basePath` (2.0), when the document has one.
    pub base_url: Option<String>,
    pub operations: Vec<Operation>,
    endpoints: Vec<Endpoint>,
    /// The first `apiKey` security scheme: (parameter name, `header` or `query`).
    api_key: Option<(String, String)>,
}

/// Accepts a JSON object, or a string holding JSON or YAML text.
pub fn normalize(swagger: &Value) -> Result<Value, DocumentError> {
    let doc = match swagger {
        Value::Object(_) => swagger.clone(),
        Value::String(text) => serde_json::from_str(text)
            .or_else(|_| serde_norway::from_str::<Value>(text))
            .map_err(|e| bad(format!("`swagger` is neither JSON nor YAML: {e}")))?,
        Value::Null => return Err(bad("`swagger` is missing")),
        _ => return Err(bad("`swagger` must be an object or a JSON/YAML string")),
    };
    if !doc.is_object() {
        return Err(bad("`swagger` must be a JSON object (an OpenAPI document)"));
    }
    Ok(doc)
}

/// Parses and checks a document (already [`normalize`]d).
pub fn parse(doc: &Value) -> Result<ApiDocument, DocumentError> {
    let v2 = match (doc.get("openapi"), doc.get("swagger")) {
        (Some(Value::String(v)), _) if v.starts_with("3.") => false,
        (_, Some(Value::String(v))) if v == "2.0" => true,
        (Some(v), _) => return Err(bad(format!("unsupported `openapi` version {v}: use 3.x"))),
        (_, Some(v)) => return Err(bad(format!("unsupported `swagger` version {v}: use 2.0"))),
        (None, None) => {
            return Err(bad("not an OpenAPI document: neither `openapi: 3.x` nor `swagger: 2.0`"))
        }
    };
    let info = doc.get("info").and_then(Value::as_object);
    let title = info.and_then(|i| i.get("title")).and_then(Value::as_str).unwrap_or_default();
    let description =
        info.and_then(|i| i.get("description")).and_then(Value::as_str).unwrap_or_default();
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return Err(bad("`paths` is missing or not an object"));
    };
    let walker = Walker { doc };
    let mut operations = Vec::new();
    let mut endpoints = Vec::new();
    let mut seen = HashSet::new();
    for (path, item) in paths {
        let Some(item) = walker.resolve(item)?.as_object() else {
            return Err(bad(format!("path `{path}` is not an object")));
        };
        let shared = item.get("parameters").cloned().unwrap_or(Value::Null);
        // In the document's order (serde_json keeps it), so listings follow the author's.
        for (method, op) in item.iter().filter(|(m, _)| METHODS.contains(&m.as_str())) {
            let method = method.as_str();
            let (operation, endpoint) = walker.operation(path, method, op, &shared, v2)?;
            if !seen.insert(operation.id.clone()) {
                return Err(bad(format!("duplicate operationId `{}`", operation.id)));
            }
            operations.push(operation);
            endpoints.push(endpoint);
        }
    }
    if operations.is_empty() {
        return Err(bad("`paths` defines no operations"));
    }
    Ok(ApiDocument {
        title: title.to_owned(),
        description: description.to_owned(),
        base_url: base_url(doc, v2),
        operations,
        endpoints,
        api_key: api_key_scheme(doc, v2),
    })
}

fn base_url(doc: &Value, v2: bool) -> Option<String> {
    if !v2 {
        let url = doc.pointer("/servers/0/url").and_then(Value::as_str)?;
        return Some(url.trim_end_matches('/').to_owned());
    }
    let host = doc.get("host").and_then(Value::as_str)?;
    let scheme = doc.pointer("/schemes/0").and_then(Value::as_str).unwrap_or("https");
    let base = doc.get("basePath").and_then(Value::as_str).unwrap_or("");
    Some(format!("{scheme}://{host}{}", base.trim_end_matches('/')))
}

fn api_key_scheme(doc: &Value, v2: bool) -> Option<(String, String)> {
    let schemes = if v2 {
        doc.get("securityDefinitions")
    } else {
        doc.pointer("/components/securitySchemes")
    };
    schemes?.as_object()?.values().find_map(|s| {
        if s.get("type").and_then(Value::as_str) != Some("apiKey") {
            return None;
        }
        let name = s.get("name").and_then(Value::as_str)?;
        let place = s.get("in").and_then(Value::as_str).unwrap_or("header");
        Some((name.to_owned(), place.to_owned()))
    })
}

/// Resolves local `$ref`s of one document.
struct Walker<'a> {
    doc: &'a Value,
}

impl<'a> Walker<'a> {
    /// The target of a `$ref` object (following chains), or the value itself.
    fn resolve(&self, value: &'a Value) -> Result<&'a Value, DocumentError> {
        let mut current = value;
        for _ in 0..16 {
            let Some(target) = current.get("$ref").and_then(Value::as_str) else {
                return Ok(current);
            };
            current = self.lookup(target)?;
        }
        Err(bad("`$ref` chain is too long (circular?)"))
    }

    fn lookup(&self, target: &str) -> Result<&'a Value, DocumentError> {
        let Some(pointer) = target.strip_prefix('#') else {
            return Err(bad(format!("`$ref` `{target}` is not local to the document")));
        };
        self.doc.pointer(pointer).ok_or_else(|| bad(format!("unresolvable `$ref` `{target}`")))
    }

    /// A schema with its `$ref`s expanded up to a depth, recursive ones left open.
    fn schema(&self, value: &Value, depth: usize) -> Result<Value, DocumentError> {
        if depth > MAX_SCHEMA_DEPTH {
            return Ok(json!({}));
        }
        Ok(match value {
            Value::Object(map) => {
                if let Some(target) = map.get("$ref").and_then(Value::as_str) {
                    return self.schema(self.lookup(target)?, depth + 1);
                }
                let mut out = Map::new();
                for (k, v) in map {
                    out.insert(k.clone(), self.schema(v, depth + 1)?);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(
                items.iter().map(|v| self.schema(v, depth + 1)).collect::<Result<_, _>>()?,
            ),
            other => other.clone(),
        })
    }

    fn operation(
        &self,
        path: &str,
        method: &str,
        op: &'a Value,
        shared: &'a Value,
        v2: bool,
    ) -> Result<(Operation, Endpoint), DocumentError> {
        let op = self.resolve(op)?;
        let Some(op_map) = op.as_object() else {
            return Err(bad(format!("{} {path} is not an object", method.to_uppercase())));
        };
        let id = match op_map.get("operationId") {
            Some(Value::String(id)) if !id.trim().is_empty() => id.trim().to_owned(),
            Some(other) if !other.is_null() => {
                return Err(bad(format!("{} {path}: `operationId` must be a string", method)))
            }
            _ => derived_id(method, path),
        };
        let text = |k: &str| op_map.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let mut properties = Map::new();
        let mut required = Vec::new();
        let mut params = Vec::new();
        let mut form_body = false;
        let mut body_schema: Option<(Value, bool)> = None;
        let own = op_map.get("parameters").unwrap_or(&Value::Null);
        let lists = [shared, own];
        for list in lists.iter().filter(|l| !l.is_null()) {
            let Some(list) = list.as_array() else {
                return Err(bad(format!("{id}: `parameters` must be an array")));
            };
            for raw in list {
                let p = self.resolve(raw)?;
                let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
                let place = p.get("in").and_then(Value::as_str).unwrap_or_default();
                if name.is_empty() {
                    return Err(bad(format!("{id}: a parameter has no `name`")));
                }
                let is_required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
                let schema = match (v2, place) {
                    (true, "body") => {
                        let schema = self.schema(p.get("schema").unwrap_or(&json!({})), 0)?;
                        body_schema = Some((schema, is_required));
                        continue;
                    }
                    (true, _) => {
                        let mut s = p.as_object().cloned().unwrap_or_default();
                        for k in ["name", "in", "required", "description", "collectionFormat"] {
                            s.remove(k);
                        }
                        self.schema(&Value::Object(s), 0)?
                    }
                    (false, _) => self.schema(p.get("schema").unwrap_or(&json!({})), 0)?,
                };
                let place = match place {
                    "path" => Place::Path,
                    "query" => Place::Query,
                    "header" => Place::Header,
                    "cookie" => Place::Cookie,
                    "formData" => {
                        form_body = true;
                        let entry = body_schema.get_or_insert_with(|| {
                            (json!({"type": "object", "properties": {}}), false)
                        });
                        entry.0["properties"][name] = schema;
                        continue;
                    }
                    other => {
                        return Err(bad(format!(
                            "{id}: parameter `{name}` has an unknown location `{other}`"
                        )))
                    }
                };
                // An operation's own parameter overrides a path-level one of the same name.
                params.retain(|q: &Param| q.name != name);
                params.push(Param { name: name.to_owned(), place });
                properties.insert(name.to_owned(), schema);
                if is_required || place == Place::Path {
                    required.push(Value::String(name.to_owned()));
                }
            }
        }
        if !v2 {
            if let Some(raw) = op_map.get("requestBody") {
                let body = self.resolve(raw)?;
                let is_required = body.get("required").and_then(Value::as_bool).unwrap_or(false);
                let content = body.get("content").and_then(Value::as_object);
                let (media, schema) = content
                    .and_then(|c| {
                        c.iter()
                            .find(|(m, _)| m.contains("json"))
                            .or_else(|| c.iter().next())
                            .map(|(m, v)| (m.clone(), v.get("schema").cloned()))
                    })
                    .unwrap_or_default();
                form_body = media == "application/x-www-form-urlencoded";
                let schema = self.schema(&schema.unwrap_or_else(|| json!({})), 0)?;
                body_schema = Some((schema, is_required));
            }
        }
        if let Some((schema, is_required)) = body_schema {
            properties.insert("body".into(), schema);
            if is_required {
                required.push(Value::String("body".into()));
            }
        }
        let output = self.output(op_map, v2)?;
        let input_schema =
            json!({"type": "object", "properties": properties, "required": required});
        let output_schema = json!({"type": "object", "properties": {
            "status": {"type": "integer"}, "headers": {"type": "object"}, "body": output}});
        let summary = text("summary");
        let operation = Operation {
            id: id.clone(),
            name: if summary.is_empty() { id.clone() } else { summary },
            description: text("description"),
            input_schema,
            output_schema,
            external: true,
        };
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| bad(format!("{id}: bad method")))?;
        let endpoint = Endpoint { id, method, path: path.to_owned(), params, form_body };
        Ok((operation, endpoint))
    }

    /// The schema of the first success response (2xx, else `default`).
    fn output(&self, op: &Map<String, Value>, v2: bool) -> Result<Value, DocumentError> {
        let Some(responses) = op.get("responses").and_then(Value::as_object) else {
            return Ok(json!({}));
        };
        let chosen = responses
            .iter()
            .filter(|(code, _)| code.starts_with('2'))
            .min_by(|a, b| a.0.cmp(b.0))
            .or_else(|| responses.iter().find(|(code, _)| *code == "default"));
        let Some((_, response)) = chosen else { return Ok(json!({})) };
        let response = self.resolve(response)?;
        let schema = if v2 {
            response.get("schema").cloned()
        } else {
            response.get("content").and_then(Value::as_object).and_then(|c| {
                c.iter()
                    .find(|(m, _)| m.contains("json"))
                    .or_else(|| c.iter().next())
                    .and_then(|(_, v)| v.get("schema").cloned())
            })
        };
        self.schema(&schema.unwrap_or_else(|| json!({})), 0)
    }
}

fn derived_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        id.push('_');
        id.extend(part.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_'));
    }
    id
}

/// Characters escaped inside a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

/// A connector made from a stored document.
#[derive(Debug)]
pub struct OpenApiConnector {
    descriptor: Descriptor,
    api: ApiDocument,
}

impl OpenApiConnector {
    pub fn new(id: String, version: String, name: String, api: ApiDocument) -> Self {
        let descriptor = Descriptor {
            id,
            version,
            name,
            description: api.description.clone(),
            category: "custom".into(),
            triggers: Vec::new(),
            actions: api.operations.clone(),
        };
        OpenApiConnector { descriptor, api }
    }

    /// The connection, with the document's API-key placement as the default.
    fn connection(&self, call: &Invocation) -> Option<Connection> {
        let mut connection = call.connection.clone()?;
        let is_key = crate::connections::AuthType::parse(&connection.auth_type)
            == Some(crate::connections::AuthType::ApiKey);
        if let (true, Some((name, place))) = (is_key, &self.api.api_key) {
            connection.auth_info.entry("name".into()).or_insert_with(|| name.clone());
            connection.auth_info.entry("in".into()).or_insert_with(|| place.clone());
        }
        connection.auth_type = crate::connections::AuthType::parse(&connection.auth_type)
            .map_or(connection.auth_type, |t| t.as_str().to_owned());
        Some(connection)
    }

    fn base(&self, connection: Option<&Connection>) -> Result<String, ConnectorError> {
        let configured = connection.and_then(|c| {
            let host = c.settings.get("host_config")?;
            ["url", "base_url", "host"].iter().find_map(|k| host.get(*k)?.as_str())
        });
        let base = configured.map(str::to_owned).or_else(|| self.api.base_url.clone());
        match base {
            Some(b) if b.starts_with("http://") || b.starts_with("https://") => {
                Ok(b.trim_end_matches('/').to_owned())
            }
            _ => Err(ConnectorError::fatal(
                "the document names no absolute server URL: set `host_config.url` on the \
                 connection",
            )),
        }
    }
}

#[async_trait]
impl Connector for OpenApiConnector {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    async fn invoke(&self, call: Invocation) -> Result<Value, ConnectorError> {
        let Some(endpoint) = self.api.endpoints.iter().find(|e| e.id == call.operation) else {
            return Err(ConnectorError::UnknownOperation(call.operation));
        };
        let connection = self.connection(&call);
        let input = call.input.as_object().cloned().unwrap_or_default();
        let mut path = endpoint.path.clone();
        let mut query = Vec::new();
        let mut headers = HeaderMap::new();
        let mut cookies = Vec::new();
        for param in &endpoint.params {
            let Some(value) = input.get(&param.name).filter(|v| !v.is_null()) else {
                if param.place == Place::Path {
                    let msg = format!("path parameter `{}` is required", param.name);
                    return Err(ConnectorError::InvalidInput(msg));
                }
                continue;
            };
            match param.place {
                Place::Path => {
                    let encoded = utf8_percent_encode(&plain(value), SEGMENT).to_string();
                    path = path.replace(&format!("{{{}}}", param.name), &encoded);
                }
                Place::Query => match value {
                    Value::Array(items) => {
                        query.extend(items.iter().map(|v| (param.name.clone(), plain(v))))
                    }
                    other => query.push((param.name.clone(), plain(other))),
                },
                Place::Header => insert_header(&mut headers, &param.name, &plain(value))?,
                Place::Cookie => cookies.push(format!("{}={}", param.name, plain(value))),
            }
        }
        if !cookies.is_empty() {
            insert_header(&mut headers, "Cookie", &cookies.join("; "))?;
        }
        insert_header(&mut headers, "Idempotency-Key", &call.idempotency_key)?;
        let base = self.base(connection.as_ref())?;
        let mut url = Url::parse(&format!("{base}{path}"))
            .map_err(|e| ConnectorError::fatal(format!("bad URL for `{}`: {e}", endpoint.id)))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter());
        }
        if let Some(connection) = &connection {
            apply_query_auth(connection, &mut url)?;
        }
        let mut request =
            client().request(endpoint.method.clone(), url).headers(headers).timeout(call.timeout);
        if let Some(connection) = &connection {
            request = apply_header_auth(connection, request)?;
        }
        if let Some(body) = input.get("body").filter(|b| !b.is_null()) {
            request = match (endpoint.form_body, body.as_object()) {
                (true, Some(fields)) => {
                    let pairs: Vec<(String, String)> =
                        fields.iter().map(|(k, v)| (k.clone(), plain(v))).collect();
                    request.form(&pairs)
                }
                _ => request.json(body),
            };
        }
        exchange(request, true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pets() -> Value {
        json!({
            "openapi": "3.0.3",
            "info": {"title": "Pets", "version": "1"},
            "servers": [{"url": "http://localhost:1/api/"}],
            "components": {
                "schemas": {"Pet": {"type": "object", "required": ["name"],
                    "properties": {"name": {"type": "string"}, "tag": {"type": "string"}}}},
                "securitySchemes": {"key": {"type": "apiKey", "name": "X-Pet-Key", "in": "header"}}
            },
            "paths": {
                "/pets": {
                    "post": {"operationId": "addPet", "summary": "Add a pet",
                        "requestBody": {"required": true, "content": {"application/json":
                            {"schema": {"$ref": "#/components/schemas/Pet"}}}},
                        "responses": {"201": {"description": "ok", "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Pet"}}}}}},
                    "get": {"parameters": [{"name": "limit", "in": "query",
                        "schema": {"type": "integer"}}],
                        "responses": {"200": {"description": "ok"}}}
                },
                "/pets/{petId}": {"parameters": [{"name": "petId", "in": "path",
                    "required": true, "schema": {"type": "string"}}],
                    "get": {"operationId": "getPet", "responses": {"200": {"description": "ok"}}}}
            }
        })
    }

    #[test]
    fn an_openapi_3_document_becomes_actions() {
        let api = parse(&pets()).unwrap();
        let ids: Vec<_> = api.operations.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["addPet", "get_pets", "getPet"]);
        let add = &api.operations[0];
        assert_eq!(add.name, "Add a pet");
        assert_eq!(add.input_schema["required"], json!(["body"]));
        assert_eq!(add.input_schema["properties"]["body"]["required"], json!(["name"]));
        assert_eq!(add.output_schema["properties"]["body"]["type"], "object");
        assert_eq!(api.operations[2].input_schema["required"], json!(["petId"]));
        assert_eq!(api.base_url.as_deref(), Some("http://localhost:1/api"));
        assert_eq!(api.api_key, Some(("X-Pet-Key".into(), "header".into())));
    }

    #[test]
    fn a_swagger_2_document_becomes_actions() {
        let doc = json!({"swagger": "2.0", "info": {"title": "T"}, "host": "h.example",
            "basePath": "/v1", "schemes": ["http"],
            "definitions": {"Pet": {"type": "object"}},
            "paths": {"/pets": {"post": {"operationId": "addPet", "parameters": [
                {"name": "pet", "in": "body", "required": true,
                 "schema": {"$ref": "#/definitions/Pet"}},
                {"name": "dry", "in": "query", "type": "boolean"}],
                "responses": {"200": {"schema": {"$ref": "#/definitions/Pet"}}}}}}});
        let api = parse(&doc).unwrap();
        let add = &api.operations[0];
        assert_eq!(add.input_schema["properties"]["dry"]["type"], "boolean");
        assert_eq!(add.input_schema["properties"]["body"]["type"], "object");
        assert_eq!(api.base_url.as_deref(), Some("http://h.example/v1"));
    }

    #[test]
    fn yaml_text_is_accepted() {
        let text = "openapi: 3.0.0\ninfo: {title: Y}\npaths:\n  /a:\n    get:\n      \
                    operationId: a\n      responses: {'200': {description: ok}}\n";
        let doc = normalize(&Value::String(text.into())).unwrap();
        assert_eq!(parse(&doc).unwrap().operations[0].id, "a");
    }

    #[test]
    fn broken_documents_say_what_is_wrong() {
        let err = |doc: Value| parse(&normalize(&doc).unwrap()).unwrap_err().0;
        assert!(err(json!({"info": {}})).contains("neither"));
        assert!(err(json!({"openapi": "3.0.0"})).contains("`paths`"));
        assert!(err(json!({"openapi": "3.0.0", "paths": {}})).contains("no operations"));
        let dangling = json!({"openapi": "3.0.0", "paths": {"/a": {"get": {"operationId": "a",
            "responses": {"200": {"$ref": "#/components/responses/Nope"}}}}}});
        assert!(err(dangling).contains("#/components/responses/Nope"));
        let twice = json!({"openapi": "3.0.0", "paths": {
            "/a": {"get": {"operationId": "x"}}, "/b": {"get": {"operationId": "x"}}}});
        assert!(err(twice).contains("duplicate operationId `x`"));
        assert!(normalize(&json!(3)).is_err());
    }
}
