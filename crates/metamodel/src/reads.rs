//! Reads (our extension of the contract): one entity, a filtered listing, an entity's edges,
//! and a bounded walk over relationships.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::{MetamodelError, Result};
use crate::package::Catalog;
use crate::store::{self, Direction, EdgeRow, EntityFilter};
use crate::urn::Urn;
use crate::validate;
use crate::wire::{EntityResponse, RelationshipView, SignatureResp};
use crate::{Metamodel, Scope};

/// The deepest walk allowed.
pub const MAX_HOPS: u32 = 5;
/// The most nodes a walk returns; past it the walk stops and says so.
const MAX_NODES: usize = 1000;
/// The largest page of the listing (contract §1: clamp `limit` to 1000).
const MAX_LIMIT: i64 = 1000;

/// Filters and page of the entity listing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EntityQuery {
    /// Only entities of this type.
    #[serde(default, rename = "type")]
    pub entity_type: Option<String>,
    /// Only entities whose name contains this text, ignoring case.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub offset: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

/// A page of entities and how many match in total.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntityPage {
    pub total: i64,
    pub entities: Vec<EntityResponse>,
}

/// Where a walk starts and how far it goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WalkQuery {
    pub entity_urn: String,
    /// 1 to [`MAX_HOPS`].
    pub hops: u32,
    #[serde(default)]
    pub direction: Direction,
    /// Follow only edges with this code.
    #[serde(default)]
    pub relationship_code: Option<String>,
}

/// An entity reached by a walk, with its distance from the start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphNode {
    pub entity_urn: String,
    pub entity_name: String,
    pub entity_type: String,
    pub depth: u32,
}

/// The nodes and edges a walk found. `truncated` is true when it stopped at the node cap.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Graph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<RelationshipView>,
    pub truncated: bool,
}

impl Metamodel {
    /// One entity with all its signatures.
    pub async fn get_entity(&self, scope: &Scope, entity_urn: &str) -> Result<EntityResponse> {
        let catalog = self.catalog(scope).await?;
        let urn = parse_urn(entity_urn)?;
        let mut found = self.full_entities(scope, &catalog, std::slice::from_ref(&urn)).await?;
        found.pop().ok_or(MetamodelError::EntityNotFound(urn))
    }

    /// Entities ordered by type, name and URN, filtered by type and name substring.
    pub async fn list_entities(&self, scope: &Scope, query: &EntityQuery) -> Result<EntityPage> {
        let catalog = self.catalog(scope).await?;
        let offset = query.offset.unwrap_or(0);
        let limit = query.limit.unwrap_or(100);
        if offset < 0 || limit < 1 {
            let msg = "offset must be at least 0 and limit at least 1".into();
            return Err(MetamodelError::InvalidRequest(msg));
        }
        for (field, value) in [("type", &query.entity_type), ("name", &query.name)] {
            if let Some(value) = value {
                validate::storable(field, value).map_err(MetamodelError::InvalidRequest)?;
            }
        }
        let filter = EntityFilter {
            entity_type: query.entity_type.as_deref().filter(|t| !t.is_empty()),
            name_contains: query.name.as_deref().filter(|n| !n.is_empty()),
            offset,
            limit: limit.min(MAX_LIMIT),
        };
        let mut conn = self.pool.acquire().await?;
        let (total, rows) = store::list_entities(&mut conn, scope, &filter).await?;
        drop(conn);
        let urns: Vec<String> = rows.iter().map(|r| r.urn.clone()).collect();
        let entities = self.full_entities(scope, &catalog, &urns).await?;
        Ok(EntityPage { total, entities })
    }

    /// The edges leaving, arriving at, or touching an entity.
    pub async fn relationships_of(
        &self,
        scope: &Scope,
        entity_urn: &str,
        direction: Direction,
    ) -> Result<Vec<RelationshipView>> {
        self.catalog(scope).await?;
        let urn = parse_urn(entity_urn)?;
        let urns = std::slice::from_ref(&urn);
        if store::entity_types(&self.pool, scope, urns).await?.is_empty() {
            return Err(MetamodelError::EntityNotFound(urn));
        }
        let rows = store::edges_touching(&self.pool, scope, urns, direction, None).await?;
        Ok(rows.into_iter().map(view).collect())
    }

    /// Breadth-first walk from an entity over at most `hops` edges, one query per hop.
    pub async fn walk(&self, scope: &Scope, query: &WalkQuery) -> Result<Graph> {
        if query.hops == 0 || query.hops > MAX_HOPS {
            let msg = format!("hops must be 1-{MAX_HOPS}");
            return Err(MetamodelError::InvalidRequest(msg));
        }
        self.catalog(scope).await?;
        let start = parse_urn(&query.entity_urn)?;
        let code = query.relationship_code.as_deref().filter(|c| !c.is_empty());
        if let Some(code) = code {
            validate::storable("relationship_code", code)
                .map_err(MetamodelError::InvalidRequest)?;
        }

        let mut depth_of: HashMap<String, u32> = HashMap::from([(start.clone(), 0)]);
        let mut order = vec![start.clone()];
        let mut edges: Vec<RelationshipView> = Vec::new();
        let mut seen_edges = HashSet::new();
        let mut frontier = vec![start.clone()];
        let mut truncated = false;
        for depth in 1..=query.hops {
            if frontier.is_empty() || truncated {
                break;
            }
            let rows =
                store::edges_touching(&self.pool, scope, &frontier, query.direction, code).await?;
            let current: HashSet<&String> = frontier.iter().collect();
            let mut next = Vec::new();
            for row in rows {
                let ends = next_ends(&row, &current, query.direction);
                if seen_edges.insert((
                    row.from_urn.clone(),
                    row.target_urn.clone(),
                    row.relationship_code.clone(),
                )) {
                    edges.push(view(row));
                }
                for end in ends {
                    if depth_of.contains_key(&end) {
                        continue;
                    }
                    if depth_of.len() >= MAX_NODES {
                        truncated = true;
                        break;
                    }
                    depth_of.insert(end.clone(), depth);
                    order.push(end.clone());
                    next.push(end);
                }
            }
            frontier = next;
        }

        let rows = store::fetch_entities(&self.pool, scope, &order).await?;
        if !rows.iter().any(|r| r.urn == start) {
            return Err(MetamodelError::EntityNotFound(start));
        }
        let by_urn: HashMap<&str, _> = rows.iter().map(|r| (r.urn.as_str(), r)).collect();
        let nodes = order
            .iter()
            .filter_map(|urn| by_urn.get(urn.as_str()))
            .map(|r| GraphNode {
                entity_urn: r.urn.clone(),
                entity_name: r.name.clone(),
                entity_type: r.entity_type.clone(),
                depth: depth_of[&r.urn],
            })
            .collect();
        Ok(Graph { nodes, edges, truncated })
    }

    /// Full entities (attributes and signatures enriched) for `urns`, in the order given;
    /// URNs that do not exist are skipped.
    pub(crate) async fn full_entities(
        &self,
        scope: &Scope,
        catalog: &Catalog,
        urns: &[String],
    ) -> Result<Vec<EntityResponse>> {
        if urns.is_empty() {
            return Ok(Vec::new());
        }
        let rows = store::fetch_entities(&self.pool, scope, urns).await?;
        let signatures = store::fetch_signatures(&self.pool, scope, urns).await?;
        let mut sigs_by_urn: HashMap<String, Vec<SignatureResp>> = HashMap::new();
        for sig in signatures {
            let info = catalog.signature_type(&sig.signature_type);
            sigs_by_urn.entry(sig.entity_urn.clone()).or_default().push(SignatureResp {
                signature_attributes: validate::enrich(&sig.attributes, info),
                signature_name: sig.signature_name,
                signature_type: sig.signature_type,
                version: sig.version.to_string(),
            });
        }
        let mut by_urn: HashMap<String, _> = rows.into_iter().map(|r| (r.urn.clone(), r)).collect();
        let mut out = Vec::with_capacity(urns.len());
        for urn in urns {
            let Some(row) = by_urn.remove(urn) else { continue };
            let info = catalog.entity_type(&row.entity_type);
            out.push(EntityResponse {
                entity_attributes: validate::entity_attributes(&row.attributes, info, &row.name),
                signatures: sigs_by_urn.remove(urn).unwrap_or_default(),
                package_id: row.package_id,
                entity_urn: row.urn,
                entity_name: row.name,
                entity_type: row.entity_type,
                subtype: row.subtype,
            });
        }
        Ok(out)
    }
}

/// The ends of `row` the walk moves to from the current frontier.
fn next_ends(row: &EdgeRow, frontier: &HashSet<&String>, direction: Direction) -> Vec<String> {
    let mut ends = Vec::new();
    if direction != Direction::In && frontier.contains(&row.from_urn) {
        ends.push(row.target_urn.clone());
    }
    if direction != Direction::Out && frontier.contains(&row.target_urn) {
        ends.push(row.from_urn.clone());
    }
    ends
}

fn parse_urn(text: &str) -> Result<String> {
    Urn::parse(text)
        .map(|u| u.to_string())
        .map_err(|e| MetamodelError::InvalidRequest(format!("entity_urn: {e}")))
}

fn view(row: EdgeRow) -> RelationshipView {
    RelationshipView {
        from_urn: row.from_urn,
        target_urn: row.target_urn,
        relationship_code: row.relationship_code,
        relationship_extend: row.relationship_extend,
    }
}
