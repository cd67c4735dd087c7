//! A run's JSON values as the statements that accept runs bind them (see [`RunJson`]), and a
//! finished run's step records as the one array of its `runs.steps`.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::journal::StepRecord;
use crate::storable;
use crate::store::{status_text, Executed, NewRun, INLINE_RECORDS_MAX};

/// A run's JSON values as the accepting statement binds them: serialized once, NULs replaced
/// (see `storable`), by whoever submits the run, so that the one writer storing a batch only
/// binds text. The columns are `json`, whose text PostgreSQL checks and keeps (migration
/// `runs_json_text`).
#[derive(Debug, Clone, Default)]
pub struct RunJson {
    pub(crate) input: String,
    pub(crate) response: Option<String>,
    /// A finished run's step records, when they fit in its row ([`INLINE_RECORDS_MAX`]).
    pub(crate) steps: Option<String>,
    /// The JSON bytes of step records too large for the row, stored as `run_steps` rows.
    outside: usize,
}

impl RunJson {
    /// The JSON of `run`, and of how it ended when it was `executed` in place.
    pub fn new(run: &NewRun, executed: Option<&Executed>) -> RunJson {
        let mut json =
            RunJson { input: json_text(&*storable::json(&run.input)), ..RunJson::default() };
        if let Some(done) = executed {
            json.response = done.end.response.as_ref().map(|r| json_text(&*storable::json(r)));
            json.steps = bounded_json_text(&InlineSteps(&done.records), INLINE_RECORDS_MAX);
            if json.steps.is_none() {
                json.outside = storable::records_len(&done.records);
            }
        }
        json
    }

    /// What [`RunJson::bytes`] of the same run would be, counted without building the text
    /// (and before NULs are replaced, so a few bytes off where there are any): for a caller on
    /// a latency path that serializes later, off it.
    pub fn measure(run: &NewRun, executed: Option<&Executed>) -> usize {
        let mut bytes = storable::json_len(&run.input);
        if let Some(done) = executed {
            bytes += done.end.response.as_ref().map_or(0, storable::json_len);
            bytes += storable::json_len(&InlineSteps(&done.records));
        }
        bytes
    }

    /// About how many bytes of parameters the run adds to the statements that store it.
    pub fn bytes(&self) -> usize {
        self.input.len()
            + self.response.as_ref().map_or(0, String::len)
            + self.steps.as_ref().map_or(0, String::len)
            + self.outside
    }
}

/// `value` as JSON text. A `Value` or a record always serializes.
fn json_text(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// `value` as JSON text, or `None` once the text would pass `max` bytes (without building
/// more of it than that).
fn bounded_json_text(value: &impl Serialize, max: usize) -> Option<String> {
    struct Bounded(Vec<u8>, usize);
    impl std::io::Write for Bounded {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.0.len() + buf.len() > self.1 {
                return Err(std::io::ErrorKind::FileTooLarge.into());
            }
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Bounded(Vec::new(), max);
    serde_json::to_writer(&mut out, value).ok()?;
    // serde_json writes UTF-8 only.
    String::from_utf8(out.0).ok()
}

/// A finished run's step records as the one JSON array of its `runs.steps`, in the fields
/// and forms the `run_records` view reads back; NULs replaced, times to the microsecond that
/// PostgreSQL keeps.
pub(crate) struct InlineSteps<'a>(&'a [StepRecord]);

impl Serialize for InlineSteps<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|r| InlineStep {
            step_key: &r.step_key,
            step_id: &r.step_id,
            seq: r.seq,
            status: status_text(r.status),
            attempt: r.attempt,
            cost_ms: r.cost_ms,
            input: storable::json(&r.input),
            output: storable::json(&r.output),
            error: r.error.as_deref().map(storable::text),
            started_at: r.started_at,
        }))
    }
}

#[derive(Serialize)]
struct InlineStep<'a> {
    step_key: &'a str,
    step_id: &'a str,
    seq: i32,
    status: &'static str,
    attempt: i32,
    cost_ms: i64,
    input: Cow<'a, Value>,
    output: Cow<'a, Value>,
    error: Option<Cow<'a, str>>,
    #[serde(serialize_with = "micros")]
    started_at: DateTime<Utc>,
}

fn micros<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    // chrono's RFC 3339 writer; a `format` string is parsed again on every call.
    serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::journal::StepStatus;
    use crate::store::RunEnd;

    fn record(output: Value) -> StepRecord {
        StepRecord {
            step_key: "s".into(),
            step_id: "s".into(),
            seq: 1,
            status: StepStatus::Success,
            attempt: 1,
            cost_ms: 0,
            input: json!({}),
            output,
            error: None,
            started_at: DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap(),
        }
    }

    fn run(input: Value) -> NewRun {
        NewRun {
            id: Uuid::now_v7(),
            project_id: "p".into(),
            flow_id: Uuid::now_v7(),
            flow_version: 1,
            flow_name: "f".into(),
            run_model: "manual".into(),
            input,
            start_time: Utc::now(),
        }
    }

    fn executed(records: Vec<StepRecord>) -> Executed {
        let end = RunEnd { run_id: Uuid::nil(), success: true, message: None, response: None };
        Executed { end, end_time: Utc::now(), records }
    }

    #[test]
    fn a_runs_json_is_text_without_nul_and_its_records_are_bounded() {
        let done = executed(vec![record(json!({"a\u{0}": "b\u{0}"}))]);
        let json = RunJson::new(&run(json!({"n": "\u{0}"})), Some(&done));
        assert_eq!(json.input, "{\"n\":\"\u{FFFD}\"}");
        let steps = json.steps.as_deref().unwrap();
        assert!(steps.contains("\"output\":{\"a\u{FFFD}\":\"b\u{FFFD}\"}"), "{steps}");
        assert!(steps.contains(r#""started_at":"2023-11-14T22:13:20.123456Z""#), "{steps}");
        assert_eq!(json.outside, 0);
        assert_eq!(json.bytes(), json.input.len() + steps.len());

        let plain = (run(json!({"n": 1})), executed(vec![record(json!({"a": [1, "b"]}))]));
        let counted = RunJson::measure(&plain.0, Some(&plain.1));
        assert_eq!(counted, RunJson::new(&plain.0, Some(&plain.1)).bytes());

        let queued = RunJson::new(&run(json!(1)), None);
        assert_eq!((queued.input.as_str(), queued.steps, queued.response), ("1", None, None));

        // Records past the bound are measured, not kept.
        let big = executed(vec![record(json!("x".repeat(100)))]);
        assert!(bounded_json_text(&InlineSteps(&big.records), 50).is_none());
        assert_eq!(bounded_json_text(&json!([1, 2]), 5).as_deref(), Some("[1,2]"));
        assert!(bounded_json_text(&json!([1, 2]), 4).is_none());
    }
}
