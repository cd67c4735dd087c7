//! What a run leaves behind: step records, and the [`Journal`] that makes them durable.
//!
//! The executor keeps records in memory and hands them to the journal in batches, only around
//! steps that touch the outside world. Everything else is returned to the caller at the end of
//! the run so that it can be committed together with the run's final status.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The result of one step instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Success,
    Fail,
}

/// One finished step instance: a plain step, a control step, or one iteration's copy of a step
/// inside a loop body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// `<stepId>` outside loops, `<stepId>#<i>.<j>` inside loops (outermost index first).
    pub step_key: String,
    pub step_id: String,
    /// Order in which the step finished within the run, starting at 1.
    pub seq: i32,
    pub status: StepStatus,
    /// The attempt that produced this record, starting at 1.
    pub attempt: i32,
    pub cost_ms: i64,
    /// The evaluated input.
    pub input: Value,
    pub output: Value,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
}

/// Why a checkpoint could not be written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The run no longer belongs to this worker (its lease was taken over).
    #[error("run lease lost")]
    LeaseLost,
    #[error("journal write failed: {0}")]
    Write(String),
}

/// Durable storage for step records, written by the executor at checkpoints.
#[async_trait]
pub trait Journal: Send + Sync {
    /// Stores `records` durably before returning.
    async fn checkpoint(&self, records: Vec<StepRecord>) -> Result<(), JournalError>;
}

/// A journal that forgets everything, for callers that only want the outcome.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullJournal;

#[async_trait]
impl Journal for NullJournal {
    async fn checkpoint(&self, _records: Vec<StepRecord>) -> Result<(), JournalError> {
        Ok(())
    }
}
