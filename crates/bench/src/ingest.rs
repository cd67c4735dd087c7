//! Scenario 5, application model ingest over HTTP: entities (A1), then relationships (A5), in
//! 200-item batches from concurrent clients. The same data shape as
//! `crates/metamodel/benches/ingest.rs`, which measures the library without HTTP: half
//! `Metamodel3-Report`s and half `Metamodel3-ReportGroup`s with one attribute each, and four
//! `Report -> ReportGroup_CO` edges per report.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{bail, ensure, Context};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::report::{Report, Target};
use crate::server::Server;
use crate::stats::closed_loop;

const BATCH: usize = 200;
const EDGES_PER_REPORT: usize = 4;
const ENTITIES: &str = "/v3/{p}/abm/instances/default/metadata3/entities";
const RELATIONSHIPS: &str = "/v3/{p}/abm/instances/default/metadata3/relationships";

pub(crate) struct IngestArgs {
    pub(crate) entities: usize,
    pub(crate) clients: usize,
}

pub(crate) async fn run(
    server: Arc<Server>,
    args: &IngestArgs,
    report: &mut Report,
) -> anyhow::Result<()> {
    const S: &str = "5 ingest";
    let reports = args.entities / 2;
    let items: Vec<Value> = (0..args.entities)
        .map(|i| {
            let (kind, n) = if i < reports { ("Report", i) } else { ("ReportGroup", i - reports) };
            json!({"package_id": "Metamodel3", "entity_type": format!("Metamodel3-{kind}"),
                   "entity_name": format!("{kind} {n}"), "entity_attributes": [
                       {"attribute_id": format!("Metamodel3-{kind}-description"),
                        "attribute_value": format!("{kind} number {n} of the ingest benchmark")}]})
        })
        .collect();
    let batches: Arc<Vec<Value>> =
        Arc::new(items.chunks(BATCH).map(|c| json!({ "entities": c })).collect());
    let urns: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let (srv, b, u) = (server.clone(), batches.clone(), urns.clone());
    let load = closed_loop(args.clients, batches.len(), move |i| {
        let (srv, b, u) = (srv.clone(), b.clone(), u.clone());
        async move {
            let (status, body) = srv.post(ENTITIES, &b[i]).await?;
            let failures = body["failure"].as_array().map_or(1, Vec::len);
            ensure!(status == StatusCode::OK && failures == 0, "A1: {status} {body}");
            let mut u = u.lock().unwrap();
            for e in body["success"].as_array().context("success")? {
                let name = e["entity_name"].as_str().context("entity_name")?;
                u.insert(name.to_owned(), e["entity_urn"].as_str().context("urn")?.to_owned());
            }
            Ok(())
        }
    })
    .await;
    if let Some(e) = &load.first_error {
        bail!("{} A1 batches failed, first: {e}", load.errors);
    }
    let rate = args.entities as f64 / load.wall.as_secs_f64();
    report
        .add(S, "entities (A1)", rate, "items/s")
        .against("pg_commits_per_s")
        .target(Target::AtLeast(20_000.0));
    report.add(S, "A1 batch p99", load.latencies.ms(0.99), "ms");

    let by_name = std::mem::take(&mut *urns.lock().unwrap());
    let groups = args.entities - reports;
    let edges: Vec<Value> = (0..reports * EDGES_PER_REPORT)
        .map(|e| {
            let (r, g) = (e / EDGES_PER_REPORT, e % groups);
            json!({"from_urn": by_name[&format!("Report {r}")],
                   "target_urn": by_name[&format!("ReportGroup {g}")],
                   "relationship_code": "Metamodel3-Report-Metamodel3-ReportGroup_CO",
                   "change_type": "UPSERT"})
        })
        .collect();
    let count = edges.len();
    let batches: Arc<Vec<Value>> =
        Arc::new(edges.chunks(BATCH).map(|c| json!({ "relationships": c })).collect());
    let (srv, b) = (server.clone(), batches.clone());
    let load = closed_loop(args.clients, batches.len(), move |i| {
        let (srv, b) = (srv.clone(), b.clone());
        async move {
            let (status, body) = srv.post(RELATIONSHIPS, &b[i]).await?;
            let failures = body["failure"].as_array().map_or(1, Vec::len);
            ensure!(status == StatusCode::OK && failures == 0, "A5: {status} {body}");
            Ok(())
        }
    })
    .await;
    if let Some(e) = &load.first_error {
        bail!("{} A5 batches failed, first: {e}", load.errors);
    }
    let rate = count as f64 / load.wall.as_secs_f64();
    report.add(S, "relationships (A5)", rate, "items/s").against("pg_commits_per_s");
    report.add(S, "A5 batch p99", load.latencies.ms(0.99), "ms");

    let stored: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM abm_entities), (SELECT count(*) FROM abm_relationships)",
    )
    .fetch_one(&server.db)
    .await?;
    ensure!(stored == (args.entities as i64, count as i64), "stored {stored:?}");
    Ok(())
}
