//! Scenario 6, the scheduler: many enabled schedules due at the start of every minute, and
//! the fire lag of each fire time; plus the idle server's CPU and database transactions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use crate::flows::every_minute;
use crate::report::{Report, Target};
use crate::server::{Server, STATS_SETTLE};
use crate::stats::{closed_loop, Latencies};

pub(crate) struct SchedulesArgs {
    pub(crate) schedules: usize,
    pub(crate) cycles: usize,
}

pub(crate) async fn run(
    server: Arc<Server>,
    args: &SchedulesArgs,
    report: &mut Report,
) -> anyhow::Result<()> {
    const S: &str = "6 scheduler";
    let srv = server.clone();
    let created = closed_loop(8, args.schedules, move |i| {
        let srv = srv.clone();
        async move {
            srv.enabled_flow(&every_minute(&format!("tick-{i}"))).await?;
            Ok(())
        }
    })
    .await;
    if let Some(e) = &created.first_error {
        bail!("{} of {} scheduled flows failed, first: {e}", created.errors, args.schedules);
    }
    report.add(S, "flows saved and enabled", created.rate(), "flows/s");

    // Fire times from the first whole minute at least 5 s away.
    let now = Utc::now();
    let first = (now + TimeDelta::seconds(5)).duration_trunc(TimeDelta::minutes(1))?
        + TimeDelta::minutes(1);
    let end = first + TimeDelta::minutes(args.cycles as i64);
    let expected = (args.schedules * args.cycles) as i64;
    let give_up = end + TimeDelta::seconds(50);
    loop {
        let fired = fires(&server, first, end).await?;
        if fired.len() as i64 >= expected {
            break;
        }
        if Utc::now() > give_up {
            report
                .note(format!("scenario 6: {} of {expected} fire times became runs", fired.len()));
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let lags = fires(&server, first, end).await?;
    let mut hist = Latencies::new();
    for lag in &lags {
        hist.record(Duration::from_secs_f64(lag.max(0.0)));
    }
    report.add(S, "fires", lags.len() as f64, "runs").target(Target::AtLeast(expected as f64));
    report.add(S, "fire lag p50", hist.ms(0.5), "ms");
    report.add(S, "fire lag p99", hist.ms(0.99), "ms").target(Target::Below(100.0));
    Ok(())
}

/// The lag in seconds (run queued minus fire time) of every scheduled run due in [from, to).
async fn fires(
    server: &Server,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<Vec<f64>> {
    Ok(sqlx::query_scalar(
        r#"
        SELECT extract(epoch FROM start_time - (input->>'fire_time')::timestamptz)::float8
        FROM runs
        WHERE run_model = 'auto' AND (input->>'fire_time')::timestamptz >= $1
          AND (input->>'fire_time')::timestamptz < $2
        "#,
    )
    .bind(from)
    .bind(to)
    .fetch_all(&server.db)
    .await?)
}

/// An idle server (no flows, nothing running) over `secs`: its CPU and its database's
/// transactions per second, and its resident memory.
pub(crate) async fn idle(server: &Server, secs: u64, report: &mut Report) -> anyhow::Result<()> {
    const S: &str = "6 idle";
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ticks_per_s = crate::cpu::clock_ticks_per_second().await;
    // One connection of our own for the readings, so each costs exactly one transaction.
    let mut conn = server.db.acquire().await?.detach();
    let xact0 = xacts(&mut conn).await?;
    let (xact_at, cpu0, cpu_at) = (Instant::now(), server.cpu_ticks()?, Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let cpu1 = server.cpu_ticks()?;
    let cpu = (cpu1 - cpu0) as f64 / ticks_per_s / cpu_at.elapsed().as_secs_f64() * 100.0;
    let xact1 = xacts(&mut conn).await?;
    // The first reading's own transaction is counted in the second one.
    let xact = (xact1 - xact0 - 1).max(0) as f64 / xact_at.elapsed().as_secs_f64();
    report.add(S, "server CPU", cpu, "% of a core").target(Target::Below(1.0));
    report.add(S, "database transactions", xact, "xact/s").target(Target::Below(5.0));
    let rss = server.rss()?;
    report.add("7 memory", "idle RSS", rss.current, "MiB").target(Target::Below(50.0));
    Ok(())
}

async fn xacts(conn: &mut sqlx::PgConnection) -> anyhow::Result<i64> {
    tokio::time::sleep(STATS_SETTLE).await;
    Ok(sqlx::query_scalar(
        "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database \
         WHERE datname = current_database()",
    )
    .fetch_one(conn)
    .await?)
}
