//! The `DataTransform` connector: builds a JSON value from mapped fields.

use connector_api::{async_trait, Connector, ConnectorError, Descriptor, Invocation};
use serde_json::{json, Value};

use super::operation;

/// Action `transform`: the output is the evaluated input's `value` field.
#[derive(Debug)]
pub struct DataTransform {
    descriptor: Descriptor,
}

impl DataTransform {
    pub fn new() -> Self {
        let schema = json!({"type": "object", "properties": {"value": {}}});
        let descriptor = Descriptor {
            id: "DataTransform".into(),
            version: "1".into(),
            name: "Data transform".into(),
            description: "Build a value from other steps' outputs".into(),
            category: "builtin".into(),
            triggers: Vec::new(),
            actions: vec![operation("transform", "Output the mapped `value`", schema, false)],
        };
        Self { descriptor }
    }
}

impl Default for DataTransform {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Connector for DataTransform {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    async fn invoke(&self, call: Invocation) -> Result<Value, ConnectorError> {
        if call.operation != "transform" {
            return Err(ConnectorError::UnknownOperation(call.operation));
        }
        let Value::Object(mut input) = call.input else {
            return Ok(Value::Null);
        };
        Ok(input.remove("value").unwrap_or(Value::Null))
    }
}
