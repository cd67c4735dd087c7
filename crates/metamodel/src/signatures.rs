//! A6: create, update, replace or delete the signatures of one entity.
//!
//! | change_type | signature exists | signature missing |
//! |---|---|---|
//! | UPSERT (default) | merge: sent attributes overwrite, others stay | create |
//! | UPDATE | merge, as UPSERT | fails `MSSI.00050021` |
//! | CREATE | fails `MSSI.00050018` | create |
//! | RESTATE | replace: attributes not sent are dropped | create |
//! | DELETE | remove | fails `MSSI.00050021` |
//!
//! A missing `signature_name` keeps the stored name (or "" for a new signature). The entity row
//! is locked for the transaction, so concurrent merges on one entity do not lose writes. An
//! unknown entity fails every item with `MSSI.00050021`.

use std::collections::HashMap;

use crate::error::{MetamodelError, Result, CODE_INVALID, CODE_NOT_FOUND};
use crate::package::Catalog;
use crate::store::{self, SignatureBatch, SignatureRow, StoredAttr};
use crate::validate;
use crate::wire::{
    SignatureChange, SignatureFailure, SignatureResult, SignaturesRequest, SignaturesResponse,
};
use crate::{check_batch_size, Metamodel, Scope};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Upsert,
    Update,
    Create,
    Restate,
    Delete,
}

/// An A6 item that passed the in-memory checks.
struct Checked {
    change: Change,
    signature_type: String,
    signature_name: Option<String>,
    attributes: Vec<StoredAttr>,
}

type Outcome = std::result::Result<Checked, SignatureFailure>;

impl Metamodel {
    /// A6: applies up to 200 signature changes to one entity.
    pub async fn change_signatures(
        &self,
        scope: &Scope,
        request: SignaturesRequest,
    ) -> Result<SignaturesResponse> {
        let invalid = MetamodelError::InvalidRequest;
        let package_id =
            validate::required("package_id", request.package_id.as_deref(), 50).map_err(invalid)?;
        let urn = validate::urn("entity_urn", request.entity_urn.as_deref()).map_err(invalid)?;
        let items = request.signatures.unwrap_or_default();
        check_batch_size(items.len())?;
        let catalog = self.catalog(scope).await?;
        if !catalog.has_package(package_id) {
            let msg = format!("package {package_id} is not in this instance");
            return Err(MetamodelError::InvalidRequest(msg));
        }
        let urn = urn.to_string();
        let mut checked = check_items(&catalog, &items);

        let mut tx = self.pool.begin().await?;
        let entity = store::lock_entity(&mut tx, scope, &urn).await?;
        if entity.is_none() {
            for (item, slot) in items.iter().zip(checked.iter_mut()) {
                if slot.is_ok() {
                    let msg = format!("entity {urn} does not exist");
                    *slot = Err(failure(item, CODE_NOT_FOUND, msg));
                }
            }
        }
        let existing: HashMap<String, SignatureRow> =
            store::fetch_signatures(&mut *tx, scope, std::slice::from_ref(&urn))
                .await?
                .into_iter()
                .map(|row| (row.signature_type.clone(), row))
                .collect();

        let mut writes = SignatureBatch::default();
        let mut delete_types = Vec::new();
        for (item, slot) in items.iter().zip(checked.iter_mut()) {
            let Ok(change) = slot else { continue };
            match plan(change, existing.get(&change.signature_type)) {
                Ok(Plan::Write(name, attrs)) => {
                    writes.push(&urn, &change.signature_type, &name, &attrs);
                }
                Ok(Plan::Delete) => delete_types.push(change.signature_type.clone()),
                Err((code, msg)) => *slot = Err(failure(item, code, msg)),
            }
        }
        let mut results: HashMap<String, SignatureRow> = HashMap::new();
        if !writes.urns.is_empty() {
            let rows = store::upsert_signatures(&mut tx, scope, &writes).await?;
            results.extend(rows.into_iter().map(|r| (r.signature_type.clone(), r)));
        }
        if !delete_types.is_empty() {
            let rows = store::delete_signatures(&mut tx, scope, &urn, &delete_types).await?;
            results.extend(rows.into_iter().map(|r| (r.signature_type.clone(), r)));
        }
        tx.commit().await?;

        let mut success = Vec::new();
        let mut failure_list = Vec::new();
        for (item, slot) in items.iter().zip(checked) {
            let change = match slot {
                Ok(change) => change,
                Err(f) => {
                    failure_list.push(f);
                    continue;
                }
            };
            let Some(row) = results.get(&change.signature_type) else {
                let msg = format!("signature {} does not exist", change.signature_type);
                failure_list.push(failure(item, CODE_NOT_FOUND, msg));
                continue;
            };
            let info = catalog.signature_type(&row.signature_type);
            success.push(SignatureResult {
                signature_name: row.signature_name.clone(),
                signature_type: row.signature_type.clone(),
                signature_attributes: validate::enrich(&row.attributes, info),
            });
        }
        Ok(SignaturesResponse { msg: None, success, failure: failure_list })
    }
}

enum Plan {
    Write(String, Vec<StoredAttr>),
    Delete,
}

/// What a checked change does given the stored signature, per the table in the module header.
fn plan(
    change: &Checked,
    stored: Option<&SignatureRow>,
) -> std::result::Result<Plan, (&'static str, String)> {
    let sig_type = &change.signature_type;
    let name = |stored: Option<&SignatureRow>| {
        change
            .signature_name
            .clone()
            .or_else(|| stored.map(|s| s.signature_name.clone()))
            .unwrap_or_default()
    };
    match (change.change, stored) {
        (Change::Delete, Some(_)) => Ok(Plan::Delete),
        (Change::Delete | Change::Update, None) => {
            Err((CODE_NOT_FOUND, format!("signature {sig_type} does not exist")))
        }
        (Change::Create, Some(_)) => {
            Err((CODE_INVALID, format!("signature {sig_type} already exists")))
        }
        (Change::Upsert | Change::Update, Some(s)) => {
            let mut attrs = s.attributes.0.clone();
            for sent in &change.attributes {
                match attrs.iter_mut().find(|a| a.attribute_id == sent.attribute_id) {
                    Some(slot) => slot.attribute_value = sent.attribute_value.clone(),
                    None => attrs.push(sent.clone()),
                }
            }
            Ok(Plan::Write(name(Some(s)), attrs))
        }
        (Change::Restate, Some(s)) => Ok(Plan::Write(name(Some(s)), change.attributes.clone())),
        (Change::Upsert | Change::Create | Change::Restate, None) => {
            Ok(Plan::Write(name(None), change.attributes.clone()))
        }
    }
}

fn check_items(catalog: &Catalog, items: &[SignatureChange]) -> Vec<Outcome> {
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let checked = match check_item(catalog, item) {
            Ok(checked) => checked,
            Err(msg) => {
                out.push(Err(failure(item, CODE_INVALID, msg)));
                continue;
            }
        };
        if let Some(first) = first_seen.get(&checked.signature_type) {
            let msg = format!("duplicate of item {first} in this batch");
            out.push(Err(failure(item, CODE_INVALID, msg)));
            continue;
        }
        first_seen.insert(checked.signature_type.clone(), index);
        out.push(Ok(checked));
    }
    out
}

fn check_item(catalog: &Catalog, item: &SignatureChange) -> std::result::Result<Checked, String> {
    let change = parse_change(item.change_type.as_deref())?;
    let sig_type = validate::required("signature_type", item.signature_type.as_deref(), 150)?;
    validate::at_most("signature_name", item.signature_name.as_deref(), 200)?;
    let Some(info) = catalog.signature_type(sig_type) else {
        return Err(format!("unknown signature type {sig_type}"));
    };
    let attributes =
        validate::attributes(item.signature_attributes.as_deref(), sig_type, info, false)?;
    Ok(Checked {
        change,
        signature_type: sig_type.to_owned(),
        signature_name: item.signature_name.clone(),
        attributes,
    })
}

/// The change type, in any letter case; absent means UPSERT.
fn parse_change(value: Option<&str>) -> std::result::Result<Change, String> {
    let Some(value) = value else {
        return Ok(Change::Upsert);
    };
    match value.to_ascii_uppercase().as_str() {
        "UPSERT" | "UPINSERT" => Ok(Change::Upsert),
        "UPDATE" => Ok(Change::Update),
        "CREATE" => Ok(Change::Create),
        "RESTATE" => Ok(Change::Restate),
        "DELETE" => Ok(Change::Delete),
        _ => Err(format!("change_type {value} is not UPSERT, CREATE, UPDATE, RESTATE or DELETE")),
    }
}

fn failure(item: &SignatureChange, code: &str, msg: String) -> SignatureFailure {
    SignatureFailure {
        error_code: code.to_owned(),
        error_msg: msg,
        signature_name: item.signature_name.clone(),
        signature_type: item.signature_type.clone(),
    }
}
