//! In-memory checks of request items against the catalog, and the enrichment of stored
//! attributes into AttrResp. An item check returns the message for its `failure` entry.

use crate::package::{Catalog, TypeInfo};
use crate::store::StoredAttr;
use crate::urn::Urn;
use crate::wire::{AttrResp, AttributeInput, SignatureInput};

/// The pseudo-attribute that mirrors an entity's name.
pub(crate) const ENTITY_NAME_ATTR: &str = "entity_name";

/// A required string of `min..=max` characters.
pub(crate) fn required<'a>(
    field: &str,
    value: Option<&'a str>,
    max: usize,
) -> Result<&'a str, String> {
    let Some(value) = value else {
        return Err(format!("{field} is required"));
    };
    let len = value.chars().count();
    if len == 0 || len > max {
        return Err(format!("{field} must be 1-{max} characters"));
    }
    storable(field, value)?;
    Ok(value)
}

/// PostgreSQL text and JSONB cannot hold NUL, so a value with one is refused up front rather
/// than failing the whole write.
pub(crate) fn storable(field: &str, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err(format!("{field} contains a NUL character"));
    }
    Ok(())
}

/// An optional string of at most `max` characters.
pub(crate) fn at_most(field: &str, value: Option<&str>, max: usize) -> Result<(), String> {
    match value {
        Some(v) if v.chars().count() > max => Err(format!("{field} exceeds {max} characters")),
        Some(v) => storable(field, v),
        None => Ok(()),
    }
}

/// A required, parseable URN.
pub(crate) fn urn(field: &str, value: Option<&str>) -> Result<Urn, String> {
    let text = required(field, value, crate::urn::MAX_URN_LEN)?;
    Urn::parse(text).map_err(|e| format!("{field}: {e}"))
}

/// Checks an attribute list against its owning type. `entity_name` is accepted only when
/// `allow_entity_name` and is left out of the result (it mirrors the entity's name).
pub(crate) fn attributes(
    list: Option<&[AttributeInput]>,
    owner: &str,
    info: &TypeInfo,
    allow_entity_name: bool,
) -> Result<Vec<StoredAttr>, String> {
    let mut out: Vec<StoredAttr> = Vec::new();
    let mut saw_entity_name = false;
    for attr in list.unwrap_or_default() {
        let id = required("attribute_id", attr.attribute_id.as_deref(), 200)?;
        let value = attr.attribute_value.clone().unwrap_or_default();
        storable(id, &value)?;
        if id == ENTITY_NAME_ATTR && allow_entity_name {
            if std::mem::replace(&mut saw_entity_name, true) {
                return Err(format!("attribute {id} is given twice"));
            }
            continue;
        }
        if !info.attributes.contains_key(id) {
            return Err(format!("attribute {id} is not defined for {owner}"));
        }
        if out.iter().any(|a| a.attribute_id == id) {
            return Err(format!("attribute {id} is given twice"));
        }
        out.push(StoredAttr { attribute_id: id.to_owned(), attribute_value: value });
    }
    Ok(out)
}

/// A signature of an entity request, checked: (type, name, attributes).
pub(crate) struct CheckedSignature {
    pub(crate) signature_type: String,
    pub(crate) signature_name: String,
    pub(crate) attributes: Vec<StoredAttr>,
}

/// Checks the signatures of an entity request; one signature per type.
pub(crate) fn signatures(
    catalog: &Catalog,
    list: Option<&[SignatureInput]>,
) -> Result<Vec<CheckedSignature>, String> {
    let mut out: Vec<CheckedSignature> = Vec::new();
    for sig in list.unwrap_or_default() {
        let sig_type = required("signature_type", sig.signature_type.as_deref(), 150)?;
        at_most("signature_name", sig.signature_name.as_deref(), 200)?;
        let Some(info) = catalog.signature_type(sig_type) else {
            return Err(format!("unknown signature type {sig_type}"));
        };
        if out.iter().any(|s| s.signature_type == sig_type) {
            return Err(format!("signature type {sig_type} is given twice"));
        }
        let attrs = attributes(sig.signature_attributes.as_deref(), sig_type, info, false)?;
        out.push(CheckedSignature {
            signature_type: sig_type.to_owned(),
            signature_name: sig.signature_name.clone().unwrap_or_default(),
            attributes: attrs,
        });
    }
    Ok(out)
}

/// Stored attributes with their package labels; unknown ids get null labels.
pub(crate) fn enrich(attrs: &[StoredAttr], info: Option<&TypeInfo>) -> Vec<AttrResp> {
    attrs
        .iter()
        .map(|a| {
            let def = info.and_then(|i| i.attributes.get(&a.attribute_id));
            AttrResp {
                attribute_id: a.attribute_id.clone(),
                attribute_value: a.attribute_value.clone(),
                attribute_code: def.map(|d| d.code.clone()),
                attribute_name: def.and_then(|d| d.name.clone()),
                attribute_name_en: def.and_then(|d| d.name_en.clone()),
            }
        })
        .collect()
}

/// The entity attributes of a response: the stored ones, then the `entity_name` mirror.
pub(crate) fn entity_attributes(
    attrs: &[StoredAttr],
    info: Option<&TypeInfo>,
    name: &str,
) -> Vec<AttrResp> {
    let mut out = enrich(attrs, info);
    out.push(AttrResp {
        attribute_id: ENTITY_NAME_ATTR.to_owned(),
        attribute_value: name.to_owned(),
        attribute_code: None,
        attribute_name: None,
        attribute_name_en: None,
    });
    out
}
