//! Latency recording on an HDR histogram and a closed-loop load generator.
//!
//! Latencies are kept in microseconds with three significant digits; percentiles come from
//! the `hdrhistogram` crate, never from our own arithmetic.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// A histogram of durations.
#[derive(Clone)]
pub(crate) struct Latencies(Histogram<u64>);

impl Latencies {
    pub(crate) fn new() -> Self {
        Latencies(Histogram::new(3).expect("a histogram with 3 significant digits"))
    }

    pub(crate) fn record(&mut self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.0.record(micros).expect("an auto-resizing histogram accepts any value");
    }

    pub(crate) fn add(&mut self, other: &Latencies) {
        self.0.add(&other.0).expect("histograms of the same precision");
    }

    pub(crate) fn len(&self) -> u64 {
        self.0.len()
    }

    /// The `q` quantile (0.5, 0.99) in milliseconds.
    pub(crate) fn ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1e3
    }
}

/// What a closed-loop load run measured.
pub(crate) struct Load {
    pub(crate) wall: Duration,
    pub(crate) latencies: Latencies,
    pub(crate) errors: usize,
    pub(crate) first_error: Option<String>,
}

impl Load {
    pub(crate) fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }
}

/// Runs `op(0..total)` from `concurrency` tasks, each starting its next operation as soon as
/// the previous one answered, and records the latency of every successful operation.
pub(crate) async fn closed_loop<F, Fut>(concurrency: usize, total: usize, op: F) -> Load
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let op = Arc::new(op);
    let first_error = Arc::new(Mutex::new(None));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, op, first_error) = (next.clone(), op.clone(), first_error.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Latencies::new(), 0);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let at = Instant::now();
                match op(i).await {
                    Ok(()) => latencies.record(at.elapsed()),
                    Err(e) => {
                        errors += 1;
                        first_error.lock().unwrap().get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let (mut latencies, mut errors) = (Latencies::new(), 0);
    for task in tasks {
        let (l, e) = task.await.expect("load task");
        latencies.add(&l);
        errors += e;
    }
    let first_error = first_error.lock().unwrap().take();
    Load { wall: started.elapsed(), latencies, errors, first_error }
}
