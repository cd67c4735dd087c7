//! The `Control` connector: a descriptor listing the control actions so that catalogs and
//! validation see them. The engine runs these steps itself and never calls `invoke`.

use connector_api::{async_trait, Connector, ConnectorError, Descriptor, Invocation};
use serde_json::{json, Value};

use super::operation;

/// Descriptor-only connector for control steps.
#[derive(Debug)]
pub struct ControlConnector {
    descriptor: Descriptor,
}

/// The control operation ids, as used in `actionRef.refId`.
pub const CONTROL_OPERATIONS: [(&str, &str); 10] = [
    ("condition", "Run branch `yes` or `no` depending on predicates"),
    ("switch", "Run the branch whose label equals `value`, else `default`"),
    ("parallel", "Run every branch concurrently"),
    ("foreach", "Run branch `body` once per element of `items`"),
    ("while", "Run branch `body` while the predicates hold"),
    ("break", "Leave the innermost loop"),
    ("continue", "Skip to the next iteration of the innermost loop"),
    ("terminate", "End the run with `status` and `message`"),
    ("scope", "Run branch `try`; on failure run branch `catch`"),
    ("shard", "Split `items` into chunks of `size`"),
];

impl ControlConnector {
    pub fn new() -> Self {
        let actions = CONTROL_OPERATIONS
            .iter()
            .map(|(id, doc)| operation(id, doc, json!({}), false))
            .collect();
        let descriptor = Descriptor {
            id: "Control".into(),
            version: "1".into(),
            name: "Control".into(),
            description: "Branches, loops and error handling".into(),
            category: "builtin".into(),
            triggers: Vec::new(),
            actions,
        };
        Self { descriptor }
    }
}

impl Default for ControlConnector {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Connector for ControlConnector {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    async fn invoke(&self, call: Invocation) -> Result<Value, ConnectorError> {
        Err(ConnectorError::fatal(format!(
            "control action `{}` is run by the engine, not invoked",
            call.operation
        )))
    }
}
