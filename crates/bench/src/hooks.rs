//! Scenario 2, the synchronous API flow: `POST /hooks/{webhook}` → transform → Response at
//! several concurrencies; requests/s and p50/p99, every run recorded.

use std::sync::Arc;

use anyhow::{bail, ensure, Context};
use hyper::{StatusCode, Uri};
use serde::Deserialize;
use uuid::Uuid;

use crate::flows::http_transform_response;
use crate::http1::Http1;
use crate::report::{Report, Target};
use crate::server::Server;
use crate::stats::{closed_loop_with, Session};

pub(crate) struct HooksArgs {
    pub(crate) requests: usize,
    pub(crate) concurrency: Vec<usize>,
    /// PostgreSQL's postmaster, when the cluster is the bench's own (for its CPU time).
    pub(crate) postmaster: Option<u32>,
}

/// One client of the hook, on its own connection.
struct Caller {
    http: Http1,
    hook: Uri,
}

/// What the flow answers: the request's `n`.
#[derive(Deserialize)]
struct Echo {
    echo: usize,
}

impl Session for Caller {
    async fn call(&mut self, i: usize) -> anyhow::Result<()> {
        let (status, body) = self.http.post_json(&self.hook, format!(r#"{{"n":{i}}}"#)).await?;
        let text = || String::from_utf8_lossy(&body);
        ensure!(status == StatusCode::OK, "hook answered {status}: {}", text());
        let answer: Echo = serde_json::from_slice(&body)
            .with_context(|| format!("hook answered {status}: {}", text()))?;
        ensure!(answer.echo == i, "hook echoed {} for {i}", answer.echo);
        Ok(())
    }
}

pub(crate) async fn run(
    server: Arc<Server>,
    args: &HooksArgs,
    report: &mut Report,
) -> anyhow::Result<()> {
    const S: &str = "2 sync hook";
    let (flow_id, apig_url) = server.enabled_flow(&http_transform_response("bench-hook")).await?;
    let hook: Uri = apig_url.as_str().context("apig_url")?.parse()?;
    let mut sent = 0;
    let ticks_per_s = crate::cpu::clock_ticks_per_second().await;
    for &c in &args.concurrency {
        let before = crate::cpu::usage(server.pid(), args.postmaster, ticks_per_s);
        let caller =
            || anyhow::Ok(Caller { http: Http1::new(server.addr, None)?, hook: hook.clone() });
        let load = closed_loop_with(c, args.requests, caller).await?;
        let after = crate::cpu::usage(server.pid(), args.postmaster, ticks_per_s);
        if let Some(e) = &load.first_error {
            bail!("{} of {} hook calls failed, first: {e}", load.errors, args.requests);
        }
        let cpu = crate::cpu::per_item(before, after, args.requests, "request");
        report.note(format!("c={c}: {cpu}"));
        sent += args.requests;
        let target = (c == 8).then_some(Target::AtLeast(6000.0));
        let reference = format!("axum_c{c}_rps");
        report
            .add(S, &format!("c={c} requests"), load.rate(), "req/s")
            .against(&reference)
            .target_if(target);
        report.add(S, &format!("c={c} p50"), load.latencies.ms(0.5), "ms");
        let target = (c == 8).then_some(Target::Below(5.0));
        report.add(S, &format!("c={c} p99"), load.latencies.ms(0.99), "ms").target_if(target);
    }

    let recorded: i64 = sqlx::query_scalar(
        r#"
        SELECT count(*) FROM runs r WHERE r.flow_id = $1 AND r.status = 'success'
          AND (SELECT count(*) FROM run_records s
               WHERE s.run_id = r.id AND s.status = 'success') = 3
        "#,
    )
    .bind(flow_id.parse::<Uuid>()?)
    .fetch_one(&server.db)
    .await?;
    report
        .add(S, "runs recorded (success, 3 step records)", recorded as f64, "runs")
        .target(Target::AtLeast(sent as f64));
    Ok(())
}
