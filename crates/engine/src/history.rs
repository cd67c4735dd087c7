//! Run history: the latest run of each flow (R1), the runs of one flow (R2) and one run with
//! its steps (R3), plus the `time_range` filter grammar they share.
//!
//! The per-flow summary reads the run counter and last run kept on the flow row, so it never
//! aggregates over the runs table; the lists use the `(project, flow, start_time)` and
//! `(project, start_time)` indexes.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde_json::{Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::journal::{StepRecord, StepStatus};
use crate::store::{self, like_pattern};

/// Why a `time_range` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeRangeError {
    #[error("time_range must be `<start>to<end>` with ISO times, start before end")]
    Invalid,
    #[error("time_range spans more than 30 days")]
    TooLong,
}

/// Parses `<start> to <end>`, `<start>到<end>` or `<start>to<end>`; times are
/// `YYYY-MM-DDTHH:MM:SS`, optionally with fractional seconds and a `Z`, read as UTC.
pub fn parse_time_range(text: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), TimeRangeError> {
    let (start, end) =
        text.split_once('到').or_else(|| text.split_once("to")).ok_or(TimeRangeError::Invalid)?;
    let clean = |s: &str| s.trim_matches(|c: char| c.is_whitespace() || c == '+').to_owned();
    let start = parse_time(&clean(start)).ok_or(TimeRangeError::Invalid)?;
    let end = parse_time(&clean(end)).ok_or(TimeRangeError::Invalid)?;
    if end < start {
        return Err(TimeRangeError::Invalid);
    }
    if end - start > TimeDelta::days(30) {
        return Err(TimeRangeError::TooLong);
    }
    Ok((start, end))
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.strip_suffix('Z').unwrap_or(text);
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc())
}

/// Filters shared by R1 and R2.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub time_range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Flow name substring (R1 only).
    pub name: Option<String>,
    /// `success` or `fail`.
    pub status: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

/// One row of R1 or R2.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunSummary {
    pub id: Uuid,
    pub flow_id: Uuid,
    pub flow_name: String,
    pub flow_version: i32,
    pub run_model: String,
    pub status: String,
    pub icon: Option<String>,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    pub message: Option<String>,
    /// R1: the flow's number of runs.
    pub running_times: Option<i64>,
    /// R1: when the flow last ran.
    pub last_time: Option<DateTime<Utc>>,
}

impl RunSummary {
    /// `running` while queued or executing; `success` or `fail` after.
    pub fn wire_status(&self) -> &str {
        match self.status.as_str() {
            "queued" | "running" => "running",
            other => other,
        }
    }

    /// Milliseconds from start to end, or so far.
    pub fn exec_time(&self) -> i64 {
        (self.end_time.unwrap_or_else(Utc::now) - self.start_time).num_milliseconds().max(0)
    }
}

/// R1: each flow's latest run, newest first.
pub async fn latest_per_flow(
    db: &PgPool,
    project_id: &str,
    filter: &HistoryFilter,
) -> sqlx::Result<(i64, Vec<RunSummary>)> {
    let (from, to) = filter.time_range.unzip();
    let name = filter.name.as_deref().map(like_pattern);
    const WHERE: &str = r#"
        FROM flows f
        JOIN LATERAL (
            SELECT sum(c.runs)::bigint AS runs, max(c.last_run_at) AS last_at,
                   (array_agg(c.last_run_id ORDER BY c.last_run_at DESC NULLS LAST))[1] AS last_id
            FROM flow_run_counts c WHERE c.flow_id = f.id
        ) n ON true
        JOIN runs r ON r.id = n.last_id
        WHERE f.project_id = $1 AND ($2::text IS NULL OR f.name ILIKE $2)
          AND ($3::text IS NULL OR r.status = $3)
          AND ($4::timestamptz IS NULL OR r.start_time >= $4)
          AND ($5::timestamptz IS NULL OR r.start_time <= $5)
    "#;
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) {WHERE}"))
        .bind(project_id)
        .bind(&name)
        .bind(&filter.status)
        .bind(from)
        .bind(to)
        .fetch_one(db)
        .await?;
    let rows = sqlx::query_as(&format!(
        r#"
        SELECT r.id, f.id AS flow_id, f.name AS flow_name, r.flow_version, r.run_model, r.status,
               f.definition->>'icon' AS icon, r.start_time, r.end_time, r.message,
               n.runs AS running_times, n.last_at AS last_time
        {WHERE}
        ORDER BY r.start_time DESC, r.id
        OFFSET $6 LIMIT $7
        "#
    ))
    .bind(project_id)
    .bind(&name)
    .bind(&filter.status)
    .bind(from)
    .bind(to)
    .bind(filter.offset)
    .bind(filter.limit)
    .fetch_all(db)
    .await?;
    Ok((total, rows))
}

/// R2: the runs of one flow, newest first. `None` when the flow does not exist.
pub async fn runs_of_flow(
    db: &PgPool,
    project_id: &str,
    flow_id: Uuid,
    filter: &HistoryFilter,
) -> sqlx::Result<Option<(i64, Vec<RunSummary>)>> {
    let Some(flow) = store::find_flow(db, project_id, flow_id, false).await? else {
        return Ok(None);
    };
    let (from, to) = filter.time_range.unzip();
    // The flow was found in the project, and a flow id belongs to one project, so its runs
    // are selected by flow alone (which lets the page index leave the project out).
    const WHERE: &str = r#"
        FROM runs r
        WHERE r.flow_id = $1
          AND ($2::text IS NULL OR r.status = $2)
          AND ($3::timestamptz IS NULL OR r.start_time >= $3)
          AND ($4::timestamptz IS NULL OR r.start_time <= $4)
    "#;
    // Unfiltered, the total is the flow's count (its slots summed), kept with every insert
    // and prune, instead of a count over all its runs on every page.
    // FIXME: with a status or time filter the total is still a count over the matching runs
    // (O(runs) per page), and a status filter makes a deep page read every skipped row from
    // the table. A capped count, and `status` carried in the page index (INCLUDE), would lift
    // both.
    let unfiltered = filter.status.is_none() && filter.time_range.is_none();
    let total: i64 = if unfiltered {
        sqlx::query_scalar(
            "SELECT greatest(coalesce(sum(runs), 0), 0)::bigint FROM flow_run_counts \
             WHERE flow_id = $1",
        )
        .bind(flow_id)
        .fetch_one(db)
        .await?
    } else {
        sqlx::query_scalar(&format!("SELECT count(*) {WHERE}"))
            .bind(flow_id)
            .bind(&filter.status)
            .bind(from)
            .bind(to)
            .fetch_one(db)
            .await?
    };
    // The page's ids come first from the (flow, start_time, id) index alone, so the rows an
    // OFFSET skips cost an index entry each rather than a heap fetch; only the page's own rows
    // are read from the table.
    let rows = sqlx::query_as(&format!(
        r#"
        WITH page AS (
            SELECT r.start_time, r.id {WHERE}
            ORDER BY r.start_time DESC, r.id DESC
            OFFSET $5 LIMIT $6
        )
        SELECT r.id, r.flow_id, r.flow_name, r.flow_version, r.run_model, r.status,
               $7::text AS icon, r.start_time, r.end_time, r.message,
               NULL::bigint AS running_times, NULL::timestamptz AS last_time
        FROM page JOIN runs r ON r.id = page.id
        ORDER BY page.start_time DESC, page.id DESC
        "#
    ))
    .bind(flow_id)
    .bind(&filter.status)
    .bind(from)
    .bind(to)
    .bind(filter.offset)
    .bind(filter.limit)
    .bind(flow.definition.get("icon").and_then(Value::as_str))
    .fetch_all(db)
    .await?;
    Ok(Some((total, rows)))
}

/// R3: one run and every step of its flow version, with what each step did.
#[derive(Debug, Clone)]
pub struct RunDetail {
    pub run: RunSummary,
    /// The step objects of the version that ran, each with `lastRunningStatus`, `cost`,
    /// `input`, `output`, `error` and `executions` added.
    pub steps: Vec<Value>,
}

pub async fn run_detail(
    db: &PgPool,
    project_id: &str,
    flow_id: Uuid,
    run_id: Uuid,
) -> sqlx::Result<Option<RunDetail>> {
    let run: Option<RunSummary> = sqlx::query_as(
        r#"
        SELECT r.id, r.flow_id, r.flow_name, r.flow_version, r.run_model, r.status,
               NULL::text AS icon, r.start_time, r.end_time, r.message,
               NULL::bigint AS running_times, NULL::timestamptz AS last_time
        FROM runs r WHERE r.id = $1 AND r.flow_id = $2 AND r.project_id = $3
        "#,
    )
    .bind(run_id)
    .bind(flow_id)
    .bind(project_id)
    .fetch_optional(db)
    .await?;
    let Some(mut run) = run else { return Ok(None) };
    let definition = store::find_version(db, flow_id, run.flow_version).await?.map(|(d, _)| d);
    run.icon = definition.as_ref().and_then(|d| d.get("icon")?.as_str().map(str::to_owned));
    let records = store::load_steps(db, run_id).await?;
    let steps = match definition.as_ref().and_then(|d| d.get("steps")?.as_array().cloned()) {
        Some(steps) => annotate_steps(steps, &records),
        None => Vec::new(),
    };
    Ok(Some(RunDetail { run, steps }))
}

/// Adds what each step did to its definition. A step in a loop ran once per iteration: its
/// cost is the sum, its status and values those of the last iteration.
fn annotate_steps(steps: Vec<Value>, records: &[StepRecord]) -> Vec<Value> {
    let mut by_step: HashMap<&str, Vec<&StepRecord>> = HashMap::new();
    for r in records {
        by_step.entry(r.step_id.as_str()).or_default().push(r);
    }
    steps
        .into_iter()
        .map(|step| {
            let mut step = match step {
                Value::Object(m) => m,
                other => return other,
            };
            let id = step.get("stepId").and_then(Value::as_str).unwrap_or_default().to_owned();
            let runs = by_step.get(id.as_str()).map(Vec::as_slice).unwrap_or_default();
            insert_outcome(&mut step, runs);
            Value::Object(step)
        })
        .collect()
}

fn insert_outcome(step: &mut Map<String, Value>, runs: &[&StepRecord]) {
    let last = runs.iter().max_by_key(|r| r.seq);
    let cost: i64 = runs.iter().map(|r| r.cost_ms).sum();
    let status = last.map(|r| match r.status {
        StepStatus::Success => "success",
        StepStatus::Fail => "fail",
    });
    step.insert("lastRunningStatus".into(), status.map_or(Value::Null, Value::from));
    step.insert("cost".into(), Value::from(cost));
    step.insert("executions".into(), Value::from(runs.len()));
    step.insert("input".into(), last.map_or(Value::Null, |r| r.input.clone()));
    step.insert("output".into(), last.map_or(Value::Null, |r| r.output.clone()));
    step.insert(
        "error".into(),
        last.and_then(|r| r.error.clone()).map_or(Value::Null, Value::from),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_time_range_spelling_parses() {
        for text in [
            "2020-11-10T00:00:00.000Z到2020-11-12T00:00:00.000Z",
            "2020-11-10T00:00:00Z to 2020-11-12T00:00:00Z",
            "2020-11-10T00:00:00.000Zto2020-11-12T00:00:00.000Z",
            "2020-11-10T00:00:00 to 2020-11-12T00:00:00",
            "2020-11-10T00:00:00Z+to+2020-11-12T00:00:00Z",
        ] {
            let (start, end) = parse_time_range(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((end - start).num_days(), 2, "{text}");
        }
    }

    #[test]
    fn bad_time_ranges_are_refused() {
        use TimeRangeError::*;
        assert_eq!(parse_time_range("yesterday"), Err(Invalid));
        assert_eq!(parse_time_range("2020-11-10T00:00:00Zto"), Err(Invalid));
        assert_eq!(parse_time_range("2020-11-12T00:00:00Zto2020-11-10T00:00:00Z"), Err(Invalid));
        assert_eq!(parse_time_range("2020-01-01T00:00:00Zto2020-03-01T00:00:00Z"), Err(TooLong));
        assert_eq!(parse_time_range("2020-13-01T00:00:00Zto2020-13-02T00:00:00Z"), Err(Invalid));
    }

    #[test]
    fn loop_steps_sum_cost_and_report_the_last_iteration() {
        let record = |key: &str, seq, status, cost| StepRecord {
            step_key: key.into(),
            step_id: "s2".into(),
            seq,
            status,
            attempt: 1,
            cost_ms: cost,
            input: Value::Null,
            output: Value::from(seq),
            error: None,
            started_at: Utc::now(),
        };
        let records =
            [record("s2#0", 1, StepStatus::Success, 5), record("s2#1", 2, StepStatus::Fail, 7)];
        let steps =
            vec![serde_json::json!({"stepId": "s2", "x": 1}), serde_json::json!({"stepId": "s3"})];
        let out = annotate_steps(steps, &records);
        assert_eq!(out[0]["cost"], 12);
        assert_eq!(out[0]["lastRunningStatus"], "fail");
        assert_eq!(out[0]["output"], 2);
        assert_eq!(out[0]["x"], 1);
        assert_eq!(out[1]["lastRunningStatus"], Value::Null);
        assert_eq!(out[1]["cost"], 0);
    }
}
