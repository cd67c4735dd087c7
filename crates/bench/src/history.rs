//! Scenario 4, history at scale: runs seeded in bulk with `INSERT … SELECT generate_series`
//! straight into `runs` (step records in each run's row), then R1, R2 (first and a deep page)
//! and R3 over HTTP, one request at a time.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{ensure, Context};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::flows::manual_transform_condition;
use crate::report::{Report, Target};
use crate::server::Server;
use crate::stats::Latencies;

pub(crate) struct HistoryArgs {
    pub(crate) runs: i64,
    pub(crate) flows: usize,
    pub(crate) samples: usize,
}

pub(crate) async fn run(
    server: Arc<Server>,
    args: &HistoryArgs,
    report: &mut Report,
) -> anyhow::Result<()> {
    const S: &str = "4 history";
    let mut flows = Vec::new();
    for i in 0..args.flows {
        let (id, _) =
            server.enabled_flow(&manual_transform_condition(&format!("history-{i}"))).await?;
        flows.push(id.parse::<Uuid>()?);
    }
    let seeding = Instant::now();
    seed(&server, &flows, args.runs).await?;
    report.add(S, "seed (runs + 3 step records each)", seeding.elapsed().as_secs_f64(), "s");

    let per_flow = args.runs / args.flows as i64;
    let limit = 10;
    let deep_page = (per_flow / limit / 2).max(1);
    let flow = flows[0];
    let run_ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM runs WHERE flow_id = $1 ORDER BY random() LIMIT $2")
            .bind(flow)
            .bind(args.samples as i64)
            .fetch_all(&server.db)
            .await?;
    ensure!(!run_ids.is_empty(), "no seeded runs");

    let queries = [
        ("R1 first page", "/v2/{p}/flows/running-history?offset=1&limit=10".to_owned()),
        ("R2 first page", format!("/v2/{{p}}/flows/{flow}/running-history?offset=1&limit={limit}")),
        (
            "R2 deep page",
            format!("/v2/{{p}}/flows/{flow}/running-history?offset={deep_page}&limit={limit}"),
        ),
    ];
    for (name, path) in &queries {
        let mut hist = Latencies::new();
        for _ in 0..args.samples {
            let at = Instant::now();
            let (status, body) = server.get(path).await?;
            hist.record(at.elapsed());
            let rows = body["histories"].as_array().map_or(0, Vec::len);
            ensure!(status == StatusCode::OK && rows > 0, "{name}: {status} {body}");
        }
        add_latencies(report, S, name, &hist);
    }
    let mut hist = Latencies::new();
    for id in &run_ids {
        let at = Instant::now();
        let (status, body) =
            server.get(&format!("/v2/{{p}}/flows/{flow}/running-history/{id}")).await?;
        hist.record(at.elapsed());
        let steps = body["steps"].as_array().map_or(0, Vec::len);
        ensure!(status == StatusCode::OK && steps == 3, "R3: {status} {body}");
    }
    add_latencies(report, S, "R3 run detail", &hist);
    report.note(format!(
        "scenario 4: {} runs over {} flows ({per_flow} each); \
         deep page = offset {deep_page} of limit {limit}",
        args.runs, args.flows
    ));
    Ok(())
}

fn add_latencies(report: &mut Report, scenario: &str, name: &str, hist: &Latencies) {
    report.add(scenario, &format!("{name} p50"), hist.ms(0.5), "ms");
    report.add(scenario, &format!("{name} p99"), hist.ms(0.99), "ms").target(Target::Below(20.0));
}

/// `runs` finished runs spread round-robin over `flows`, one every 30 s back from now (a
/// million runs span about a year), each with the three step records the flow produces; then
/// the flows' counters as the workers would have left them.
async fn seed(server: &Server, flows: &[Uuid], runs: i64) -> anyhow::Result<()> {
    let mut tx = server.db.begin().await?;
    sqlx::raw_sql(
        r#"
        CREATE FUNCTION pg_temp.step(id text, seq int, input jsonb, output jsonb,
                                     run_start timestamptz) RETURNS jsonb
        LANGUAGE sql IMMUTABLE AS $$
            SELECT jsonb_build_object(
                'step_key', id, 'step_id', id, 'seq', seq, 'status', 'success', 'attempt', 1,
                'cost_ms', 0, 'input', input, 'output', output, 'error', NULL,
                'started_at', run_start + seq * interval '3 milliseconds')
        $$
        "#,
    )
    .execute(&mut *tx)
    .await?;
    // The records ride in the run's row, as the server stores a run it executed in place.
    sqlx::query(
        r#"
        INSERT INTO runs (id, project_id, flow_id, flow_version, flow_name, run_model, status,
                          input, message, start_time, end_time, steps)
        SELECT gen_random_uuid(), f.project_id, f.id, f.version, f.name, 'manual', 'success',
               jsonb_build_object('n', g), NULL, t.start, t.start + interval '12 milliseconds',
               jsonb_build_array(
                   pg_temp.step('trigger', 1, '{"body": {"n": 1}}', '{"body": {"n": 1}}', t.start),
                   pg_temp.step('shape', 2, '{"value": {"n": 1, "kind": "bench"}}',
                        '{"n": 1, "kind": "bench"}', t.start),
                   pg_temp.step('check', 3, '{"combinator": "all"}',
                        '{"result": true, "branch": "yes"}', t.start))
        FROM generate_series(1, $2) AS g
        CROSS JOIN LATERAL (SELECT now() - (($2 - g) * interval '30 seconds') AS start) t
        JOIN flows f ON f.id = ($1::uuid[])[1 + g % cardinality($1::uuid[])]
        "#,
    )
    .bind(flows)
    .bind(runs)
    .execute(&mut *tx)
    .await
    .context("seeding runs")?;
    sqlx::query(
        r#"
        INSERT INTO flow_run_counts (flow_id, slot, runs, last_run_id, last_run_at)
        SELECT DISTINCT ON (flow_id) flow_id, 0, count(*) OVER (PARTITION BY flow_id), id,
               start_time
        FROM runs ORDER BY flow_id, start_time DESC
        "#,
    )
    .execute(&mut *tx)
    .await
    .context("flow counters")?;
    tx.commit().await?;
    // A year of history has long been vacuumed by autovacuum; a bulk load minutes old has not,
    // so its visibility map is empty and no index-only scan would skip the heap yet.
    sqlx::raw_sql("VACUUM (ANALYZE) runs, flows").execute(&server.db).await?;
    Ok(())
}
