//! A5: relationship upserts and deletes, per-item failures and duplicates.

use serde_json::{json, Value};
use workbench_metamodel::wire::RelationshipsRequest;
use workbench_metamodel::{MetamodelError, CODE_INVALID, CODE_NOT_FOUND};

use crate::helpers::{add, body, count, entity, setup};

const CO: &str = "Metamodel3-Report-Metamodel3-ReportGroup_CO";

fn item(from: &str, target: &str, code: &str, change: &str) -> Value {
    json!({
        "from_urn": from, "target_urn": target, "relationship_code": code, "change_type": change
    })
}

#[tokio::test]
async fn upsert_is_idempotent_and_delete_removes() {
    let (mm, scope) = setup().await;
    let u = add(&mm, &scope, vec![entity("Report", "r"), entity("ReportGroup", "g")]).await;

    for change in ["UPSERT", "upinsert", "UPsert"] {
        let req = body(json!({"relationships": [item(&u[0], &u[1], CO, change)]}));
        let resp = mm.change_relationships(&scope, req).await.unwrap();
        assert_eq!(resp.success.len(), 1, "{change}");
    }
    assert_eq!(count(&mm, "abm_relationships").await, 1);

    let mut extended = item(&u[0], &u[1], CO, "UPSERT");
    extended["relationship_extend"] = json!("weekly");
    let resp = mm.change_relationships(&scope, body(json!({"relationships": [extended]}))).await;
    assert_eq!(resp.unwrap().success[0].relationship_extend.as_deref(), Some("weekly"));

    let req = body(json!({"relationships": [item(&u[0], &u[1], CO, "delete")]}));
    let resp = mm.change_relationships(&scope, req).await.unwrap();
    assert_eq!(resp.success.len(), 1);
    assert_eq!(count(&mm, "abm_relationships").await, 0);

    let req = body(json!({"relationships": [item(&u[0], &u[1], CO, "DELETE")]}));
    let resp = mm.change_relationships(&scope, req).await.unwrap();
    assert_eq!(resp.failure[0].error_code, CODE_NOT_FOUND);
}

#[tokio::test]
async fn each_bad_item_fails_alone() {
    let (mm, scope) = setup().await;
    let u = add(&mm, &scope, vec![entity("Report", "r"), entity("ReportGroup", "g")]).await;
    let ghost = "urn:abm:Metamodel3-ReportGroup:000000000000000000000000000000";
    let req: RelationshipsRequest = body(json!({"relationships": [
        item(&u[0], &u[1], CO, "UPSERT"),
        item(&u[0], ghost, CO, "UPSERT"),
        item(&u[0], &u[1], "Metamodel3-Nope_CO", "UPSERT"),
        item(&u[1], &u[0], CO, "UPSERT"),
        item(&u[0], &u[1], CO, "MERGE"),
        item("urn:abm:T:(a", &u[1], CO, "UPSERT"),
        item(&u[0], &u[1], CO, "UPSERT"),
    ]}));
    let resp = mm.change_relationships(&scope, req).await.unwrap();
    assert_eq!(resp.success.len(), 1);
    let got: Vec<(&str, &str)> =
        resp.failure.iter().map(|f| (f.error_code.as_str(), f.error_msg.as_str())).collect();
    let not_found = format!("target_urn {ghost} does not exist");
    let wrong_way = "Metamodel3-Report-Metamodel3-ReportGroup_CO connects Metamodel3-Report to \
                     Metamodel3-ReportGroup, not Metamodel3-ReportGroup to Metamodel3-Report";
    assert_eq!(
        got,
        [
            (CODE_NOT_FOUND, not_found.as_str()),
            (CODE_INVALID, "unknown relationship code Metamodel3-Nope_CO"),
            (CODE_INVALID, wrong_way),
            (CODE_INVALID, "change_type MERGE is not UPSERT, UPINSERT or DELETE"),
            (CODE_INVALID, "from_urn: invalid urn: composite key \"(a\" does not end with ')'"),
            (CODE_INVALID, "duplicate of item 0 in this batch"),
        ]
    );
    assert_eq!(count(&mm, "abm_relationships").await, 1);
}

#[tokio::test]
async fn over_cap_or_missing_list_is_refused_whole() {
    let (mm, scope) = setup().await;
    let u = add(&mm, &scope, vec![entity("Report", "r"), entity("ReportGroup", "g")]).await;
    let items: Vec<Value> = (0..201).map(|_| item(&u[0], &u[1], CO, "UPSERT")).collect();
    let err = mm.change_relationships(&scope, body(json!({"relationships": items}))).await;
    assert!(matches!(err, Err(MetamodelError::TooManyItems { .. })));
    let err = mm.change_relationships(&scope, body(json!({}))).await;
    assert!(matches!(err, Err(MetamodelError::InvalidRequest(_))));
    assert_eq!(count(&mm, "abm_relationships").await, 0);
}
