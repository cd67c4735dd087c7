//! Waking callers that wait for a run to end, without polling the database.
//!
//! A caller registers the run id in [`Completions`] before the run is queued and waits on the
//! returned [`Waiter`]. A worker of this process that finishes the run hands its end over
//! directly. A run finished by another process is announced with `NOTIFY` on
//! [`RUN_DONE_CHANNEL`] (payload: the run id) when the finish commits; [`listen`] reads those
//! notifications and loads the end of runs someone here waits for. A notification lost while
//! the listening connection was down is covered by one last read when the wait times out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use crate::executor::RunStatus;
use crate::store;

/// The channel on which a finished run's id is announced.
pub const RUN_DONE_CHANNEL: &str = "workbench_run_done";

/// How a run ended, as a waiting caller sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    pub status: RunStatus,
    pub message: Option<String>,
    /// The output of the run's `Response` step, if one ran.
    pub response: Option<Value>,
}

/// The runs callers of this process wait for, by run id.
#[derive(Debug)]
pub struct Completions {
    waiters: Mutex<HashMap<Uuid, oneshot::Sender<RunResult>>>,
    /// Names this process in the announcements its workers send, so that its listener can
    /// leave its own runs to the in-process hand-over.
    process: Uuid,
}

impl Default for Completions {
    fn default() -> Self {
        Completions { waiters: Mutex::default(), process: Uuid::new_v4() }
    }
}

impl Completions {
    /// The id this process's announcements carry.
    pub fn process(&self) -> Uuid {
        self.process
    }

    /// Starts waiting for `run_id`; register before queueing the run so its end is not missed.
    pub fn register(self: &Arc<Self>, run_id: Uuid) -> Waiter {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(run_id, tx);
        Waiter { run_id, rx, owner: self.clone() }
    }

    /// Hands the end of `run_id` to its waiter, if there is one; returns whether there was.
    pub fn complete(&self, run_id: Uuid, end: RunResult) -> bool {
        let Some(tx) = self.lock().remove(&run_id) else { return false };
        tx.send(end).is_ok()
    }

    /// Whether a caller of this process waits for `run_id`.
    pub fn is_waiting(&self, run_id: Uuid) -> bool {
        self.lock().contains_key(&run_id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, oneshot::Sender<RunResult>>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One caller's wait for one run; dropping it stops waiting.
#[derive(Debug)]
pub struct Waiter {
    run_id: Uuid,
    rx: oneshot::Receiver<RunResult>,
    owner: Arc<Completions>,
}

impl Waiter {
    pub fn run_id(&self) -> Uuid {
        self.run_id
    }

    /// The run's end, or `None` once `deadline` has passed with the run still going. On
    /// timeout the database is read once, in case the announcement was missed.
    pub async fn wait(
        mut self,
        db: &PgPool,
        deadline: Duration,
    ) -> Result<Option<RunResult>, sqlx::Error> {
        if let Ok(Ok(end)) = tokio::time::timeout(deadline, &mut self.rx).await {
            return Ok(Some(end));
        }
        store::find_run_end(db, self.run_id).await
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.owner.lock().remove(&self.run_id);
    }
}

/// Listens for runs finished by any process and completes the ones waited for here; returns
/// once `stop` turns true.
pub fn listen(
    db: PgPool,
    completions: Arc<Completions>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut listener = loop {
            match connect(&db).await {
                Ok(listener) => break listener,
                Err(e) => {
                    tracing::warn!(error = %e, "listening for finished runs failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        };
        while !*stop.borrow() {
            let notification = tokio::select! {
                n = listener.recv() => n,
                _ = stop.changed() => break,
            };
            let id = match notification {
                Ok(n) => parse_announcement(n.payload())
                    // A run of this process's own workers is handed over in process.
                    .filter(|(_, process)| *process != completions.process())
                    .map(|(id, _)| id),
                Err(e) => {
                    tracing::warn!(error = %e, "finished-run notifications interrupted");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    None
                }
            };
            let Some(id) = id.filter(|id| completions.is_waiting(*id)) else { continue };
            match store::find_run_end(&db, id).await {
                Ok(Some(end)) => {
                    completions.complete(id, end);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, run = %id, "reading a finished run failed"),
            }
        }
    })
}

/// `<run id> <process id>`, as `store::announce_ends` sends it.
fn parse_announcement(payload: &str) -> Option<(Uuid, Uuid)> {
    let (run, process) = payload.split_once(' ')?;
    Some((Uuid::parse_str(run).ok()?, Uuid::parse_str(process).ok()?))
}

async fn connect(db: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(db).await?;
    listener.listen(RUN_DONE_CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_name_the_run_and_the_process() {
        let (run, process) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(parse_announcement(&format!("{run} {process}")), Some((run, process)));
        assert_eq!(parse_announcement(&run.to_string()), None);
        assert_eq!(parse_announcement("x y"), None);
    }
}
