//! Built-in connectors. They use only `connector_api` types, exactly as an outside connector
//! crate would, and are registered by [`builtin_registry`].

mod control;
mod delay;
pub(crate) mod http;
mod http_trigger;
mod manual;
mod response;
mod transform;

use std::sync::Arc;

use connector_api::{Operation, Registry};
use serde_json::{json, Value};

pub use control::{ControlConnector, CONTROL_OPERATIONS};
pub use delay::DelayConnector;
pub use http::HttpConnector;
pub use http_trigger::{
    HookAuth, HookMethod, HookSettings, HttpTrigger, HTTP_TRIGGER_CONNECTOR, MAX_DEADLINE,
};
pub use manual::ManualTrigger;
pub use response::{ResponseAction, RESPONSE_CONNECTOR};
pub use transform::DataTransform;

/// Every connector shipped with Workbench: `ManualTrigger`, `HttpTrigger`, `HTTP`, `Response`,
/// `DataTransform`, `Control`, `Delay` and `Text`.
pub fn builtin_registry() -> Registry {
    let mut registry = Registry::new();
    registry.register(Arc::new(ManualTrigger::new()));
    registry.register(Arc::new(HttpTrigger::new()));
    registry.register(Arc::new(ResponseAction::new()));
    registry.register(Arc::new(HttpConnector::new()));
    registry.register(Arc::new(DataTransform::new()));
    registry.register(Arc::new(ControlConnector::new()));
    registry.register(Arc::new(DelayConnector::new()));
    registry.register(Arc::new(connector_text::TextConnector::new()));
    registry
}

/// Shorthand for an operation entry of a descriptor.
fn operation(id: &str, description: &str, input_schema: Value, external: bool) -> Operation {
    Operation {
        id: id.to_string(),
        name: id.to_string(),
        description: description.to_string(),
        input_schema,
        output_schema: json!({}),
        external,
    }
}
