//! A5: create, update or delete relationships in one batch.
//!
//! Items are checked in memory (URN syntax, known code, change type), then one statement reads
//! the types of every end, then one upsert and one delete write the valid items. An UPSERT
//! whose end is missing, or whose ends are not the types the code connects, fails its item; a
//! DELETE of an edge that does not exist fails with `MSSI.00050021`.

use std::collections::HashMap;

use crate::error::{MetamodelError, Result, CODE_INVALID, CODE_NOT_FOUND};
use crate::package::Catalog;
use crate::store::{self, EdgeBatch, EdgeRow};
use crate::validate;
use crate::wire::{
    RelationshipFailure, RelationshipInput, RelationshipView, RelationshipsRequest,
    RelationshipsResponse,
};
use crate::{check_batch_size, Metamodel, Scope};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Upsert,
    Delete,
}

/// An A5 item that passed the in-memory checks.
struct CheckedEdge {
    change: Change,
    edge: RelationshipView,
}

type Identity = (String, String, String);

impl Metamodel {
    /// A5: applies up to 200 relationship changes.
    pub async fn change_relationships(
        &self,
        scope: &Scope,
        request: RelationshipsRequest,
    ) -> Result<RelationshipsResponse> {
        let Some(items) = request.relationships else {
            return Err(MetamodelError::InvalidRequest("relationships is required".into()));
        };
        check_batch_size(items.len())?;
        let catalog = self.catalog(scope).await?;
        let mut checked = check_items(&catalog, &items);

        let mut tx = self.pool.begin().await?;
        let mut ends: Vec<String> = Vec::new();
        for edge in checked.iter().filter_map(|c| c.as_ref().ok()) {
            ends.push(edge.edge.from_urn.clone());
            ends.push(edge.edge.target_urn.clone());
        }
        ends.sort();
        ends.dedup();
        let types: HashMap<String, String> =
            store::entity_types(&mut *tx, scope, &ends).await?.into_iter().collect();
        for (item, slot) in items.iter().zip(checked.iter_mut()) {
            let Ok(edge) = slot else { continue };
            if edge.change == Change::Upsert {
                if let Err(f) = check_ends(&catalog, &types, &edge.edge) {
                    *slot = Err(failure(item, f.0, f.1));
                }
            }
        }

        let (mut upserts, mut deletes) = (EdgeBatch::default(), EdgeBatch::default());
        for edge in checked.iter().filter_map(|c| c.as_ref().ok()) {
            let batch = if edge.change == Change::Upsert { &mut upserts } else { &mut deletes };
            batch.froms.push(edge.edge.from_urn.clone());
            batch.targets.push(edge.edge.target_urn.clone());
            batch.codes.push(edge.edge.relationship_code.clone());
            batch.extends.push(edge.edge.relationship_extend.clone());
        }
        let written = if upserts.froms.is_empty() {
            Vec::new()
        } else {
            store::upsert_edges(&mut tx, scope, &upserts).await?
        };
        let deleted = if deletes.froms.is_empty() {
            Vec::new()
        } else {
            store::delete_edges(&mut tx, scope, &deletes).await?
        };
        tx.commit().await?;

        let written = by_identity(written);
        let deleted = by_identity(deleted);
        let mut success = Vec::new();
        let mut failure_list = Vec::new();
        for (item, slot) in items.iter().zip(checked) {
            let edge = match slot {
                Ok(edge) => edge,
                Err(f) => {
                    failure_list.push(f);
                    continue;
                }
            };
            let key = identity(&edge.edge);
            let done = match edge.change {
                Change::Upsert => written.get(&key),
                Change::Delete => deleted.get(&key),
            };
            match done {
                Some(view) => success.push(view.clone()),
                None => failure_list.push(failure(
                    item,
                    CODE_NOT_FOUND,
                    "relationship does not exist".into(),
                )),
            }
        }
        Ok(RelationshipsResponse { msg: None, success, failure: failure_list })
    }
}

fn check_items(
    catalog: &Catalog,
    items: &[RelationshipInput],
) -> Vec<std::result::Result<CheckedEdge, RelationshipFailure>> {
    let mut first_seen: HashMap<Identity, usize> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let checked = match check_item(catalog, item) {
            Ok(edge) => edge,
            Err(msg) => {
                out.push(Err(failure(item, CODE_INVALID, msg)));
                continue;
            }
        };
        if let Some(first) = first_seen.get(&identity(&checked.edge)) {
            let msg = format!("duplicate of item {first} in this batch");
            out.push(Err(failure(item, CODE_INVALID, msg)));
            continue;
        }
        first_seen.insert(identity(&checked.edge), index);
        out.push(Ok(checked));
    }
    out
}

fn check_item(
    catalog: &Catalog,
    item: &RelationshipInput,
) -> std::result::Result<CheckedEdge, String> {
    let from = validate::urn("from_urn", item.from_urn.as_deref())?;
    let target = validate::urn("target_urn", item.target_urn.as_deref())?;
    let code = validate::required("relationship_code", item.relationship_code.as_deref(), 255)?;
    let change = parse_change(item.change_type.as_deref())?;
    if let Some(extend) = &item.relationship_extend {
        validate::storable("relationship_extend", extend)?;
    }
    if catalog.relationship(code).is_none() {
        return Err(format!("unknown relationship code {code}"));
    }
    let edge = RelationshipView {
        from_urn: from.to_string(),
        target_urn: target.to_string(),
        relationship_code: code.to_owned(),
        relationship_extend: item.relationship_extend.clone(),
    };
    Ok(CheckedEdge { change, edge })
}

/// `UPSERT` (also spelled `UPINSERT`) or `DELETE`, in any letter case.
fn parse_change(value: Option<&str>) -> std::result::Result<Change, String> {
    let Some(value) = value else {
        return Err("change_type is required".into());
    };
    match value.to_ascii_uppercase().as_str() {
        "UPSERT" | "UPINSERT" => Ok(Change::Upsert),
        "DELETE" => Ok(Change::Delete),
        _ => Err(format!("change_type {value} is not UPSERT, UPINSERT or DELETE")),
    }
}

/// Both ends exist and have the types the code connects.
fn check_ends(
    catalog: &Catalog,
    types: &HashMap<String, String>,
    edge: &RelationshipView,
) -> std::result::Result<(), (&'static str, String)> {
    let Some(from_type) = types.get(&edge.from_urn) else {
        return Err((CODE_NOT_FOUND, format!("from_urn {} does not exist", edge.from_urn)));
    };
    let Some(target_type) = types.get(&edge.target_urn) else {
        return Err((CODE_NOT_FOUND, format!("target_urn {} does not exist", edge.target_urn)));
    };
    let Some(def) = catalog.relationship(&edge.relationship_code) else {
        return Err((CODE_INVALID, format!("unknown code {}", edge.relationship_code)));
    };
    if &def.from_type != from_type || &def.target_type != target_type {
        let msg = format!(
            "{} connects {} to {}, not {from_type} to {target_type}",
            def.code, def.from_type, def.target_type
        );
        return Err((CODE_INVALID, msg));
    }
    Ok(())
}

fn identity(edge: &RelationshipView) -> Identity {
    (edge.from_urn.clone(), edge.target_urn.clone(), edge.relationship_code.clone())
}

fn by_identity(rows: Vec<EdgeRow>) -> HashMap<Identity, RelationshipView> {
    rows.into_iter()
        .map(|r| {
            let view = RelationshipView {
                from_urn: r.from_urn,
                target_urn: r.target_urn,
                relationship_code: r.relationship_code,
                relationship_extend: r.relationship_extend,
            };
            (identity(&view), view)
        })
        .collect()
}

fn failure(item: &RelationshipInput, code: &str, msg: String) -> RelationshipFailure {
    RelationshipFailure {
        error_code: code.to_owned(),
        error_msg: msg,
        from_urn: item.from_urn.clone(),
        target_urn: item.target_urn.clone(),
        relationship_code: item.relationship_code.clone(),
    }
}
