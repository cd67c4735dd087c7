//! Request and response bodies of the ABM endpoints, in the contract's wire shapes (§4.7).
//!
//! Request fields the contract calls required are still `Option` here: a missing field must
//! fail only its own item, not the whole batch, so presence is checked during validation.
//! Unknown request fields are ignored. Attribute values are strings on the wire; numbers and
//! booleans are accepted and turned into their text, and `null` reads as absent.

use serde::{Deserialize, Deserializer, Serialize};

/// `{attribute_id, attribute_value}` in a request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AttributeInput {
    #[serde(default)]
    pub attribute_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub attribute_value: Option<String>,
}

/// A signature inside an entity request (A1, A2).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SignatureInput {
    #[serde(default)]
    pub signature_type: Option<String>,
    #[serde(default)]
    pub signature_name: Option<String>,
    #[serde(default)]
    pub signature_attributes: Option<Vec<AttributeInput>>,
}

/// MetadataEntityRequest: one entity of A1, or the body of A2.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EntityInput {
    #[serde(default)]
    pub package_id: Option<String>,
    #[serde(default)]
    pub entity_name: Option<String>,
    #[serde(default)]
    pub entity_type: Option<String>,
    #[serde(default)]
    pub subtype: Option<String>,
    #[serde(default)]
    pub entity_attributes: Option<Vec<AttributeInput>>,
    #[serde(default)]
    pub signatures: Option<Vec<SignatureInput>>,
    /// A caller-chosen URN (connectors importing composite keys). Never read from the wire:
    /// A1 always generates the key, so this is settable only through the library.
    #[serde(skip)]
    pub entity_urn: Option<String>,
}

/// A1 body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AddEntitiesRequest {
    #[serde(default)]
    pub entities: Option<Vec<EntityInput>>,
}

/// A1 success item (MetadataEntitySimpleRespone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntitySimple {
    pub entity_urn: String,
    pub entity_name: String,
    pub entity_type: String,
}

/// A1 failure item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityFailure {
    pub error_code: String,
    pub error_msg: String,
    pub entity_name: Option<String>,
    pub entity_type: Option<String>,
}

/// A1 response. `msg` is always `null`, as in the seed example.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddEntitiesResponse {
    pub msg: Option<String>,
    pub success: Vec<EntitySimple>,
    pub failure: Vec<EntityFailure>,
}

/// AttrResp: an attribute enriched with its package labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttrResp {
    pub attribute_id: String,
    pub attribute_value: String,
    pub attribute_code: Option<String>,
    pub attribute_name: Option<String>,
    pub attribute_name_en: Option<String>,
}

/// A signature of a full entity (A2 response and the entity read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignatureResp {
    pub signature_name: String,
    pub signature_type: String,
    /// The version as a string, `"0"` for a new signature.
    pub version: String,
    pub signature_attributes: Vec<AttrResp>,
}

/// The full entity: the A2 response and `GET .../entities/{urn}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityResponse {
    pub package_id: String,
    pub entity_urn: String,
    pub entity_name: String,
    pub entity_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    pub entity_attributes: Vec<AttrResp>,
    pub signatures: Vec<SignatureResp>,
}

/// A4 body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeleteEntitiesRequest {
    #[serde(default)]
    pub entity_urns: Option<Vec<String>>,
}

/// A3 and A4 response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteResponse {
    pub msg: String,
    pub acknowledged: bool,
    pub result: DeleteResult,
}

/// The `result` of [`DeleteResponse`]; both lists hold URN strings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteResult {
    pub msg: String,
    pub success: Vec<String>,
    pub failure: Vec<String>,
}

impl DeleteResponse {
    pub(crate) fn new(success: Vec<String>, failure: Vec<String>) -> Self {
        let result = DeleteResult { msg: String::new(), success, failure };
        Self { msg: String::new(), acknowledged: true, result }
    }
}

/// One A5 item.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RelationshipInput {
    #[serde(default)]
    pub from_urn: Option<String>,
    #[serde(default)]
    pub target_urn: Option<String>,
    #[serde(default)]
    pub relationship_code: Option<String>,
    #[serde(default)]
    pub relationship_extend: Option<String>,
    #[serde(default)]
    pub change_type: Option<String>,
}

/// A5 body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RelationshipsRequest {
    #[serde(default)]
    pub relationships: Option<Vec<RelationshipInput>>,
}

/// An edge: A5 success item and the relationship reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RelationshipView {
    pub from_urn: String,
    pub target_urn: String,
    pub relationship_code: String,
    pub relationship_extend: Option<String>,
}

/// A5 failure item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationshipFailure {
    pub error_code: String,
    pub error_msg: String,
    pub from_urn: Option<String>,
    pub target_urn: Option<String>,
    pub relationship_code: Option<String>,
}

/// A5 response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelationshipsResponse {
    pub msg: Option<String>,
    pub success: Vec<RelationshipView>,
    pub failure: Vec<RelationshipFailure>,
}

/// One A6 item (MetadataSignatureChangeReq).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SignatureChange {
    #[serde(default)]
    pub change_type: Option<String>,
    #[serde(default)]
    pub signature_type: Option<String>,
    #[serde(default)]
    pub signature_name: Option<String>,
    #[serde(default)]
    pub signature_attributes: Option<Vec<AttributeInput>>,
}

/// A6 body. The seed example also sends `entity_type`; it is ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SignaturesRequest {
    #[serde(default)]
    pub package_id: Option<String>,
    #[serde(default)]
    pub entity_urn: Option<String>,
    #[serde(default)]
    pub signatures: Option<Vec<SignatureChange>>,
}

/// A6 success item (MetadaSignatureResp).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignatureResult {
    pub signature_name: String,
    pub signature_type: String,
    pub signature_attributes: Vec<AttrResp>,
}

/// A6 failure item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignatureFailure {
    pub error_code: String,
    pub error_msg: String,
    pub signature_name: Option<String>,
    pub signature_type: Option<String>,
}

/// A6 response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignaturesResponse {
    pub msg: Option<String>,
    pub success: Vec<SignatureResult>,
    pub failure: Vec<SignatureFailure>,
}

/// Reads a string, or a number or boolean as its text; `null` is `None`.
fn lenient_string<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(de)?;
    Ok(match value {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}
