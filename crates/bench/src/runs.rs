//! Scenario 1, run throughput: runs of manual → transform → condition submitted over R7 by
//! concurrent clients; accepted/s, completed/s, submit-to-finish latency, and every run's
//! history checked at the end. The same is then measured, without a target, for the flow with
//! a 0 ms `Delay` first ("1q"), whose runs take the queue-and-worker path.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, ensure, Context};
use chrono::{DateTime, Utc};
use hyper::Uri;
use reqwest::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

use crate::flows::{
    manual_delay_transform_condition, manual_transform_condition, FOUR_STEPS, THREE_STEPS,
};
use crate::http1::Http1;
use crate::report::{Report, Target};
use crate::server::Server;
use crate::stats::{closed_loop_with, Latencies, Session};

/// A run's id, status, end, step records and successful step records.
type RunRow = (Uuid, String, Option<DateTime<Utc>>, i64, i64);

/// Each accepted run's id and when its submission was sent.
type Submitted = Arc<Mutex<Vec<(Uuid, SystemTime)>>>;

/// One client submitting runs over R7, on its own connection.
struct Submitter {
    http: Http1,
    r7: Uri,
    submitted: Submitted,
}

/// R7's answer.
#[derive(Deserialize)]
struct Accepted {
    running_id: Uuid,
}

impl Session for Submitter {
    async fn call(&mut self, i: usize) -> anyhow::Result<()> {
        let at = SystemTime::now();
        let body = format!(r#"{{"run_mode":"manual","input":{{"n":{i}}}}}"#);
        let (status, body) = self.http.post_json(&self.r7, body).await?;
        let text = || String::from_utf8_lossy(&body);
        ensure!(status == StatusCode::OK, "R7 answered {status}: {}", text());
        let accepted: Accepted = serde_json::from_slice(&body)
            .with_context(|| format!("R7 answered {status}: {}", text()))?;
        self.submitted.lock().unwrap().push((accepted.running_id, at));
        Ok(())
    }
}

pub(crate) struct RunsArgs {
    pub(crate) runs: usize,
    pub(crate) clients: usize,
    /// PostgreSQL's postmaster, when the cluster is the bench's own (for its CPU time).
    pub(crate) postmaster: Option<u32>,
}

pub(crate) async fn run(
    server: Arc<Server>,
    args: &RunsArgs,
    report: &mut Report,
) -> anyhow::Result<()> {
    let flow = manual_transform_condition("bench-runs");
    one(server.clone(), args, report, "1 runs", &flow, &THREE_STEPS).await?;
    let queued = manual_delay_transform_condition("bench-runs-queued");
    one(server, args, report, "1q runs, queued", &queued, &FOUR_STEPS).await
}

async fn one(
    server: Arc<Server>,
    args: &RunsArgs,
    report: &mut Report,
    label: &'static str,
    definition: &serde_json::Value,
    step_ids: &[&str],
) -> anyhow::Result<()> {
    const MAIN: &str = "1 runs";
    let (flow_id, _) = server.enabled_flow(definition).await?;
    let submitted: Submitted = Arc::new(Mutex::new(Vec::with_capacity(args.runs)));

    let ticks_per_s = crate::cpu::clock_ticks_per_second().await;
    let r7: Uri = server.path(&format!("/v1/{{p}}/flows/{flow_id}/run")).parse()?;
    let submitter = || {
        let (r7, submitted) = (r7.clone(), submitted.clone());
        anyhow::Ok(Submitter { http: Http1::new(server.addr, Some(&server.token))?, r7, submitted })
    };
    let before = crate::cpu::usage(server.pid(), args.postmaster, ticks_per_s);
    let started = SystemTime::now();
    let accept = closed_loop_with(args.clients, args.runs, submitter).await?;
    let after = crate::cpu::usage(server.pid(), args.postmaster, ticks_per_s);
    if let Some(e) = &accept.first_error {
        bail!("{} of {} submissions failed, first: {e}", accept.errors, args.runs);
    }
    let cpu = crate::cpu::per_item(before, after, args.runs, "run");
    report.note(format!("{label}, while submitting: {cpu}"));
    report.add(label, "accepted", accept.rate(), "runs/s").against("pg_commits_per_s");
    report.add(label, "accept p99", accept.latencies.ms(0.99), "ms");

    // Wait for the backlog to drain, with a bound: at 100 runs/s plus a minute.
    let deadline = Instant::now() + Duration::from_secs(60 + args.runs as u64 / 100);
    let flow: Uuid = flow_id.parse()?;
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM runs WHERE flow_id = $1 AND status IN ('success', 'fail')",
        )
        .bind(flow)
        .fetch_one(&server.db)
        .await?;
        if done as usize >= args.runs {
            break;
        }
        if Instant::now() > deadline {
            report.note(format!("scenario 1: only {done} of {} runs finished in time", args.runs));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every run: its end, its status and its step records, each run's read by its id (a join
    // on the view may be planned as a scan of every run's records for each run).
    let rows: Vec<RunRow> = sqlx::query_as(
        r#"
        SELECT r.id, r.status, r.end_time, s.records, s.ok
        FROM runs r
        CROSS JOIN LATERAL (
            SELECT count(*) AS records, count(*) FILTER (WHERE status = 'success') AS ok
            FROM run_records WHERE run_id = r.id
        ) s
        WHERE r.flow_id = $1
        "#,
    )
    .bind(flow)
    .fetch_all(&server.db)
    .await?;
    let submitted = submitted.lock().unwrap().clone();
    let submit_at: std::collections::HashMap<Uuid, SystemTime> = submitted.into_iter().collect();
    let (mut latencies, mut verified, mut last_end) = (Latencies::new(), 0usize, started);
    let steps = step_ids.len() as i64;
    for (id, status, end, records, ok) in &rows {
        let (Some(end), Some(at)) = (end, submit_at.get(id)) else { continue };
        let end = SystemTime::from(*end);
        latencies.record(end.duration_since(*at).unwrap_or_default());
        last_end = last_end.max(end);
        if status == "success" && *records == steps && *ok == steps {
            verified += 1;
        }
    }
    let wall = last_end.duration_since(started).unwrap_or_default().as_secs_f64();
    let completed = latencies.len() as f64 / wall;
    let figure = report.add(label, "completed", completed, "runs/s").against("pg_commits_per_s");
    if label == MAIN {
        figure.target(Target::AtLeastReference(1.0));
    }
    report.add(label, "submit-to-finish p50", latencies.ms(0.5), "ms");
    report.add(label, "submit-to-finish p99", latencies.ms(0.99), "ms");
    report
        .add(label, "runs verified (success, every step recorded)", verified as f64, "runs")
        .target(Target::AtLeast(args.runs as f64));

    // R3 over HTTP for a sample, as a client would read them.
    for (id, ..) in rows.iter().take(20) {
        let (status, detail) =
            server.get(&format!("/v2/{{p}}/flows/{flow_id}/running-history/{id}")).await?;
        let ok = status == StatusCode::OK
            && detail["status"] == "success"
            && detail["steps"].as_array().is_some_and(|s| {
                s.len() == step_ids.len() && s.iter().all(|s| s["lastRunningStatus"] == "success")
            });
        ensure!(ok, "R3 of run {id}: {status} {detail}");
    }
    Ok(())
}
