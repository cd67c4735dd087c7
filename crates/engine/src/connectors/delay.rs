//! The `Delay` connector: waits `{ms}` milliseconds or `{seconds}` seconds.

use std::time::Duration;

use connector_api::{async_trait, Connector, ConnectorError, Descriptor, Invocation};
use serde_json::{json, Value};

use super::operation;

/// Pauses the run. External, so the run is checkpointed around it and a resumed run does not
/// wait again once the delay has finished.
#[derive(Debug)]
pub struct DelayConnector {
    descriptor: Descriptor,
}

impl DelayConnector {
    pub fn new() -> Self {
        let schema = json!({"type": "object", "properties": {
            "ms": {"type": "integer", "minimum": 0},
            "seconds": {"type": "number", "minimum": 0}}});
        let descriptor = Descriptor {
            id: "Delay".into(),
            version: "1".into(),
            name: "Delay".into(),
            description: "Wait before the next step".into(),
            category: "builtin".into(),
            triggers: Vec::new(),
            actions: vec![operation("delay", "Wait `ms` milliseconds or `seconds`", schema, true)],
        };
        Self { descriptor }
    }
}

impl Default for DelayConnector {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Connector for DelayConnector {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    async fn invoke(&self, call: Invocation) -> Result<Value, ConnectorError> {
        if call.operation != "delay" {
            return Err(ConnectorError::UnknownOperation(call.operation));
        }
        let ms = match (call.input.get("ms"), call.input.get("seconds")) {
            (Some(ms), _) => ms.as_u64(),
            (None, Some(s)) => s.as_f64().filter(|s| *s >= 0.0).map(|s| (s * 1000.0) as u64),
            (None, None) => None,
        };
        let Some(ms) = ms else {
            return Err(ConnectorError::InvalidInput(
                "delay needs `ms` (non-negative integer) or `seconds` (non-negative number)".into(),
            ));
        };
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(json!({"waited_ms": ms}))
    }
}
