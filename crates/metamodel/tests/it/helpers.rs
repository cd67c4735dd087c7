//! Shared setup: a fresh database with one project, and request builders.

use serde_json::{json, Value};
use workbench_metamodel::wire::{AddEntitiesRequest, EntityInput};
use workbench_metamodel::{Metamodel, Scope};

pub(crate) const PROJECT: &str = "0123456789abcdef0123456789abcdef";

/// A service on a fresh database holding project [`PROJECT`], and its default scope.
pub(crate) async fn setup() -> (Metamodel, Scope) {
    let pool = workbench_test_support::fresh_pool().await;
    sqlx::query("INSERT INTO domains (id, name) VALUES ('dom', 'dom')")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO projects (id, domain_id, name) VALUES ($1, 'dom', 'proj')")
        .bind(PROJECT)
        .execute(&pool)
        .await
        .unwrap();
    (Metamodel::new(pool), Scope::new(PROJECT, "default"))
}

/// Deserializes a wire body from JSON.
pub(crate) fn body<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("request body binds")
}

/// A minimal valid entity request of `Metamodel3-<kind>`.
pub(crate) fn entity(kind: &str, name: &str) -> EntityInput {
    body(json!({
        "package_id": "Metamodel3",
        "entity_name": name,
        "entity_type": format!("Metamodel3-{kind}"),
    }))
}

/// Adds entities that must all succeed; returns their URNs in order.
pub(crate) async fn add(mm: &Metamodel, scope: &Scope, items: Vec<EntityInput>) -> Vec<String> {
    let n = items.len();
    let resp = mm.add_entities(scope, AddEntitiesRequest { entities: Some(items) }).await.unwrap();
    assert!(resp.failure.is_empty(), "unexpected failures: {:?}", resp.failure);
    assert_eq!(resp.success.len(), n);
    resp.success.into_iter().map(|s| s.entity_urn).collect()
}

/// Adds one entity with a fixed URN (the library-only path used for composite keys).
pub(crate) async fn add_with_urn(mm: &Metamodel, scope: &Scope, kind: &str, urn: &str) {
    let mut item = entity(kind, urn.rsplit(':').next().unwrap());
    item.entity_urn = Some(urn.to_owned());
    add(mm, scope, vec![item]).await;
}

pub(crate) async fn count(mm: &Metamodel, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(mm.pool()).await.unwrap()
}
