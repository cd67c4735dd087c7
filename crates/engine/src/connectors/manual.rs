//! The `ManualTrigger` connector: a run started by hand, whose output `body` is the submitted
//! input.

use connector_api::{async_trait, Connector, ConnectorError, Descriptor, Invocation};
use serde_json::{json, Value};

use super::operation;

/// Trigger `manual`, with `ManualTrigger` accepted as an alias because MSSI's own samples use
/// the connector id as `refId`.
#[derive(Debug)]
pub struct ManualTrigger {
    descriptor: Descriptor,
}

impl ManualTrigger {
    pub fn new() -> Self {
        let describe = "Started by a user; output `{body}` holds the submitted input";
        let descriptor = Descriptor {
            id: "ManualTrigger".into(),
            version: "1".into(),
            name: "Manual trigger".into(),
            description: describe.into(),
            category: "trigger".into(),
            triggers: vec![
                operation("manual", describe, json!({}), false),
                operation("ManualTrigger", "Alias of `manual`", json!({}), false),
            ],
            actions: Vec::new(),
        };
        Self { descriptor }
    }
}

impl Default for ManualTrigger {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Connector for ManualTrigger {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    async fn invoke(&self, call: Invocation) -> Result<Value, ConnectorError> {
        if self.descriptor.trigger(&call.operation).is_none() {
            return Err(ConnectorError::UnknownOperation(call.operation));
        }
        Ok(json!({ "body": call.input }))
    }
}
