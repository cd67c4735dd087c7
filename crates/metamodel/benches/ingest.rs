//! Ingest throughput of the application model: 100,000 entities, then 200,000 relationships,
//! in 200-item batches from 4 concurrent clients, through [`Metamodel`] on the test
//! PostgreSQL (a fresh database from `workbench_test_support`). Prints a table; not a test.
//!
//! `cargo bench -p workbench-metamodel --bench ingest` (sizes: `INGEST_ENTITIES`,
//! `INGEST_CLIENTS`; the relationship count is twice the entity count).
//!
//! Half the entities are `Metamodel3-Report`s and half `Metamodel3-ReportGroup`s, each with one
//! attribute; every report gets four edges `Report -> ReportGroup_CO` to distinct groups.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Mutex;
use workbench_metamodel::wire::{AddEntitiesRequest, RelationshipsRequest};
use workbench_metamodel::{Metamodel, Scope, MAX_BATCH};

const PROJECT: &str = "bench0000000000000000000000000000";
const EDGES_PER_REPORT: usize = 4;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Wall time of a phase and the latency of each batch.
struct Phase {
    items: usize,
    wall: Duration,
    latencies: Vec<Duration>,
}

impl Phase {
    fn row(&self, what: &str) -> String {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
        format!(
            "| {what} | {} | {} | {:.1} | {:.0} | {:.1} | {:.1} |",
            self.items,
            sorted.len(),
            self.wall.as_secs_f64(),
            self.items as f64 / self.wall.as_secs_f64(),
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
        )
    }
}

/// Runs `batches` on `clients` tasks, each taking the next batch from a shared queue.
async fn run<T, F, Fut>(clients: usize, batches: Vec<T>, items: usize, send: F) -> Phase
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let queue = Arc::new(Mutex::new(batches.into_iter()));
    let send = Arc::new(send);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (queue, send) = (queue.clone(), send.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let Some(batch) = queue.lock().await.next() else { break };
                let at = Instant::now();
                send(batch).await;
                latencies.push(at.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    Phase { items, wall: started.elapsed(), latencies }
}

#[tokio::main]
async fn main() {
    let entities = env_usize("INGEST_ENTITIES", 100_000);
    let clients = env_usize("INGEST_CLIENTS", 4);
    let pool = workbench_test_support::fresh_pool().await;
    sqlx::query("INSERT INTO domains (id, name) VALUES ('bench', 'bench')")
        .execute(&pool)
        .await
        .expect("domain");
    sqlx::query("INSERT INTO projects (id, domain_id, name) VALUES ($1, 'bench', 'bench')")
        .bind(PROJECT)
        .execute(&pool)
        .await
        .expect("project");
    let metamodel = Metamodel::new(pool.clone());
    let scope = Scope::new(PROJECT, "default");
    metamodel.catalog(&scope).await.expect("default instance");

    // Entities: reports first, then groups, 200 per batch.
    let reports = entities / 2;
    let items: Vec<_> = (0..entities)
        .map(|i| {
            let (kind, n) = if i < reports { ("Report", i) } else { ("ReportGroup", i - reports) };
            json!({"package_id": "Metamodel3", "entity_type": format!("Metamodel3-{kind}"),
                   "entity_name": format!("{kind} {n}"), "entity_attributes": [
                       {"attribute_id": format!("Metamodel3-{kind}-description"),
                        "attribute_value": format!("{kind} number {n} of the ingest benchmark")}]})
        })
        .collect();
    let batches: Vec<AddEntitiesRequest> = items
        .chunks(MAX_BATCH)
        .map(|c| serde_json::from_value(json!({ "entities": c })).expect("A1 body"))
        .collect();
    let urns = Arc::new(Mutex::new(Vec::with_capacity(entities)));
    let (m, s, u) = (metamodel.clone(), scope.clone(), urns.clone());
    let phase1 = run(clients, batches, entities, move |batch| {
        let (m, s, u) = (m.clone(), s.clone(), u.clone());
        async move {
            let response = m.add_entities(&s, batch).await.expect("A1");
            assert!(response.failure.is_empty(), "A1 failures: {:?}", response.failure);
            u.lock()
                .await
                .extend(response.success.into_iter().map(|e| (e.entity_name, e.entity_urn)));
        }
    })
    .await;

    // Relationships: report i -> groups 4i..4i+3 (mod the group count).
    let urns = urns.lock().await.clone();
    let by_name: std::collections::HashMap<String, String> = urns.into_iter().collect();
    let groups = entities - reports;
    let edges: Vec<_> = (0..reports * EDGES_PER_REPORT)
        .map(|e| {
            let (r, g) = (e / EDGES_PER_REPORT, e % groups);
            json!({"from_urn": by_name[&format!("Report {r}")],
                   "target_urn": by_name[&format!("ReportGroup {g}")],
                   "relationship_code": "Metamodel3-Report-Metamodel3-ReportGroup_CO",
                   "change_type": "UPSERT"})
        })
        .collect();
    let edge_count = edges.len();
    let batches: Vec<RelationshipsRequest> = edges
        .chunks(MAX_BATCH)
        .map(|c| serde_json::from_value(json!({ "relationships": c })).expect("A5 body"))
        .collect();
    let (m, s) = (metamodel.clone(), scope.clone());
    let phase2 = run(clients, batches, edge_count, move |batch| {
        let (m, s) = (m.clone(), s.clone());
        async move {
            let response = m.change_relationships(&s, batch).await.expect("A5");
            assert!(response.failure.is_empty(), "A5 failures: {:?}", response.failure);
        }
    })
    .await;

    let stored: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM abm_entities), (SELECT count(*) FROM abm_relationships)",
    )
    .fetch_one(&pool)
    .await
    .expect("counts");
    assert_eq!(stored, (entities as i64, edge_count as i64));

    println!("{clients} clients, batches of {MAX_BATCH}");
    println!("| phase | items | batches | wall s | items/s | p50 batch ms | p99 batch ms |");
    println!("|---|---|---|---|---|---|---|");
    println!("{}", phase1.row("entities (A1)"));
    println!("{}", phase2.row("relationships (A5)"));
}
