//! Where the CPU went during a scenario: the server, PostgreSQL (the postmaster, its live
//! children, and the children it already reaped) and this load generator, from `/proc`.

use std::path::Path;

/// `/proc/<pid>/stat` fields after the command name: state is index 0, so field n of
/// `proc(5)` is index n - 3.
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split_whitespace().skip(1).map(|f| f.parse().unwrap_or(0)).collect())
}

/// User plus system time of `pid`, in clock ticks.
pub(crate) fn ticks(pid: u32) -> Option<u64> {
    let f = stat_fields(pid)?;
    Some(f[10] + f[11])
}

fn parent(pid: u32) -> Option<u32> {
    stat_fields(pid).map(|f| f[0] as u32)
}

/// The postmaster of the cluster whose data directory is `data_dir`.
pub(crate) fn postmaster(data_dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// The postmaster's time, its reaped children's time and every live child's time.
pub(crate) fn postgres_ticks(postmaster: u32) -> Option<u64> {
    let f = stat_fields(postmaster)?;
    let mut total = f[10] + f[11] + f[12] + f[13];
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if parent(pid) == Some(postmaster) {
            total += ticks(pid).unwrap_or(0);
        }
    }
    Some(total)
}

/// CPU seconds used so far by the server, PostgreSQL and this process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) server: f64,
    pub(crate) postgres: Option<f64>,
    pub(crate) generator: f64,
}

pub(crate) fn usage(server: u32, postmaster: Option<u32>, ticks_per_s: f64) -> Usage {
    let secs = |t: Option<u64>| t.unwrap_or(0) as f64 / ticks_per_s;
    Usage {
        server: secs(ticks(server)),
        postgres: postmaster.and_then(postgres_ticks).map(|t| t as f64 / ticks_per_s),
        generator: secs(ticks(std::process::id())),
    }
}

pub(crate) async fn clock_ticks_per_second() -> f64 {
    let out = tokio::process::Command::new("getconf").arg("CLK_TCK").output().await;
    out.ok().and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok()).unwrap_or(100.0)
}

/// The CPU each side spent per item between two readings, as a note's text.
pub(crate) fn per_item(before: Usage, after: Usage, items: usize, item: &str) -> String {
    let each = |secs: f64| format!("{:.0}", secs * 1e6 / items.max(1) as f64);
    let postgres = match (before.postgres, after.postgres) {
        (Some(b), Some(a)) => each(a - b),
        _ => "unknown".into(),
    };
    format!(
        "CPU µs per {item}: server {}, PostgreSQL {postgres}, load generator {}",
        each(after.server - before.server),
        each(after.generator - before.generator),
    )
}
