//! Packages: the definitions an instance validates against.
//!
//! A package names entity types, their attributes, signature (aspect) types with their
//! attributes, and relationship codes with the entity types at both ends. The file format is
//! JSON or YAML with the same fields (see `docs/application-model.md`); the built-in
//! `Metamodel3` package is `packages/Metamodel3.json`, compiled into the crate.
//!
//! An attribute's id is `<owning type>-<code>`, so `Metamodel3-SubjectArea` with code `NAME`
//! gives `Metamodel3-SubjectArea-NAME`. A [`Catalog`] merges an instance's packages into lookup
//! maps keyed by those ids.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::error::{MetamodelError, Result};

/// The id of the package every `default` instance holds.
pub const METAMODEL3: &str = "Metamodel3";

const METAMODEL3_JSON: &str = include_str!("../packages/Metamodel3.json");

/// A package definition as written in a package file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Package {
    pub package_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub name_en: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub entity_types: Vec<TypeDef>,
    #[serde(default)]
    pub signature_types: Vec<TypeDef>,
    #[serde(default)]
    pub relationships: Vec<RelationshipDef>,
}

/// An entity type or a signature type with its attributes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TypeDef {
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub name_en: Option<String>,
    #[serde(default)]
    pub attributes: Vec<AttributeDef>,
}

/// One attribute: its code (the id suffix) and its labels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttributeDef {
    pub code: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub name_en: Option<String>,
}

/// A relationship code and the entity types it connects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelationshipDef {
    pub code: String,
    pub from_type: String,
    pub target_type: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub name_en: Option<String>,
}

/// The built-in `Metamodel3` package, parsed once.
pub fn metamodel3() -> Arc<Package> {
    static PACKAGE: OnceLock<Arc<Package>> = OnceLock::new();
    PACKAGE
        .get_or_init(|| Arc::new(parse_package(METAMODEL3_JSON).expect("built-in Metamodel3")))
        .clone()
}

/// Parses and checks a package file. Text starting with `{` is JSON, anything else YAML.
pub fn parse_package(text: &str) -> Result<Package> {
    let package: Package = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| invalid(format!("package JSON: {e}")))?
    } else {
        serde_norway::from_str(text).map_err(|e| invalid(format!("package YAML: {e}")))?
    };
    check_package(&package)?;
    Ok(package)
}

fn check_package(package: &Package) -> Result<()> {
    let id = &package.package_id;
    if id.is_empty() || id.chars().count() > 50 {
        return Err(invalid("package_id must be 1-50 characters".into()));
    }
    let prefix = format!("{id}-");
    let mut seen = HashSet::new();
    for def in package.entity_types.iter().chain(&package.signature_types) {
        if !def.type_name.starts_with(&prefix) || def.type_name.len() == prefix.len() {
            return Err(invalid(format!("type {:?} must start with {prefix:?}", def.type_name)));
        }
        if !seen.insert(def.type_name.as_str()) {
            return Err(invalid(format!("type {:?} is defined twice", def.type_name)));
        }
        let mut codes = HashSet::new();
        if let Some(dup) = def.attributes.iter().find(|a| !codes.insert(a.code.as_str())) {
            return Err(invalid(format!("{}: attribute {:?} twice", def.type_name, dup.code)));
        }
    }
    let entity_types: HashSet<_> = package.entity_types.iter().map(|t| &t.type_name).collect();
    let mut codes = HashSet::new();
    for rel in &package.relationships {
        if !codes.insert(rel.code.as_str()) {
            return Err(invalid(format!("relationship {:?} is defined twice", rel.code)));
        }
        for end in [&rel.from_type, &rel.target_type] {
            // Ends in another package cannot be checked here; the catalog checks them at use.
            if end.starts_with(&prefix) && !entity_types.contains(end) {
                return Err(invalid(format!("relationship {:?}: no type {end:?}", rel.code)));
            }
        }
    }
    Ok(())
}

fn invalid(msg: String) -> MetamodelError {
    MetamodelError::InvalidRequest(msg)
}

/// Labels of one attribute, as responses show them.
#[derive(Debug, Clone)]
pub struct AttrInfo {
    pub code: String,
    pub name: Option<String>,
    pub name_en: Option<String>,
}

/// A type in the catalog: its package and its attributes by id.
#[derive(Debug)]
pub struct TypeInfo {
    pub package_id: String,
    pub attributes: HashMap<String, AttrInfo>,
}

/// The merged definitions of an instance's packages, keyed for validation and enrichment.
#[derive(Debug, Default)]
pub struct Catalog {
    package_ids: Vec<String>,
    entity_types: HashMap<String, TypeInfo>,
    signature_types: HashMap<String, TypeInfo>,
    relationships: HashMap<String, RelationshipDef>,
}

impl Catalog {
    /// Merges `packages`; an earlier package wins when two define the same name.
    pub fn new(packages: &[Arc<Package>]) -> Self {
        let mut catalog = Self::default();
        for package in packages {
            catalog.package_ids.push(package.package_id.clone());
            for def in &package.entity_types {
                let info = type_info(&package.package_id, def);
                catalog.entity_types.entry(def.type_name.clone()).or_insert(info);
            }
            for def in &package.signature_types {
                let info = type_info(&package.package_id, def);
                catalog.signature_types.entry(def.type_name.clone()).or_insert(info);
            }
            for rel in &package.relationships {
                catalog.relationships.entry(rel.code.clone()).or_insert_with(|| rel.clone());
            }
        }
        catalog
    }

    /// Whether the instance holds the package.
    pub fn has_package(&self, package_id: &str) -> bool {
        self.package_ids.iter().any(|p| p == package_id)
    }

    /// An entity type's definition.
    pub fn entity_type(&self, type_name: &str) -> Option<&TypeInfo> {
        self.entity_types.get(type_name)
    }

    /// A signature type's definition.
    pub fn signature_type(&self, type_name: &str) -> Option<&TypeInfo> {
        self.signature_types.get(type_name)
    }

    /// A relationship code's definition.
    pub fn relationship(&self, code: &str) -> Option<&RelationshipDef> {
        self.relationships.get(code)
    }
}

fn type_info(package_id: &str, def: &TypeDef) -> TypeInfo {
    let attributes = def
        .attributes
        .iter()
        .map(|a| {
            let id = format!("{}-{}", def.type_name, a.code);
            let info =
                AttrInfo { code: a.code.clone(), name: a.name.clone(), name_en: a.name_en.clone() };
            (id, info)
        })
        .collect();
    TypeInfo { package_id: package_id.to_owned(), attributes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metamodel3_holds_the_seed_definitions() {
        let catalog = Catalog::new(&[metamodel3()]);
        let area = catalog.entity_type("Metamodel3-SubjectArea").unwrap();
        let order = &area.attributes["Metamodel3-SubjectArea-OrderNumber"];
        assert_eq!(order.name.as_deref(), Some("顺序值"));
        let desc = catalog.signature_type("Metamodel3-descriptionInfo").unwrap();
        let desc_attr = &desc.attributes["Metamodel3-descriptionInfo-description"];
        assert_eq!(desc_attr.name_en.as_deref(), Some("Description"));
        assert!(catalog.relationship("Metamodel3-Report-Metamodel3-ReportGroup_CO").is_some());
    }

    #[test]
    fn yaml_packages_load_and_bad_ones_are_refused() {
        let yaml = "package_id: Custom\nentity_types:\n  - type: Custom-Thing\n    \
                    attributes:\n      - {code: NAME, name: 名称, name_en: NAME}\n";
        let package = parse_package(yaml).unwrap();
        assert_eq!(package.entity_types[0].attributes[0].code, "NAME");

        let wrong_prefix = "{\"package_id\":\"Custom\",\"entity_types\":[{\"type\":\"X-Thing\"}]}";
        assert!(parse_package(wrong_prefix).is_err());
        let dangling =
            "package_id: C\nrelationships:\n  - {code: r, from_type: C-A, target_type: C-B}";
        assert!(parse_package(dangling).is_err());
    }
}
