//! `workbench-bench`: runs the benchmark scenarios of `docs/benchmarks.md` against a
//! `workbench serve` child process on a private PostgreSQL (or `--database-url`), measures the
//! references in the same run, and prints one table (`--json FILE` writes the same figures).
//!
//! Each scenario gets a fresh database and a fresh server, so its peak RSS is its own. The
//! engine's per-step overhead (scenario 3) is a criterion bench in `crates/engine/benches/`.

#![allow(clippy::print_stdout)]

mod cpu;
mod flows;
mod history;
mod hooks;
mod http1;
mod ingest;
mod reference;
mod report;
mod runs;
mod schedules;
mod server;
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};

use crate::report::{Report, Target};
use crate::server::{Pg, Server, ServerSpec, STATS_SETTLE};

/// Scenarios, in the order a full run takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// The references: PostgreSQL commits/s and a bare axum handler's requests/s.
    Reference,
    /// 6 and 7: an idle server's CPU, database transactions and RSS.
    Idle,
    /// 1: run throughput.
    Runs,
    /// 2: the synchronous HTTP-trigger flow.
    Hooks,
    /// 5: application model ingest.
    Ingest,
    /// 4: history at scale.
    History,
    /// 6: the scheduler's fire lag.
    Schedules,
}

#[derive(Debug, Parser)]
#[command(about = "Throughput, latency, memory and scale of a Workbench server")]
struct Args {
    /// Run only this scenario (the references are always measured).
    #[arg(long, value_enum)]
    scenario: Option<Scenario>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// An existing PostgreSQL (any database the role may create databases from); default: a
    /// private cluster under `--work-dir`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Where the private cluster and the servers' data directories go.
    #[arg(long, default_value = "/tmp/workbench-bench")]
    work_dir: PathBuf,
    /// The `workbench` binary to serve with (default: next to this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Run workers of the server (`workbench serve --workers`).
    #[arg(long, default_value_t = 16)]
    workers: usize,
    /// Seconds each reference is measured for.
    #[arg(long, default_value_t = 5)]
    reference_secs: u64,
    /// Keep each scenario's database (and the servers' data directories) for inspection.
    #[arg(long)]
    keep: bool,
    /// Scenario 1: runs to submit.
    #[arg(long, default_value_t = 20_000)]
    runs: usize,
    /// Scenario 1: concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Scenario 2: requests at each concurrency.
    #[arg(long, default_value_t = 5_000)]
    hook_requests: usize,
    /// Scenario 2: the concurrencies.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    hook_concurrency: Vec<usize>,
    /// Scenario 4: runs to seed.
    #[arg(long, default_value_t = 1_000_000)]
    history_runs: i64,
    /// Scenario 4: flows the seeded runs are spread over.
    #[arg(long, default_value_t = 10)]
    history_flows: usize,
    /// Scenario 4: requests per query.
    #[arg(long, default_value_t = 200)]
    history_samples: usize,
    /// Scenario 5: entities (relationships are twice as many).
    #[arg(long, default_value_t = 100_000)]
    entities: usize,
    /// Scenario 5: concurrent clients.
    #[arg(long, default_value_t = 4)]
    ingest_clients: usize,
    /// Scenario 6: enabled schedules, each due every minute.
    #[arg(long, default_value_t = 10_000)]
    schedules: usize,
    /// Scenario 6: minutes of fire times measured.
    #[arg(long, default_value_t = 2)]
    schedule_cycles: usize,
    /// Scenario 6: seconds the idle server is watched.
    #[arg(long, default_value_t = 30)]
    idle_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.work_dir)?;
    let bin = args.server_bin.clone().unwrap_or_else(server::default_server_bin);
    anyhow::ensure!(
        bin.exists(),
        "no server binary at {} (build it: cargo build --release -p workbench)",
        bin.display()
    );
    let pg = Pg::open(args.database_url.clone(), &args.work_dir.join("pg")).await?;
    let mut report = Report { machine: machine(&pg).await, ..Report::default() };

    let result = run_all(&args, &bin, &pg, &mut report).await;
    pg.stop().await;
    report.settle();
    for (what, value) in &report.machine {
        println!("{what}: {value}");
    }
    println!();
    println!("{}", report.table());
    for note in &report.notes {
        println!("* {note}");
    }
    if let Some(path) = &args.json {
        report.write_json(path).with_context(|| format!("writing {}", path.display()))?;
    }
    result
}

async fn run_all(
    args: &Args,
    bin: &std::path::Path,
    pg: &Pg,
    report: &mut Report,
) -> anyhow::Result<()> {
    let wanted = |s: Scenario| args.scenario.is_none_or(|only| only == s);
    references(args, pg, report).await?;
    let order = [
        Scenario::Idle,
        Scenario::Runs,
        Scenario::Hooks,
        Scenario::Ingest,
        Scenario::History,
        Scenario::Schedules,
    ];
    for scenario in order.into_iter().filter(|s| wanted(*s)) {
        eprintln!("scenario {scenario:?}");
        let (database, database_url) =
            pg.fresh_database(&format!("{scenario:?}").to_lowercase()).await?;
        let spec =
            ServerSpec { bin, database_url, work_dir: &args.work_dir, workers: args.workers };
        let server = Arc::new(Server::start(spec).await?);
        let ticks_per_s = cpu::clock_ticks_per_second().await;
        let before = cpu::usage(server.pid(), pg.postmaster(), ticks_per_s);
        let started = std::time::Instant::now();
        let counters = server.db_counters().await?;
        let outcome = match scenario {
            Scenario::Reference => Ok(()),
            Scenario::Idle => schedules::idle(&server, args.idle_secs, report).await,
            Scenario::Runs => {
                let a = runs::RunsArgs {
                    runs: args.runs,
                    clients: args.clients,
                    postmaster: pg.postmaster(),
                };
                runs::run(server.clone(), &a, report).await
            }
            Scenario::Hooks => {
                let a = hooks::HooksArgs {
                    requests: args.hook_requests,
                    concurrency: args.hook_concurrency.clone(),
                    postmaster: pg.postmaster(),
                };
                hooks::run(server.clone(), &a, report).await
            }
            Scenario::Ingest => {
                let a =
                    ingest::IngestArgs { entities: args.entities, clients: args.ingest_clients };
                ingest::run(server.clone(), &a, report).await
            }
            Scenario::History => {
                let a = history::HistoryArgs {
                    runs: args.history_runs,
                    flows: args.history_flows,
                    samples: args.history_samples,
                };
                history::run(server.clone(), &a, report).await
            }
            Scenario::Schedules => {
                let a = schedules::SchedulesArgs {
                    schedules: args.schedules,
                    cycles: args.schedule_cycles,
                };
                schedules::run(server.clone(), &a, report).await
            }
        };
        let after = cpu::usage(server.pid(), pg.postmaster(), ticks_per_s);
        let wall = started.elapsed().as_secs_f64();
        let postgres = match (before.postgres, after.postgres) {
            (Some(b), Some(a)) => format!("{:.1}", a - b),
            _ => "unknown".into(),
        };
        report.note(format!(
            "scenario {scenario:?}: {wall:.1} s wall; CPU s: server {:.1}, PostgreSQL {postgres}, \
             load generator {:.1}",
            after.server - before.server,
            after.generator - before.generator
        ));
        tokio::time::sleep(STATS_SETTLE).await;
        let after_counters = server.db_counters().await?;
        let [commits, inserted, updated] = [0, 1, 2].map(|i| after_counters[i] - counters[i]);
        report.note(format!(
            "scenario {scenario:?}: PostgreSQL {commits} commits, {inserted} rows inserted, \
             {updated} rows updated"
        ));
        let rss = server.rss()?;
        let name = format!("peak RSS in {scenario:?}").to_lowercase();
        report.add("7 memory", &name, rss.peak, "MiB").target(Target::Below(500.0));
        let server = Arc::into_inner(server).context("scenario kept the server")?;
        server.stop(!args.keep).await?;
        if !args.keep {
            pg.drop_database(&database).await?;
        }
        if let Err(e) = outcome {
            report.note(format!("scenario {scenario:?} failed: {e:#}"));
        }
    }
    Ok(())
}

/// PostgreSQL's one-row commit rate from 8 connections, and a bare axum handler at each
/// concurrency the scenarios use.
async fn references(args: &Args, pg: &Pg, report: &mut Report) -> anyhow::Result<()> {
    eprintln!("references");
    let (database, url) = pg.fresh_database("reference").await?;
    let (rate, latencies) =
        reference::pg_commits(&url, 8, Duration::from_secs(args.reference_secs)).await?;
    report.references.push(("pg_commits_per_s".into(), rate));
    report.note(format!(
        "reference: one-row commits from 8 connections, p50 {:.2} ms, p99 {:.2} ms",
        latencies.ms(0.5),
        latencies.ms(0.99)
    ));
    let (rate, latencies) =
        reference::pg_commits(&url, 1, Duration::from_secs(args.reference_secs)).await?;
    report.references.push(("pg_commits_1conn_per_s".into(), rate));
    report.note(format!(
        "reference: one-row commits from 1 connection, p50 {:.2} ms, p99 {:.2} ms",
        latencies.ms(0.5),
        latencies.ms(0.99)
    ));
    let mut levels = args.hook_concurrency.clone();
    levels.extend([args.clients]);
    levels.sort_unstable();
    levels.dedup();
    for c in levels {
        // About as many requests as fit in the reference time at 50,000 req/s.
        let load = reference::bare_axum(c, 50_000 * args.reference_secs as usize / 2).await?;
        report.references.push((format!("axum_c{c}_rps"), load.rate()));
        report.note(format!(
            "reference: bare axum at c={c}: p50 {:.3} ms, p99 {:.3} ms",
            load.latencies.ms(0.5),
            load.latencies.ms(0.99)
        ));
    }
    if !args.keep {
        pg.drop_database(&database).await?;
    }
    Ok(())
}

/// What the figures were measured on.
async fn machine(pg: &Pg) -> Vec<(String, String)> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model =
        cpuinfo.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = read("/proc/meminfo").lines().next().unwrap_or_default().to_owned();
    let load = read("/proc/loadavg");
    let postgres = pg.describe().await.unwrap_or_else(|e| format!("unknown: {e}"));
    vec![
        ("cpu".into(), format!("{} × {}", cores, model.unwrap_or("unknown").trim())),
        ("memory".into(), mem.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")),
        ("load average at start".into(), load.trim().to_owned()),
        ("postgres".into(), postgres),
    ]
}
