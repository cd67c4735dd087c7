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
        let registry = crate::custom::registry_for(db, engine.registry(), project_id)
            .await
            .map_err(|e| format!("loading the project's connectors failed: {e}"))?;
        let graph = parse(&definition, &registry)?;
        self.remember(flow_id, version, &graph);
        Ok(graph)
    }

    /// The graphs of many `(project, flow, version)` triples at once, with one query for the
    /// definitions not cached and one per project for its connectors. A triple missing from
    /// the answer could not be loaded or parsed; [`FlowGraphs::get`] tells why.
    pub async fn get_many(
        &self,
        db: &PgPool,
        engine: &Engine,
        wanted: &[(&str, Uuid, i32)],
    ) -> HashMap<(Uuid, i32), Arc<FlowGraph>> {
        let mut found = HashMap::with_capacity(wanted.len());
        let mut missing = Vec::new();
        {
            let graphs = self.lock();
            for &(project, flow, version) in wanted {
                match graphs.get(&(flow, version)) {
                    Some(graph) => drop(found.insert((flow, version), graph.clone())),
                    None => missing.push((project, flow, version)),
                }
            }
        }
        if missing.is_empty() {
            return found;
        }
        let keys: Vec<(Uuid, i32)> = missing.iter().map(|&(_, f, v)| (f, v)).collect();
        let Ok(definitions) = store::find_versions(db, &keys).await else {
            return found;
        };
        let projects: HashMap<(Uuid, i32), &str> =
            missing.iter().map(|&(p, f, v)| ((f, v), p)).collect();
        let mut registries: HashMap<&str, Option<connector_api::Registry>> = HashMap::new();
        for (flow, version, definition) in definitions {
            let Some(&project) = projects.get(&(flow, version)) else { continue };
            if !registries.contains_key(project) {
                let registry = crate::custom::registry_for(db, engine.registry(), project).await;
                registries.insert(project, registry.ok());
            }
            let Some(Some(registry)) = registries.get(project) else { continue };
            if let Ok(graph) = parse(&definition, registry) {
                // Kept only while there is room: a burst of many flows (a fire time of
                // thousands of schedules) would otherwise push out the flows in steady use.
                let mut graphs = self.lock();
                if graphs.len() < CAPACITY {
                    graphs.insert((flow, version), graph.clone());
                }
                drop(graphs);
                found.insert((flow, version), graph);
            }
        }
        found
    }

    fn remember(&self, flow_id: Uuid, version: i32, graph: &Arc<FlowGraph>) {
        let mut graphs = self.lock();
        if graphs.len() >= CAPACITY {
            graphs.clear();
        }
        graphs.insert((flow_id, version), graph.clone());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, i32), Arc<FlowGraph>>> {
        self.graphs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Parses a stored definition's steps against the connectors of its project.
fn parse(definition: &Value, registry: &connector_api::Registry) -> Result<Arc<FlowGraph>, String> {
    let steps = definition.get("steps").cloned().unwrap_or(Value::Array(Vec::new()));
    let graph = FlowGraph::parse(&steps, registry).map_err(|errors| {
        let texts: Vec<_> = errors.iter().map(|e| e.message.as_str()).collect();
        format!("the flow definition is invalid: {}", texts.join("; "))
    })?;
    Ok(Arc::new(graph))
}
