//! Reads: entity by URN, listing, relationships both ways, and the N-hop walk.

use serde_json::json;
use workbench_metamodel::{Direction, EntityQuery, Metamodel, MetamodelError, Scope, WalkQuery};

use crate::helpers::{add, add_with_urn, body, entity, setup};

const COMPOSITE: &str = "urn:abm:Metamodel3-Dataset:(urn:abm:Metamodel3-DataPlatformInstance:\
    (MySQL,3ca1d906860167e88b9bfe0577a69),def.sys.x$wait_classes_global_by_avg_latency)";

async fn link(mm: &Metamodel, scope: &Scope, from: &str, target: &str, code: &str) {
    let req = body(json!({"relationships": [{
        "from_urn": from, "target_urn": target, "relationship_code": code, "change_type": "UPSERT"
    }]}));
    let resp = mm.change_relationships(scope, req).await.unwrap();
    assert!(resp.failure.is_empty(), "{:?}", resp.failure);
}

#[tokio::test]
async fn listing_filters_by_type_and_name_and_pages() {
    let (mm, scope) = setup().await;
    let mut items: Vec<_> = (0..5).map(|i| entity("Report", &format!("Sales {i}"))).collect();
    items.push(entity("Report", "costs"));
    items.push(entity("Dataset", "sales_raw"));
    add(&mm, &scope, items).await;

    let query = EntityQuery {
        entity_type: Some("Metamodel3-Report".into()),
        name: Some("sALes".into()),
        offset: Some(1),
        limit: Some(2),
    };
    let page = mm.list_entities(&scope, &query).await.unwrap();
    assert_eq!(page.total, 5);
    let names: Vec<&str> = page.entities.iter().map(|e| e.entity_name.as_str()).collect();
    assert_eq!(names, ["Sales 1", "Sales 2"]);

    let all = mm.list_entities(&scope, &EntityQuery::default()).await.unwrap();
    assert_eq!(all.total, 7);
    let literal = EntityQuery { name: Some("%".into()), ..Default::default() };
    assert_eq!(mm.list_entities(&scope, &literal).await.unwrap().total, 0);
}

#[tokio::test]
async fn composite_urn_entities_are_read_back_with_relationships() {
    let (mm, scope) = setup().await;
    let platform = "urn:abm:Metamodel3-DataPlatformInstance:(MySQL,3ca1d906860167e88b9bfe0577a69)";
    add_with_urn(&mm, &scope, "DataPlatformInstance", platform).await;
    add_with_urn(&mm, &scope, "Dataset", COMPOSITE).await;
    let code = "Metamodel3-Dataset-Metamodel3-DataPlatformInstance_CO";
    link(&mm, &scope, COMPOSITE, platform, code).await;

    let got = mm.get_entity(&scope, COMPOSITE).await.unwrap();
    assert_eq!(got.entity_urn, COMPOSITE);
    let out = mm.relationships_of(&scope, COMPOSITE, Direction::Out).await.unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].target_urn, platform);
    let incoming = mm.relationships_of(&scope, platform, Direction::In).await.unwrap();
    assert_eq!(incoming, out);
    assert!(mm.relationships_of(&scope, platform, Direction::Out).await.unwrap().is_empty());

    // A fixed URN that already exists fails its item instead of overwriting.
    let mut again = entity("Dataset", "again");
    again.entity_urn = Some(COMPOSITE.into());
    let req = workbench_metamodel::wire::AddEntitiesRequest { entities: Some(vec![again]) };
    let resp = mm.add_entities(&scope, req).await.unwrap();
    assert_eq!(resp.failure[0].error_msg, format!("entity {COMPOSITE} already exists"));
}

#[tokio::test]
async fn walk_follows_hops_directions_and_code_filter() {
    let (mm, scope) = setup().await;
    // raw -> mid -> top -> report, plus top -> indicator.
    let u = add(
        &mm,
        &scope,
        vec![
            entity("Dataset", "raw"),
            entity("Dataset", "mid"),
            entity("Dataset", "top"),
            entity("Report", "report"),
            entity("Indicator", "kpi"),
        ],
    )
    .await;
    let lineage = "Metamodel3-Dataset-Metamodel3-Dataset_LINEAGE";
    link(&mm, &scope, &u[0], &u[1], lineage).await;
    link(&mm, &scope, &u[1], &u[2], lineage).await;
    link(&mm, &scope, &u[2], &u[3], "Metamodel3-Dataset-Metamodel3-Report_LINEAGE").await;
    link(&mm, &scope, &u[2], &u[4], "Metamodel3-Dataset-Metamodel3-Indicator_LINEAGE").await;

    let walk = |hops, direction, code: Option<&str>, start: &str| WalkQuery {
        entity_urn: start.to_owned(),
        hops,
        direction,
        relationship_code: code.map(str::to_owned),
    };
    let two = mm.walk(&scope, &walk(2, Direction::Out, None, &u[0])).await.unwrap();
    let names: Vec<(&str, u32)> =
        two.nodes.iter().map(|n| (n.entity_name.as_str(), n.depth)).collect();
    assert_eq!(names, [("raw", 0), ("mid", 1), ("top", 2)]);
    assert_eq!(two.edges.len(), 2);

    let all = mm.walk(&scope, &walk(5, Direction::Out, None, &u[0])).await.unwrap();
    assert_eq!(all.nodes.len(), 5);
    assert_eq!(all.edges.len(), 4);

    let only = mm.walk(&scope, &walk(5, Direction::Out, Some(lineage), &u[0])).await.unwrap();
    assert_eq!(only.nodes.len(), 3);

    let upstream = mm.walk(&scope, &walk(5, Direction::In, None, &u[3])).await.unwrap();
    let names: Vec<&str> = upstream.nodes.iter().map(|n| n.entity_name.as_str()).collect();
    assert_eq!(names, ["report", "top", "mid", "raw"]);

    let both = mm.walk(&scope, &walk(1, Direction::Both, None, &u[2])).await.unwrap();
    assert_eq!(both.nodes.len(), 4);

    let too_far = mm.walk(&scope, &walk(6, Direction::Out, None, &u[0])).await;
    assert!(matches!(too_far, Err(MetamodelError::InvalidRequest(_))));
    let ghost = "urn:abm:Metamodel3-Dataset:000000000000000000000000000000";
    let missing = mm.walk(&scope, &walk(1, Direction::Out, None, ghost)).await;
    assert!(matches!(missing, Err(MetamodelError::EntityNotFound(_))));
}
