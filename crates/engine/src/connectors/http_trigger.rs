//! The `HttpTrigger` connector (MSSI's "API flow"): a run started by an HTTP request to the
//! flow's hook URL, and the settings that say how that URL answers.
//!
//! The API layer turns the request into the trigger's input (`method`, `headers`, `query`,
//! `body`, `content_type`, `path`); the trigger passes it on unchanged as its output.
//! `docs/http-triggers.md` describes the whole feature.

use std::time::Duration;

use connector_api::{async_trait, Connector, ConnectorError, Descriptor, Invocation};
use serde_json::{json, Value};

use super::operation;

/// The connector id of the HTTP trigger.
pub const HTTP_TRIGGER_CONNECTOR: &str = "HttpTrigger";

/// Largest accepted `deadline_ms`: a caller is never held longer than this.
pub const MAX_DEADLINE: Duration = Duration::from_secs(300);

/// Trigger `http_request`.
#[derive(Debug)]
pub struct HttpTrigger {
    descriptor: Descriptor,
}

impl HttpTrigger {
    pub fn new() -> Self {
        let describe = "Started by an HTTP request to the flow's hook URL; output `{method, \
                        headers, query, body, content_type, path}`";
        let descriptor = Descriptor {
            id: HTTP_TRIGGER_CONNECTOR.into(),
            version: "1".into(),
            name: "HTTP trigger".into(),
            description: describe.into(),
            category: "trigger".into(),
            triggers: vec![operation("http_request", describe, json!({}), false)],
            actions: Vec::new(),
        };
        Self { descriptor }
    }
}

impl Default for HttpTrigger {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Connector for HttpTrigger {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    async fn invoke(&self, call: Invocation) -> Result<Value, ConnectorError> {
        if self.descriptor.trigger(&call.operation).is_none() {
            return Err(ConnectorError::UnknownOperation(call.operation));
        }
        Ok(call.input)
    }
}

/// Which methods the hook accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookMethod {
    Get,
    Post,
    Put,
    Delete,
    Any,
}

impl HookMethod {
    /// Whether a request with `method` (upper case) is accepted.
    pub fn allows(self, method: &str) -> bool {
        match self {
            HookMethod::Any => true,
            HookMethod::Get => method == "GET",
            HookMethod::Post => method == "POST",
            HookMethod::Put => method == "PUT",
            HookMethod::Delete => method == "DELETE",
        }
    }
}

/// How a caller of the hook proves who it is.
#[derive(Clone, PartialEq, Eq)]
pub enum HookAuth {
    None,
    /// The platform's `SDK-HMAC-SHA256` signature with an access key of the flow's project.
    AkSk,
    /// An `X-Auth-Token` scoped to the flow's project.
    Token,
    /// `X-Workbench-Signature: sha256=<hex of HMAC-SHA256(secret, raw body)>`.
    Hmac {
        secret: String,
    },
}

impl std::fmt::Debug for HookAuth {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HookAuth::None => "None",
            HookAuth::AkSk => "AkSk",
            HookAuth::Token => "Token",
            HookAuth::Hmac { .. } => "Hmac",
        })
    }
}

/// The `config` of an `HttpTrigger` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSettings {
    pub method: HookMethod,
    pub auth: HookAuth,
    /// Answer 202 with the running id at once instead of waiting for the run.
    pub asynchronous: bool,
    /// How long a synchronous caller waits before it gets 202 and the run goes on.
    pub deadline: Duration,
}

impl Default for HookSettings {
    fn default() -> Self {
        HookSettings {
            method: HookMethod::Any,
            auth: HookAuth::None,
            asynchronous: false,
            deadline: Duration::from_millis(30_000),
        }
    }
}

impl HookSettings {
    /// Reads the trigger step's `config` (`Null` means every default). Unknown values are
    /// refused so that a typo does not silently open a hook.
    pub fn from_config(config: &Value) -> Result<Self, String> {
        let mut settings = HookSettings::default();
        if config.is_null() {
            return Ok(settings);
        }
        let Some(map) = config.as_object() else {
            return Err("the HTTP trigger's config must be an object".into());
        };
        let text = |key: &str| -> Result<Option<String>, String> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_ascii_lowercase())),
                Some(_) => Err(format!("`config.{key}` must be a string")),
            }
        };
        if let Some(method) = text("method")? {
            settings.method = match method.as_str() {
                "get" => HookMethod::Get,
                "post" => HookMethod::Post,
                "put" => HookMethod::Put,
                "delete" => HookMethod::Delete,
                "any" | "*" => HookMethod::Any,
                other => {
                    return Err(format!(
                        "`config.method` `{other}` is not GET, POST, PUT, \
                                             DELETE or any"
                    ))
                }
            };
        }
        if let Some(auth) = text("auth")? {
            settings.auth = match auth.as_str() {
                "none" => HookAuth::None,
                "aksk" => HookAuth::AkSk,
                "token" => HookAuth::Token,
                "hmac" => {
                    let secret = match map.get("secret") {
                        Some(Value::String(s)) if !s.is_empty() => s.clone(),
                        _ => return Err("`config.auth` `hmac` needs a non-empty `secret`".into()),
                    };
                    HookAuth::Hmac { secret }
                }
                other => {
                    return Err(format!("`config.auth` `{other}` is not none, aksk, token or hmac"))
                }
            };
        }
        if let Some(mode) = text("mode")? {
            settings.asynchronous = match mode.as_str() {
                "sync" => false,
                "async" => true,
                other => return Err(format!("`config.mode` `{other}` is not sync or async")),
            };
        }
        match map.get("deadline_ms") {
            None | Some(Value::Null) => {}
            Some(ms) => {
                let ms = ms
                    .as_u64()
                    .filter(|ms| *ms <= MAX_DEADLINE.as_millis() as u64)
                    .ok_or_else(|| {
                        format!(
                            "`config.deadline_ms` must be an integer from 0 to {}",
                            MAX_DEADLINE.as_millis()
                        )
                    })?;
                settings.deadline = Duration::from_millis(ms);
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_any_method_no_auth_sync_thirty_seconds() {
        let settings = HookSettings::from_config(&Value::Null).unwrap();
        assert_eq!(settings, HookSettings::default());
        assert!(settings.method.allows("PATCH"));
        assert_eq!(settings.deadline, Duration::from_secs(30));
    }

    #[test]
    fn config_is_read_and_checked() {
        let config = json!({"method": "POST", "auth": "hmac", "secret": "s", "mode": "async",
            "deadline_ms": 50});
        let settings = HookSettings::from_config(&config).unwrap();
        assert_eq!(settings.method, HookMethod::Post);
        assert!(!settings.method.allows("GET"));
        assert_eq!(settings.auth, HookAuth::Hmac { secret: "s".into() });
        assert!(settings.asynchronous);
        assert_eq!(settings.deadline, Duration::from_millis(50));
        for bad in [
            json!({"method": "PATCH"}),
            json!({"auth": "basic"}),
            json!({"auth": "hmac"}),
            json!({"mode": "later"}),
            json!({"deadline_ms": -1}),
            json!({"deadline_ms": 10_000_000}),
            json!([]),
        ] {
            assert!(HookSettings::from_config(&bad).is_err(), "{bad}");
        }
    }
}
