//! A1 add entities, A2 update one, A3 delete one, A4 delete a batch.
//!
//! A1 checks every item in memory, then inserts all valid entities with one statement and
//! their signatures with a second, in one transaction. A1 generates each URN; a URN set
//! through the library ([`EntityInput::entity_urn`]) that already exists fails its item.

use std::collections::{HashMap, HashSet};

use crate::error::{MetamodelError, Result, CODE_INVALID};
use crate::package::Catalog;
use crate::store::{self, EntityBatch, SignatureBatch, StoredAttr};
use crate::urn::Urn;
use crate::validate::{self, CheckedSignature};
use crate::wire::{
    AddEntitiesRequest, DeleteEntitiesRequest, DeleteResponse, EntityFailure, EntityInput,
    EntityResponse, EntitySimple,
};
use crate::{check_batch_size, Metamodel, Scope};

/// An A1 item that passed validation.
struct NewEntity {
    urn: String,
    entity_type: String,
    package_id: String,
    name: String,
    subtype: Option<String>,
    attributes: Vec<StoredAttr>,
    signatures: Vec<CheckedSignature>,
}

/// An item's outcome before writing: its index in the batch and the entity or the failure.
type Checked = std::result::Result<NewEntity, EntityFailure>;

impl Metamodel {
    /// A1: adds up to 200 entities with their signatures.
    pub async fn add_entities(
        &self,
        scope: &Scope,
        request: AddEntitiesRequest,
    ) -> Result<crate::wire::AddEntitiesResponse> {
        let Some(items) = request.entities else {
            return Err(MetamodelError::InvalidRequest("entities is required".into()));
        };
        check_batch_size(items.len())?;
        let catalog = self.catalog(scope).await?;

        let checked = check_new_entities(&catalog, &items);
        let mut batch = EntityBatch::default();
        for entity in checked.iter().filter_map(|c| c.as_ref().ok()) {
            batch.urns.push(entity.urn.clone());
            batch.types.push(entity.entity_type.clone());
            batch.packages.push(entity.package_id.clone());
            batch.names.push(entity.name.clone());
            batch.subtypes.push(entity.subtype.clone());
            batch.attributes.push(serde_json::to_value(&entity.attributes).unwrap_or_default());
        }

        let mut tx = self.pool.begin().await?;
        let inserted: HashSet<String> =
            store::insert_entities(&mut tx, scope, &batch).await?.into_iter().collect();
        let mut signatures = SignatureBatch::default();
        for entity in checked.iter().filter_map(|c| c.as_ref().ok()) {
            if !inserted.contains(&entity.urn) {
                continue;
            }
            for sig in &entity.signatures {
                let (t, n) = (&sig.signature_type, &sig.signature_name);
                signatures.push(&entity.urn, t, n, &sig.attributes);
            }
        }
        if !signatures.urns.is_empty() {
            store::upsert_signatures(&mut tx, scope, &signatures).await?;
        }
        tx.commit().await?;

        let mut success = Vec::new();
        let mut failure = Vec::new();
        for item in checked {
            match item {
                Ok(e) if inserted.contains(&e.urn) => success.push(EntitySimple {
                    entity_urn: e.urn,
                    entity_name: e.name,
                    entity_type: e.entity_type,
                }),
                Ok(e) => failure.push(EntityFailure {
                    error_code: CODE_INVALID.into(),
                    error_msg: format!("entity {} already exists", e.urn),
                    entity_name: Some(e.name),
                    entity_type: Some(e.entity_type),
                }),
                Err(f) => failure.push(f),
            }
        }
        Ok(crate::wire::AddEntitiesResponse { msg: None, success, failure })
    }

    /// A2: rewrites one entity. Attributes are replaced when `entity_attributes` is sent, and
    /// each signature sent replaces the signature of its type; other signatures stay.
    pub async fn update_entity(
        &self,
        scope: &Scope,
        entity_urn: &str,
        request: EntityInput,
    ) -> Result<EntityResponse> {
        let urn = Urn::parse(entity_urn)
            .map_err(|e| MetamodelError::InvalidRequest(format!("entity_urn: {e}")))?;
        let catalog = self.catalog(scope).await?;
        let entity = check_entity(&catalog, &request).map_err(MetamodelError::InvalidRequest)?;
        let urn = urn.to_string();

        let mut tx = self.pool.begin().await?;
        let Some(existing) = store::lock_entity(&mut tx, scope, &urn).await? else {
            return Err(MetamodelError::EntityNotFound(urn));
        };
        if existing.entity_type != entity.entity_type {
            let msg = format!(
                "entity_type cannot change from {} to {}",
                existing.entity_type, entity.entity_type
            );
            return Err(MetamodelError::InvalidRequest(msg));
        }
        let attributes = request.entity_attributes.is_some().then_some(&entity.attributes[..]);
        let subtype = entity.subtype.as_deref();
        store::update_entity(&mut tx, scope, &urn, &entity.name, subtype, attributes).await?;
        let mut signatures = SignatureBatch::default();
        for sig in &entity.signatures {
            signatures.push(&urn, &sig.signature_type, &sig.signature_name, &sig.attributes);
        }
        if !signatures.urns.is_empty() {
            store::upsert_signatures(&mut tx, scope, &signatures).await?;
        }
        tx.commit().await?;

        let mut full = self.full_entities(scope, &catalog, std::slice::from_ref(&urn)).await?;
        full.pop().ok_or(MetamodelError::EntityNotFound(urn))
    }

    /// A3: deletes one entity with its signatures and relationships.
    pub async fn delete_entity(&self, scope: &Scope, entity_urn: &str) -> Result<DeleteResponse> {
        let urn = Urn::parse(entity_urn)
            .map_err(|e| MetamodelError::InvalidRequest(format!("entity_urn: {e}")))?;
        self.catalog(scope).await?;
        let urn = urn.to_string();

        let mut tx = self.pool.begin().await?;
        let deleted = store::delete_entities(&mut tx, scope, std::slice::from_ref(&urn)).await?;
        tx.commit().await?;
        if deleted.is_empty() {
            return Err(MetamodelError::EntityNotFound(urn));
        }
        Ok(DeleteResponse::new(deleted, Vec::new()))
    }

    /// A4: deletes up to 200 entities; unknown or malformed URNs go to `failure`. Each URN is
    /// reported once, in the order first sent.
    pub async fn delete_entities(
        &self,
        scope: &Scope,
        request: DeleteEntitiesRequest,
    ) -> Result<DeleteResponse> {
        let urns = request.entity_urns.unwrap_or_default();
        check_batch_size(urns.len())?;
        self.catalog(scope).await?;

        let mut seen = HashSet::new();
        let unique: Vec<String> = urns.into_iter().filter(|u| seen.insert(u.clone())).collect();
        let valid: Vec<String> = unique.iter().filter(|u| Urn::parse(u).is_ok()).cloned().collect();
        let mut tx = self.pool.begin().await?;
        let deleted: HashSet<String> =
            store::delete_entities(&mut tx, scope, &valid).await?.into_iter().collect();
        tx.commit().await?;

        let (success, failure) = unique.into_iter().partition(|u| deleted.contains(u));
        Ok(DeleteResponse::new(success, failure))
    }
}

/// Checks every A1 item; later items repeating an earlier (type, name) or URN fail.
fn check_new_entities(catalog: &Catalog, items: &[EntityInput]) -> Vec<Checked> {
    let mut first_seen: HashMap<(String, String), usize> = HashMap::new();
    let mut urns_seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let failure = |msg: String| EntityFailure {
            error_code: CODE_INVALID.into(),
            error_msg: msg,
            entity_name: item.entity_name.clone(),
            entity_type: item.entity_type.clone(),
        };
        let entity = match check_entity(catalog, item) {
            Ok(entity) => entity,
            Err(msg) => {
                out.push(Err(failure(msg)));
                continue;
            }
        };
        let identity = (entity.entity_type.clone(), entity.name.clone());
        if let Some(first) = first_seen.get(&identity) {
            out.push(Err(failure(format!("duplicate of item {first} in this batch"))));
            continue;
        }
        if let Some(first) = urns_seen.get(&entity.urn) {
            out.push(Err(failure(format!("duplicate of item {first} in this batch"))));
            continue;
        }
        first_seen.insert(identity, index);
        urns_seen.insert(entity.urn.clone(), index);
        out.push(Ok(entity));
    }
    out
}

/// Checks one entity request against the catalog and gives it a URN.
fn check_entity(catalog: &Catalog, item: &EntityInput) -> std::result::Result<NewEntity, String> {
    let package_id = validate::required("package_id", item.package_id.as_deref(), 50)?;
    let name = validate::required("entity_name", item.entity_name.as_deref(), 200)?;
    let entity_type = validate::required("entity_type", item.entity_type.as_deref(), 150)?;
    validate::at_most("subtype", item.subtype.as_deref(), 50)?;
    if !catalog.has_package(package_id) {
        return Err(format!("package {package_id} is not in this instance"));
    }
    let Some(info) = catalog.entity_type(entity_type) else {
        return Err(format!("unknown entity type {entity_type}"));
    };
    if info.package_id != package_id {
        return Err(format!("entity type {entity_type} is not in package {package_id}"));
    }
    let attributes =
        validate::attributes(item.entity_attributes.as_deref(), entity_type, info, true)?;
    let signatures = validate::signatures(catalog, item.signatures.as_deref())?;
    let urn = match &item.entity_urn {
        None => Urn::generate(entity_type),
        Some(text) => {
            let urn = Urn::parse(text).map_err(|e| format!("entity_urn: {e}"))?;
            if urn.entity_type() != entity_type {
                return Err(format!("entity_urn {text} is not of type {entity_type}"));
            }
            urn
        }
    };
    Ok(NewEntity {
        urn: urn.to_string(),
        entity_type: entity_type.to_owned(),
        package_id: package_id.to_owned(),
        name: name.to_owned(),
        subtype: item.subtype.clone(),
        attributes,
        signatures,
    })
}
