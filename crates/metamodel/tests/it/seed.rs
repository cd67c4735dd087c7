//! Replays the request examples of the API reference (A1-A6) and compares the responses with
//! the reference's response examples; only generated URNs differ.

use serde_json::{json, Value};
use workbench_metamodel::Urn;

use crate::helpers::{add, add_with_urn, body, entity, setup};

fn attr(id: &str, value: &str) -> Value {
    json!({"attribute_id": id, "attribute_value": value})
}

fn resp_attr(id: &str, code: &str, name: &str, name_en: &str, value: &str) -> Value {
    json!({"attribute_id": id, "attribute_name_en": name_en, "attribute_name": name,
           "attribute_value": value, "attribute_code": code})
}

#[tokio::test]
async fn a1_add_entities_matches_the_example() {
    let (mm, scope) = setup().await;
    let request = json!({"entities": [{
        "package_id": "Metamodel3",
        "entity_name": "q8",
        "entity_type": "Metamodel3-SubjectArea",
        "entity_attributes": [
            attr("Metamodel3-SubjectArea-NAME", ""),
            attr("Metamodel3-SubjectArea-PermissionCode", ""),
            attr("Metamodel3-SubjectArea-OrderNumber", ""),
            attr("entity_name", "q8"),
        ],
        "signatures": [
            {"signature_name": "", "signature_type": "Metamodel3-descriptionInfo",
             "signature_attributes": [
                attr("Metamodel3-descriptionInfo-NAME", ""),
                attr("Metamodel3-descriptionInfo-description", ""),
                attr("Metamodel3-descriptionInfo-nameEn", ""),
                attr("Metamodel3-descriptionInfo-nameCn", ""),
                attr("Metamodel3-descriptionInfo-dataAssetNumber", ""),
             ]},
            {"signature_name": "", "signature_type": "Metamodel3-maintenanceInfo",
             "signature_attributes": [attr("Metamodel3-maintenanceInfo-NAME", "")]},
        ]
    }]});
    let resp = mm.add_entities(&scope, body(request)).await.unwrap();
    let mut got = serde_json::to_value(&resp).unwrap();

    let urn = got["success"][0]["entity_urn"].as_str().unwrap().to_owned();
    let key = urn.strip_prefix("urn:abm:Metamodel3-SubjectArea:").unwrap();
    assert!(key.len() == 30 && key.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(Urn::parse(&urn).unwrap().to_string(), urn);
    got["success"][0]["entity_urn"] =
        json!("urn:abm:Metamodel3-SubjectArea:b2570da68c011fbf7bf8e784e9cd2c");
    let expected = json!({
        "msg": null,
        "success": [{
            "entity_type": "Metamodel3-SubjectArea",
            "entity_urn": "urn:abm:Metamodel3-SubjectArea:b2570da68c011fbf7bf8e784e9cd2c",
            "entity_name": "q8"
        }],
        "failure": []
    });
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a2_update_entity_matches_the_example() {
    let (mm, scope) = setup().await;
    let urn = add(&mm, &scope, vec![entity("SubjectArea", "主题域01")]).await.remove(0);
    let maintenance = [
        "NAME",
        "createdBy",
        "createTime",
        "updatedBy",
        "updateTime",
        "creatorAccount",
        "updaterAccount",
    ];
    let request = json!({
        "package_id": "Metamodel3",
        "entity_name": "主题域02",
        "entity_type": "Metamodel3-SubjectArea",
        "entity_attributes": [
            attr("Metamodel3-SubjectArea-NAME", ""),
            attr("Metamodel3-SubjectArea-PermissionCode", ""),
            attr("Metamodel3-SubjectArea-OrderNumber", ""),
            attr("entity_name", "主题域02"),
        ],
        "signatures": [
            {"signature_name": "测试", "signature_type": "Metamodel3-descriptionInfo",
             "signature_attributes": [
                attr("Metamodel3-descriptionInfo-NAME", "测试"),
                attr("Metamodel3-descriptionInfo-description", ""),
                attr("Metamodel3-descriptionInfo-nameEn", ""),
                attr("Metamodel3-descriptionInfo-nameCn", ""),
                attr("Metamodel3-descriptionInfo-dataAssetNumber", ""),
             ]},
            {"signature_name": "", "signature_type": "Metamodel3-maintenanceInfo",
             "signature_attributes": maintenance
                .iter()
                .map(|c| attr(&format!("Metamodel3-maintenanceInfo-{c}"), ""))
                .collect::<Vec<_>>()},
        ]
    });
    let resp = mm.update_entity(&scope, &urn, body(request)).await.unwrap();
    let got = serde_json::to_value(&resp).unwrap();

    let m = "Metamodel3-maintenanceInfo";
    let d = "Metamodel3-descriptionInfo";
    let expected = json!({
        "entity_type": "Metamodel3-SubjectArea",
        "entity_attributes": [
            resp_attr("Metamodel3-SubjectArea-NAME", "NAME", "名称", "NAME", ""),
            resp_attr("Metamodel3-SubjectArea-PermissionCode", "PermissionCode", "权限编码",
                      "PermissionCode", ""),
            resp_attr("Metamodel3-SubjectArea-OrderNumber", "OrderNumber", "顺序值",
                      "OrderNumber", ""),
            {"attribute_id": "entity_name", "attribute_name_en": null, "attribute_name": null,
             "attribute_value": "主题域02", "attribute_code": null},
        ],
        "entity_urn": urn,
        "entity_name": "主题域02",
        "package_id": "Metamodel3",
        "signatures": [
            {"signature_attributes": [
                resp_attr(&format!("{d}-NAME"), "NAME", "名称", "NAME", "测试"),
                resp_attr(&format!("{d}-description"), "description", "描述内容",
                          "Description", ""),
                resp_attr(&format!("{d}-nameEn"), "nameEn", "英文名", "NameEn", ""),
                resp_attr(&format!("{d}-nameCn"), "nameCn", "中文名", "NameCn", ""),
                resp_attr(&format!("{d}-dataAssetNumber"), "dataAssetNumber", "资产编码",
                          "DataAssetNumber", ""),
             ],
             "signature_name": "测试", "version": "0", "signature_type": d},
            {"signature_attributes": [
                resp_attr(&format!("{m}-NAME"), "NAME", "名称", "NAME", ""),
                resp_attr(&format!("{m}-createdBy"), "createdBy", "创建人", "CreatedBy", ""),
                resp_attr(&format!("{m}-createTime"), "createTime", "创建时间", "CreateTime",
                          ""),
                resp_attr(&format!("{m}-updatedBy"), "updatedBy", "修改人", "UpdatedBy", ""),
                resp_attr(&format!("{m}-updateTime"), "updateTime", "修改时间", "UpdateTime",
                          ""),
                resp_attr(&format!("{m}-creatorAccount"), "creatorAccount", "创建账号",
                          "CreatorAccount", ""),
                resp_attr(&format!("{m}-updaterAccount"), "updaterAccount", "修改账号",
                          "UpdaterAccount", ""),
             ],
             "signature_name": "", "version": "0", "signature_type": m},
        ]
    });
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a3_and_a4_delete_match_the_examples() {
    let (mm, scope) = setup().await;
    let urns = add(&mm, &scope, vec![entity("SubjectArea", "a"), entity("SubjectArea", "b")]).await;
    let single = mm.delete_entity(&scope, &urns[0]).await.unwrap();
    let expected = json!({
        "msg": "", "result": {"msg": "", "success": [urns[0]], "failure": []}, "acknowledged": true
    });
    assert_eq!(serde_json::to_value(&single).unwrap(), expected);

    let rest = add(&mm, &scope, vec![entity("SubjectArea", "c")]).await;
    let both = vec![urns[1].clone(), rest[0].clone()];
    let batch = mm.delete_entities(&scope, body(json!({"entity_urns": both}))).await.unwrap();
    let expected = json!({
        "msg": "", "result": {"msg": "", "success": both, "failure": []}, "acknowledged": true
    });
    assert_eq!(serde_json::to_value(&batch).unwrap(), expected);
}

#[tokio::test]
async fn a5_relationships_match_the_example() {
    let (mm, scope) = setup().await;
    let report = "urn:abm:Metamodel3-Report:3b0d3d1e8c0143dda08cc8ae9d058e";
    let group = "urn:abm:Metamodel3-ReportGroup:a40d2f1e8c0143dda08cc8aeb401e4";
    add_with_urn(&mm, &scope, "Report", report).await;
    add_with_urn(&mm, &scope, "ReportGroup", group).await;
    let request = json!({"relationships": [{
        "from_urn": report, "target_urn": group,
        "relationship_code": "Metamodel3-Report-Metamodel3-ReportGroup_CO",
        "change_type": "UPsert"
    }]});
    let resp = mm.change_relationships(&scope, body(request)).await.unwrap();
    let expected = json!({
        "msg": null,
        "success": [{
            "target_urn": group, "relationship_extend": null, "from_urn": report,
            "relationship_code": "Metamodel3-Report-Metamodel3-ReportGroup_CO"
        }],
        "failure": []
    });
    assert_eq!(serde_json::to_value(&resp).unwrap(), expected);
}

#[tokio::test]
async fn a6_signatures_match_the_example() {
    let (mm, scope) = setup().await;
    let dataset = "urn:abm:Metamodel3-Dataset:(urn:abm:Metamodel3-DataPlatformInstance:\
        (MySQL,3ca1d906860167e88b9bfe0577a69),def.sys.x$wait_classes_global_by_avg_latency)";
    add_with_urn(&mm, &scope, "Dataset", dataset).await;
    let s = "Metamodel3-securityPrivacy";
    let request = json!({
        "package_id": "Metamodel3",
        "entity_urn": dataset,
        "entity_type": "Metamodel3-Dataset",
        "signatures": [{
            "change_type": "UPsert",
            "signature_type": s,
            "signature_name": "密级隐私",
            "signature_attributes": [
                {"attribute_id": format!("{s}-NAME"), "attribute_name": "名称",
                 "attribute_value": "tesk0"},
                {"attribute_id": format!("{s}-securityLevel"), "attribute_name": "密级",
                 "attribute_value": ""},
                {"attribute_id": format!("{s}-privacyLevel"), "attribute_name": "隐私分级",
                 "attribute_value": ""},
            ]
        }]
    });
    let resp = mm.change_signatures(&scope, body(request)).await.unwrap();
    let expected = json!({
        "msg": null,
        "success": [{
            "signature_attributes": [
                resp_attr(&format!("{s}-NAME"), "NAME", "名称", "NAME", "tesk0"),
                resp_attr(&format!("{s}-securityLevel"), "securityLevel", "密级",
                          "SecurityLevel", ""),
                resp_attr(&format!("{s}-privacyLevel"), "privacyLevel", "隐私分级",
                          "PrivacyLevel", ""),
            ],
            "signature_name": "密级隐私",
            "signature_type": s
        }],
        "failure": []
    });
    assert_eq!(serde_json::to_value(&resp).unwrap(), expected);
}
