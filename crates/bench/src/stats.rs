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

/// One closed-loop task's client: what it keeps from one operation to the next (its own
/// connection, say) and how it makes operation `i`.
pub(crate) trait Session: Send + 'static {
    fn call(&mut self, i: usize) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// A shared closure as a session that keeps nothing between operations.
struct Stateless<F>(Arc<F>);

impl<F, Fut> Session for Stateless<F>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    fn call(&mut self, i: usize) -> impl Future<Output = anyhow::Result<()>> + Send {
        (self.0)(i)
    }
}

/// Runs `op(0..total)` from `concurrency` tasks, each starting its next operation as soon as
/// the previous one answered, and records the latency of every successful operation.
pub(crate) async fn closed_loop<F, Fut>(concurrency: usize, total: usize, op: F) -> Load
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let sessions = (0..concurrency).map(|_| Stateless(op.clone())).collect();
    run(total, sessions).await
}

/// [`closed_loop`] with a session per task, made by `session` before any task starts (so a
/// failure to make one is the caller's, not an operation's).
pub(crate) async fn closed_loop_with<S: Session>(
    concurrency: usize,
    total: usize,
    session: impl FnMut() -> anyhow::Result<S>,
) -> anyhow::Result<Load> {
    let sessions = std::iter::repeat_with(session).take(concurrency).collect::<Result<_, _>>()?;
    Ok(run(total, sessions).await)
}

/// Operations 0..total from one task per session.
async fn run<S: Session>(total: usize, sessions: Vec<S>) -> Load {
    let next = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(Mutex::new(None));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut session in sessions {
        let (next, first_error) = (next.clone(), first_error.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Latencies::new(), 0);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let at = Instant::now();
                match session.call(i).await {
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
