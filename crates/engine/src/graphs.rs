//! Parsed flow versions, shared by everything in a process that executes runs: the workers and
//! the submitter's inline path. A `(flow, version)` pair names one immutable definition, so an
//! entry never goes stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::executor::Engine;
use crate::model::FlowGraph;
use crate::store;

/// Entries kept before the cache starts over.
const CAPACITY: usize = 1024;

#[derive(Debug, Default)]
pub struct FlowGraphs {
    graphs: Mutex<HashMap<(Uuid, i32), Arc<FlowGraph>>>,
}

impl FlowGraphs {
    /// The parsed graph of `version` of the flow, loaded and parsed on first use. The text of
    /// an error says why the run cannot start (it becomes the run's message).
    pub async fn get(
        &self,
        db: &PgPool,
        engine: &Engine,
        project_id: &str,
        flow_id: Uuid,
        version: i32,
    ) -> Result<Arc<FlowGraph>, String> {
        if let Some(graph) = self.lock().get(&(flow_id, version)) {
            return Ok(graph.clone());
        }
        let (definition, _) = store::find_version(db, flow_id, version)
            .await
            .map_err(|e| format!("loading the flow failed: {e}"))?
            .ok_or_else(|| format!("version {version} of the flow no longer exists"))?;
        let steps = definition.get("steps").cloned().unwrap_or(Value::Array(Vec::new()));
        let registry = crate::custom::registry_for(db, engine.registry(), project_id)
            .await
            .map_err(|e| format!("loading the project's connectors failed: {e}"))?;
        let graph = FlowGraph::parse(&steps, &registry).map_err(|errors| {
            let texts: Vec<_> = errors.iter().map(|e| e.message.as_str()).collect();
            format!("the flow definition is invalid: {}", texts.join("; "))
        })?;
        let graph = Arc::new(graph);
        let mut graphs = self.lock();
        if graphs.len() >= CAPACITY {
            graphs.clear();
        }
        graphs.insert((flow_id, version), graph.clone());
        Ok(graph)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, i32), Arc<FlowGraph>>> {
        self.graphs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
