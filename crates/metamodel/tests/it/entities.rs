//! A1-A4: adding, updating and deleting entities.

use serde_json::json;
use workbench_metamodel::wire::{AddEntitiesRequest, DeleteEntitiesRequest, RelationshipsRequest};
use workbench_metamodel::{MetamodelError, Scope, CODE_INVALID, CODE_NOT_FOUND};

use crate::helpers::{add, body, count, entity, setup};

#[tokio::test]
async fn batch_of_201_writes_nothing_and_200_writes_all() {
    let (mm, scope) = setup().await;
    let items = |n: usize| (0..n).map(|i| entity("SubjectArea", &format!("area {i}"))).collect();

    let over = mm.add_entities(&scope, AddEntitiesRequest { entities: Some(items(201)) }).await;
    assert!(matches!(over, Err(MetamodelError::TooManyItems { max: 200, got: 201 })));
    assert_eq!(over.unwrap_err().error_code(), CODE_INVALID);
    assert_eq!(count(&mm, "abm_entities").await, 0);

    let at_cap = mm.add_entities(&scope, AddEntitiesRequest { entities: Some(items(200)) });
    let resp = at_cap.await.unwrap();
    assert_eq!(resp.success.len(), 200);
    assert!(resp.failure.is_empty());
    assert_eq!(count(&mm, "abm_entities").await, 200);
}

#[tokio::test]
async fn bad_items_fail_alone_with_a_clear_message() {
    let (mm, scope) = setup().await;
    let good = entity("Report", "ok");
    let unknown_type = entity("Nope", "t");
    let mut unknown_attr = entity("Report", "a");
    unknown_attr.entity_attributes = Some(body(json!([
        {"attribute_id": "Metamodel3-Report-Colour", "attribute_value": "red"}
    ])));
    let mut unknown_sig = entity("Report", "s");
    unknown_sig.signatures = Some(body(json!([{"signature_type": "Metamodel3-nope"}])));
    let mut no_name = entity("Report", "x");
    no_name.entity_name = None;
    let mut wrong_package = entity("Report", "p");
    wrong_package.package_id = Some("Other".into());

    let items = vec![good, unknown_type, unknown_attr, unknown_sig, no_name, wrong_package];
    let resp = mm.add_entities(&scope, AddEntitiesRequest { entities: Some(items) }).await.unwrap();
    assert_eq!(resp.success.len(), 1);
    assert_eq!(resp.success[0].entity_name, "ok");
    let messages: Vec<&str> = resp.failure.iter().map(|f| f.error_msg.as_str()).collect();
    assert_eq!(
        messages,
        [
            "unknown entity type Metamodel3-Nope",
            "attribute Metamodel3-Report-Colour is not defined for Metamodel3-Report",
            "unknown signature type Metamodel3-nope",
            "entity_name is required",
            "package Other is not in this instance",
        ]
    );
    assert!(resp.failure.iter().all(|f| f.error_code == CODE_INVALID));
    assert_eq!(count(&mm, "abm_entities").await, 1);
}

#[tokio::test]
async fn repeated_item_in_a_batch_fails_as_a_duplicate() {
    let (mm, scope) = setup().await;
    let items = vec![entity("Report", "r"), entity("Report", "r"), entity("Dataset", "r")];
    let resp = mm.add_entities(&scope, AddEntitiesRequest { entities: Some(items) }).await.unwrap();
    assert_eq!(resp.success.len(), 2);
    assert_eq!(resp.failure.len(), 1);
    assert_eq!(resp.failure[0].error_msg, "duplicate of item 0 in this batch");
    assert_eq!(count(&mm, "abm_entities").await, 2);
}

#[tokio::test]
async fn update_refuses_a_type_change_and_unknown_urns() {
    let (mm, scope) = setup().await;
    let urns = add(&mm, &scope, vec![entity("Report", "r")]).await;

    let err = mm.update_entity(&scope, &urns[0], entity("Dataset", "r")).await.unwrap_err();
    assert!(matches!(err, MetamodelError::InvalidRequest(ref m) if m.contains("cannot change")));

    let missing = "urn:abm:Metamodel3-Report:000000000000000000000000000000";
    let err = mm.update_entity(&scope, missing, entity("Report", "r")).await.unwrap_err();
    assert_eq!((err.error_code(), err.http_status()), (CODE_NOT_FOUND, 404));

    let renamed = mm.update_entity(&scope, &urns[0], entity("Report", "r2")).await.unwrap();
    assert_eq!(renamed.entity_name, "r2");
    assert_eq!(renamed.entity_attributes.last().unwrap().attribute_value, "r2");
}

#[tokio::test]
async fn delete_cascades_to_signatures_and_relationships() {
    let (mm, scope) = setup().await;
    let mut report = entity("Report", "r");
    report.signatures = Some(body(json!([{"signature_type": "Metamodel3-securityPrivacy"}])));
    let urns = add(&mm, &scope, vec![report, entity("ReportGroup", "g")]).await;
    let rel = json!({"relationships": [{
        "from_urn": urns[0], "target_urn": urns[1],
        "relationship_code": "Metamodel3-Report-Metamodel3-ReportGroup_CO", "change_type": "UPSERT"
    }]});
    let resp = mm.change_relationships(&scope, body::<RelationshipsRequest>(rel)).await.unwrap();
    assert_eq!(resp.success.len(), 1);
    assert_eq!(count(&mm, "abm_signatures").await, 1);

    let deleted = mm.delete_entity(&scope, &urns[1]).await.unwrap();
    assert_eq!(deleted.result.success, [urns[1].clone()]);
    assert_eq!(count(&mm, "abm_relationships").await, 0);
    mm.delete_entity(&scope, &urns[0]).await.unwrap();
    assert_eq!(count(&mm, "abm_signatures").await, 0);

    let again = mm.delete_entity(&scope, &urns[0]).await.unwrap_err();
    assert!(matches!(again, MetamodelError::EntityNotFound(_)));
}

#[tokio::test]
async fn batch_delete_reports_each_urn_once() {
    let (mm, scope) = setup().await;
    let urns = add(&mm, &scope, vec![entity("Report", "a"), entity("Report", "b")]).await;
    let missing = "urn:abm:Metamodel3-Report:ffffffffffffffffffffffffffffff".to_owned();
    let request = DeleteEntitiesRequest {
        entity_urns: Some(vec![
            urns[0].clone(),
            missing.clone(),
            urns[0].clone(),
            "not a urn".into(),
            urns[1].clone(),
        ]),
    };
    let resp = mm.delete_entities(&scope, request).await.unwrap();
    assert_eq!(resp.result.success, [urns[0].clone(), urns[1].clone()]);
    assert_eq!(resp.result.failure, [missing, "not a urn".to_owned()]);
    assert!(resp.acknowledged);

    let too_many = DeleteEntitiesRequest { entity_urns: Some(vec![urns[0].clone(); 201]) };
    let err = mm.delete_entities(&scope, too_many).await.unwrap_err();
    assert!(matches!(err, MetamodelError::TooManyItems { .. }));
}

#[tokio::test]
async fn unknown_instance_is_not_found_and_created_instances_work() {
    let (mm, _) = setup().await;
    let other = Scope::new(crate::helpers::PROJECT, "inst-2");
    let req = AddEntitiesRequest { entities: Some(vec![entity("Report", "r")]) };
    let err = mm.add_entities(&other, req.clone()).await.unwrap_err();
    assert!(matches!(err, MetamodelError::InstanceNotFound(_)));
    assert_eq!(err.error_code(), CODE_NOT_FOUND);

    mm.create_instance(&other, &["Metamodel3".into()]).await.unwrap();
    assert_eq!(mm.add_entities(&other, req).await.unwrap().success.len(), 1);
    let dup = mm.create_instance(&other, &["Metamodel3".into()]).await;
    assert!(matches!(dup, Err(MetamodelError::InvalidRequest(_))));
    let unknown_package = Scope::new(crate::helpers::PROJECT, "x");
    let bad = mm.create_instance(&unknown_package, &["Nope".into()]).await;
    assert!(matches!(bad, Err(MetamodelError::InvalidRequest(_))));
}

#[tokio::test]
async fn custom_package_from_yaml_backs_an_instance() {
    let (mm, _) = setup().await;
    let yaml = "package_id: Shop\n\
                entity_types:\n  - type: Shop-Order\n    attributes:\n      \
                - {code: total, name: 总额, name_en: Total}\n";
    mm.register_package(yaml).await.unwrap();
    let scope = Scope::new(crate::helpers::PROJECT, "shop");
    mm.create_instance(&scope, &["Shop".into()]).await.unwrap();
    let item = body(json!({
        "package_id": "Shop", "entity_name": "o1", "entity_type": "Shop-Order",
        "entity_attributes": [{"attribute_id": "Shop-Order-total", "attribute_value": 12}]
    }));
    let urns = add(&mm, &scope, vec![item]).await;
    let got = mm.get_entity(&scope, &urns[0]).await.unwrap();
    assert_eq!(got.entity_attributes[0].attribute_value, "12");
    assert_eq!(got.entity_attributes[0].attribute_name_en.as_deref(), Some("Total"));
}
