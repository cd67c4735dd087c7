//! The references every scenario is judged against, measured in the same run on the same
//! machine: PostgreSQL's single-row-commit rate and a bare axum handler's requests/s.

use std::time::{Duration, Instant};

use anyhow::Context;
use hyper::Uri;
use sqlx::Connection;

use crate::http1::Http1;
use crate::stats::{closed_loop_with, Latencies, Load, Session};

/// One-row `INSERT` commits from `connections` connections, each in a loop for `duration`.
/// Returns commits/s and the commit latency.
pub(crate) async fn pg_commits(
    database_url: &str,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(f64, Latencies)> {
    let mut setup = sqlx::PgConnection::connect(database_url).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_commit (id bigserial PRIMARY KEY, v integer)")
        .execute(&mut setup)
        .await?;
    setup.close().await?;

    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let url = database_url.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut conn = sqlx::PgConnection::connect(&url).await?;
            let mut latencies = Latencies::new();
            while Instant::now() < deadline {
                let at = Instant::now();
                // Autocommit: each statement is its own transaction, so each is one commit.
                sqlx::query("INSERT INTO bench_commit (v) VALUES ($1)")
                    .bind(c as i32)
                    .execute(&mut conn)
                    .await?;
                latencies.record(at.elapsed());
            }
            conn.close().await?;
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Latencies::new();
    for task in tasks {
        all.add(&task.await.context("commit task")??);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    Ok((rate, all))
}

/// One client of the bare handler, on its own connection.
struct Getter {
    http: Http1,
}

impl Session for Getter {
    async fn call(&mut self, _: usize) -> anyhow::Result<()> {
        let (status, body) = self.http.get(&Uri::from_static("/")).await?;
        anyhow::ensure!(status.is_success(), "status {status}: {}", String::from_utf8_lossy(&body));
        Ok(())
    }
}

/// A bare axum handler answering `200 ok`, served on its own two-thread runtime (as a server
/// process would have), loaded with `requests` GETs at `concurrency` through the same HTTP
/// client as the scenarios' hot loops ([`Http1`], one connection per client task).
pub(crate) async fn bare_axum(concurrency: usize, requests: usize) -> anyhow::Result<Load> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
    });

    let getter = || anyhow::Ok(Getter { http: Http1::new(addr, None)? });
    // The server is stopped whether or not the load could start.
    let load = closed_loop_with(concurrency, requests, getter).await;
    let _ = stop.send(());
    thread.join().map_err(|_| anyhow::anyhow!("axum thread panicked"))?;
    load
}
