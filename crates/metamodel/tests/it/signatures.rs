//! A6: signature change types, versions and per-item failures.

use serde_json::{json, Value};
use workbench_metamodel::wire::SignaturesResponse;
use workbench_metamodel::{Metamodel, Scope, CODE_INVALID, CODE_NOT_FOUND};

use crate::helpers::{add, body, entity, setup};

const SEC: &str = "Metamodel3-securityPrivacy";

async fn change(mm: &Metamodel, scope: &Scope, urn: &str, sigs: Value) -> SignaturesResponse {
    let req = body(json!({"package_id": "Metamodel3", "entity_urn": urn, "signatures": sigs}));
    mm.change_signatures(scope, req).await.unwrap()
}

fn sec(change_type: &str, attrs: &[(&str, &str)]) -> Value {
    let attrs: Vec<Value> = attrs
        .iter()
        .map(|(code, v)| json!({"attribute_id": format!("{SEC}-{code}"), "attribute_value": v}))
        .collect();
    json!({"change_type": change_type, "signature_type": SEC, "signature_attributes": attrs})
}

/// The stored signature of type SEC: (version, [(code, value)]).
async fn stored(mm: &Metamodel, scope: &Scope, urn: &str) -> Option<(String, Vec<String>)> {
    let entity = mm.get_entity(scope, urn).await.unwrap();
    entity.signatures.into_iter().find(|s| s.signature_type == SEC).map(|s| {
        let attrs = s
            .signature_attributes
            .iter()
            .map(|a| format!("{}={}", a.attribute_code.as_deref().unwrap(), a.attribute_value))
            .collect();
        (s.version, attrs)
    })
}

#[tokio::test]
async fn change_types_follow_the_semantics_table() {
    let (mm, scope) = setup().await;
    let urn = add(&mm, &scope, vec![entity("Dataset", "d")]).await.remove(0);

    let resp = change(&mm, &scope, &urn, json!([sec("UPDATE", &[("NAME", "x")])])).await;
    assert_eq!(resp.failure[0].error_code, CODE_NOT_FOUND);

    let resp = change(&mm, &scope, &urn, json!([sec("CREATE", &[("NAME", "a")])])).await;
    assert_eq!(resp.success.len(), 1);
    assert_eq!(stored(&mm, &scope, &urn).await.unwrap(), ("0".into(), vec!["NAME=a".into()]));

    let resp = change(&mm, &scope, &urn, json!([sec("create", &[("NAME", "b")])])).await;
    assert_eq!(resp.failure[0].error_code, CODE_INVALID);

    // No change type means UPSERT, which merges.
    let mut merge = sec("", &[("securityLevel", "L2")]);
    merge.as_object_mut().unwrap().remove("change_type");
    change(&mm, &scope, &urn, json!([merge])).await;
    let expect = vec!["NAME=a".to_owned(), "securityLevel=L2".into()];
    assert_eq!(stored(&mm, &scope, &urn).await.unwrap(), ("1".into(), expect));

    change(&mm, &scope, &urn, json!([sec("Update", &[("NAME", "c")])])).await;
    let expect = vec!["NAME=c".to_owned(), "securityLevel=L2".into()];
    assert_eq!(stored(&mm, &scope, &urn).await.unwrap(), ("2".into(), expect));

    change(&mm, &scope, &urn, json!([sec("RESTATE", &[("privacyLevel", "P1")])])).await;
    let expect = vec!["privacyLevel=P1".to_owned()];
    assert_eq!(stored(&mm, &scope, &urn).await.unwrap(), ("3".into(), expect.clone()));

    // Writing the same content again is not a change: the version stays.
    change(&mm, &scope, &urn, json!([sec("RESTATE", &[("privacyLevel", "P1")])])).await;
    assert_eq!(stored(&mm, &scope, &urn).await.unwrap(), ("3".into(), expect));

    let resp = change(&mm, &scope, &urn, json!([sec("DELETE", &[])])).await;
    assert_eq!(resp.success[0].signature_attributes[0].attribute_value, "P1");
    assert_eq!(stored(&mm, &scope, &urn).await, None);
    let resp = change(&mm, &scope, &urn, json!([sec("DELETE", &[])])).await;
    assert_eq!(resp.failure[0].error_code, CODE_NOT_FOUND);
}

#[tokio::test]
async fn bad_items_duplicates_and_missing_entity_fail_per_item() {
    let (mm, scope) = setup().await;
    let urn = add(&mm, &scope, vec![entity("Dataset", "d")]).await.remove(0);
    let resp = change(
        &mm,
        &scope,
        &urn,
        json!([
            sec("UPSERT", &[("NAME", "a")]),
            sec("UPSERT", &[("NAME", "b")]),
            sec("UPSERT", &[("colour", "red")]),
            sec("SWAP", &[]),
            {"signature_type": "Metamodel3-nope"},
            {"signature_name": "no type"},
        ]),
    )
    .await;
    assert_eq!(resp.success.len(), 1);
    let msgs: Vec<&str> = resp.failure.iter().map(|f| f.error_msg.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "duplicate of item 0 in this batch",
            "attribute Metamodel3-securityPrivacy-colour is not defined for \
             Metamodel3-securityPrivacy",
            "change_type SWAP is not UPSERT, CREATE, UPDATE, RESTATE or DELETE",
            "unknown signature type Metamodel3-nope",
            "signature_type is required",
        ]
    );

    let ghost = "urn:abm:Metamodel3-Dataset:000000000000000000000000000000";
    let resp = change(&mm, &scope, ghost, json!([sec("UPSERT", &[])])).await;
    assert_eq!(resp.failure[0].error_code, CODE_NOT_FOUND);
    assert_eq!(resp.failure[0].error_msg, format!("entity {ghost} does not exist"));
}
