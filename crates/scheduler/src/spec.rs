//! Schedule specifications: parsing a trigger step's `config` and computing fire times.
//!
//! Every shape is evaluated on the wall clock of its time zone and mapped to an instant by one
//! rule ([`resolve_local`]): a local time the clock skips (spring forward) fires once at the
//! first valid instant after it, a local time the clock repeats (fall back) fires once, at its
//! first occurrence. `croner` parses cron expressions and matches their fields; it only ever
//! sees wall-clock times, so the zone rule stays here.

use std::str::FromStr;

use chrono::format::{Item, StrftimeItems};
use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Utc,
};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde_json::{Map, Value};

/// Trigger operation ids, one per shape.
pub const OP_REPEAT: &str = "repeat";
pub const OP_DAILY: &str = "daily";
pub const OP_TIMES: &str = "times";
pub const OP_CRON: &str = "cron";

/// Upper bound of `misfire_max`.
pub const MISFIRE_MAX_LIMIT: u32 = 1000;

/// A schedule `config` that cannot work; the text says which key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

fn bad(message: impl Into<String>) -> SpecError {
    SpecError(message.into())
}

/// What happens to fire times that passed while no process was firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misfire {
    /// Drop them.
    Skip,
    /// Fire the latest of them once.
    Latest,
    /// Fire the most recent of them, at most this many.
    All(u32),
}

impl Misfire {
    /// The text stored with an armed schedule.
    pub fn as_str(self) -> &'static str {
        match self {
            Misfire::Skip => "skip",
            Misfire::Latest => "latest",
            Misfire::All(_) => "all",
        }
    }
}

/// When a schedule fires, without the zone.
#[derive(Debug, Clone)]
pub enum Shape {
    /// From `first` on, every `every`. Units of a day or more step the wall clock (a daily
    /// repeat keeps its local time across DST); shorter units step real time.
    Repeat { first: NaiveDateTime, every: Period },
    /// Once a day at each of these local times (sorted, distinct); `daily` has one.
    TimesOfDay(Vec<NaiveTime>),
    /// A cron expression over local wall-clock time.
    Cron(Box<Cron>),
}

/// A repeat period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Real time, in seconds.
    Seconds(i64),
    /// Calendar days on the wall clock.
    Days(i64),
}

/// A signed shift applied to the fire time for the `offset_*` outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shift {
    Seconds(i64),
    Days(i64),
}

/// A parsed, valid schedule.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    pub shape: Shape,
    pub zone: Tz,
    pub offset: Shift,
    pub misfire: Misfire,
    /// A strftime pattern for the `*_time` outputs; RFC 3339 when absent.
    pub time_format: Option<String>,
}

impl ScheduleSpec {
    /// Parses the `config` of a `Schedule` trigger step for trigger `operation`.
    pub fn parse(operation: &str, config: &Value) -> Result<ScheduleSpec, SpecError> {
        let empty = Map::new();
        let config = match config {
            Value::Object(map) => map,
            Value::Null => &empty,
            _ => return Err(bad("`config` must be an object")),
        };
        let zone = parse_zone(config.get("timezone"))?;
        let shape = match operation {
            OP_REPEAT => parse_repeat(config)?,
            OP_DAILY => {
                let time = required_str(config, "time")?;
                Shape::TimesOfDay(vec![parse_time("time", time)?])
            }
            OP_TIMES => parse_times(config)?,
            OP_CRON => Shape::Cron(Box::new(parse_cron(required_str(config, "expression")?)?)),
            other => {
                return Err(bad(format!(
                    "unknown schedule trigger `{other}`: use repeat, daily, times or cron"
                )))
            }
        };
        let spec = ScheduleSpec {
            shape,
            zone,
            offset: parse_offset(config)?,
            misfire: parse_misfire(config)?,
            time_format: parse_format(config.get("time_format"))?,
        };
        spec.check_fires()?;
        Ok(spec)
    }

    /// Refuses a schedule that never fires (a cron date that does not exist, such as 30
    /// February), so nothing is armed that would search forever.
    fn check_fires(&self) -> Result<(), SpecError> {
        if let Shape::Repeat { first, .. } = &self.shape {
            let fires = resolve_local(self.zone, *first).is_some_and(|at| within_years(self, at));
            if !fires {
                return Err(bad(format!(
                    "`config.first_run` {first} is past the last supported time, \
                     9999-12-31T23:59:59 (in UTC and in the zone)"
                )));
            }
        }
        let Shape::Cron(cron) = &self.shape else { return Ok(()) };
        // Every calendar date recurs within 28 years (the leap-year cycle, 2100 aside); a
        // search that finds nothing in 30 years from 2001 proves the date impossible.
        let start = NaiveDate::from_ymd_opt(2001, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
        let limit = NaiveDate::from_ymd_opt(2031, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
        let (Some(start), Some(limit)) = (start, limit) else { return Ok(()) };
        match cron.find_next_occurrence(&start, true) {
            Ok(found) if found < limit => Ok(()),
            _ => Err(bad(format!(
                "cron expression `{}` never fires (no date matches it)",
                cron.pattern.as_str()
            ))),
        }
    }
}

/// Whether `at` has a four-digit year both in UTC and on the schedule's wall clock: times are
/// written as ISO 8601, which needs a sign and a fifth digit past year 9999.
fn within_years(spec: &ScheduleSpec, at: DateTime<Utc>) -> bool {
    at.year() <= 9999 && at.with_timezone(&spec.zone).year() <= 9999
}

/// The first fire time strictly after `after`, or `None` when the schedule has ended (which
/// it does at the end of year 9999).
pub fn next_fire(spec: &ScheduleSpec, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    next_fire_unbounded(spec, after).filter(|at| within_years(spec, *at))
}

fn next_fire_unbounded(spec: &ScheduleSpec, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match &spec.shape {
        Shape::Repeat { first, every: Period::Seconds(secs) } => {
            let first = resolve_local(spec.zone, *first)?;
            if after < first {
                return Some(first);
            }
            let periods = (after - first).num_milliseconds() / (secs * 1000) + 1;
            let step = Duration::try_seconds(secs.checked_mul(periods)?)?;
            first.checked_add_signed(step)
        }
        Shape::Repeat { first, every: Period::Days(days) } => {
            next_on_wall_clock(spec.zone, after, |cursor| {
                if cursor < *first {
                    return Some(*first);
                }
                let elapsed = (cursor.date() - first.date()).num_days();
                let at = first.checked_add_signed(Duration::try_days(elapsed / days * days)?)?;
                if at > cursor {
                    Some(at)
                } else {
                    at.checked_add_signed(Duration::try_days(*days)?)
                }
            })
        }
        Shape::TimesOfDay(times) => next_on_wall_clock(spec.zone, after, |cursor| {
            let later = times.iter().find(|t| cursor.date().and_time(**t) > cursor);
            match later {
                Some(t) => Some(cursor.date().and_time(*t)),
                None => Some(cursor.date().succ_opt()?.and_time(times[0])),
            }
        }),
        Shape::Cron(cron) => next_on_wall_clock(spec.zone, after, |cursor| {
            cron.find_next_occurrence(&cursor, false).ok()
        }),
    }
}

/// The next `count` fire times after `after`.
pub fn upcoming(spec: &ScheduleSpec, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
    let mut out = Vec::with_capacity(count);
    let mut cursor = after;
    while out.len() < count {
        let Some(next) = next_fire(spec, cursor) else { break };
        out.push(next);
        cursor = next;
    }
    out
}

/// Walks wall-clock candidates (`next_local` gives the first candidate strictly after a local
/// time) until one maps to an instant after `after`. Several candidates can map to one
/// instant (a skipped hour) and a candidate can map before `after` (the repeated hour when
/// `after` lies in its second half); both are stepped over. The walk is bounded: one
/// repeated hour of a every-second schedule is 3600 steps.
fn next_on_wall_clock(
    zone: Tz,
    after: DateTime<Utc>,
    next_local: impl Fn(NaiveDateTime) -> Option<NaiveDateTime>,
) -> Option<DateTime<Utc>> {
    const MAX_STEPS: usize = 10_000;
    let mut cursor = after.with_timezone(&zone).naive_local();
    for _ in 0..MAX_STEPS {
        let candidate = next_local(cursor)?;
        let at = resolve_local(zone, candidate)?;
        if at > after {
            return Some(at);
        }
        cursor = candidate;
    }
    None
}

/// The instant of a wall-clock time in `zone`, by the schedule DST rule: a time in a fold
/// (it occurs twice) is its first occurrence; a time in a gap (it does not occur) is the first
/// valid instant after it, the moment the clock jumps.
pub fn resolve_local(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        LocalResult::None => gap_end(zone, local),
    }
}

/// The transition instant that skips `local`: the first instant whose wall clock is past it.
fn gap_end(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    // Read with the offset in force a day before, `local` lands after the jump; the jump lies
    // within the three days before that instant (the longest recorded gap is one day).
    let earlier = local.checked_sub_signed(Duration::days(1))?;
    let before = match zone.from_local_datetime(&earlier) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.offset().fix(),
        LocalResult::None => return None,
    };
    let mut hi = (local - Duration::seconds(i64::from(before.local_minus_utc()))).and_utc();
    let mut lo = hi - Duration::days(3);
    let past = |at: DateTime<Utc>| at.with_timezone(&zone).naive_local() > local;
    if !past(hi) || past(lo) {
        return None;
    }
    // Transitions fall on whole seconds: bisect to the first second that is past `local`.
    while (hi - lo).num_seconds() > 1 {
        let mid = lo + Duration::seconds((hi - lo).num_seconds() / 2);
        if past(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// The fire time shifted by the configured offset, by the same DST rule for day units.
// FIXME: an offset can still move a fire time of year 9999 past it, which `format_local` then
// writes with a five-digit year; lifting it needs a defined answer for such outputs (clamp or
// refuse the fire), which the contract does not give.
pub fn shifted(spec: &ScheduleSpec, fire: DateTime<Utc>) -> DateTime<Utc> {
    match spec.offset {
        Shift::Seconds(0) | Shift::Days(0) => fire,
        Shift::Seconds(s) => fire.checked_add_signed(Duration::seconds(s)).unwrap_or(fire),
        Shift::Days(d) => {
            let local = fire.with_timezone(&spec.zone).naive_local();
            local
                .checked_add_signed(Duration::days(d))
                .and_then(|l| resolve_local(spec.zone, l))
                .unwrap_or(fire)
        }
    }
}

/// `at` as text in the schedule's zone: the configured format, else RFC 3339.
pub fn format_local(spec: &ScheduleSpec, at: DateTime<Utc>) -> String {
    let local = at.with_timezone(&spec.zone);
    match &spec.time_format {
        Some(pattern) => local.format(pattern).to_string(),
        None => local.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

fn required_str<'a>(config: &'a Map<String, Value>, key: &str) -> Result<&'a str, SpecError> {
    match config.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim()),
        Some(_) => Err(bad(format!("`config.{key}` must be a non-empty string"))),
        None => Err(bad(format!("`config.{key}` is required"))),
    }
}

fn parse_zone(value: Option<&Value>) -> Result<Tz, SpecError> {
    match value {
        None | Some(Value::Null) => Ok(Tz::UTC),
        Some(Value::String(name)) => Tz::from_str(name.trim()).map_err(|_| {
            bad(format!("unknown time zone `{name}`: use an IANA name such as Europe/Berlin"))
        }),
        Some(_) => Err(bad("`config.timezone` must be an IANA time zone name")),
    }
}

fn parse_time(key: &str, text: &str) -> Result<NaiveTime, SpecError> {
    NaiveTime::parse_from_str(text, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M"))
        .map_err(|_| {
            bad(format!("`config.{key}` `{text}` is not a time of day (HH:MM or HH:MM:SS)"))
        })
}

fn parse_times(config: &Map<String, Value>) -> Result<Shape, SpecError> {
    let Some(Value::Array(items)) = config.get("times") else {
        return Err(bad("`config.times` must be an array of times of day (HH:MM)"));
    };
    if items.is_empty() || items.len() > 288 {
        return Err(bad("`config.times` must list 1 to 288 times of day"));
    }
    let mut times = Vec::with_capacity(items.len());
    for item in items {
        let Some(text) = item.as_str() else {
            return Err(bad("`config.times` must be an array of times of day (HH:MM)"));
        };
        times.push(parse_time("times", text.trim())?);
    }
    times.sort();
    times.dedup();
    Ok(Shape::TimesOfDay(times))
}

fn parse_repeat(config: &Map<String, Value>) -> Result<Shape, SpecError> {
    let text = required_str(config, "first_run")?;
    let first = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .ok_or_else(|| {
            bad(format!(
                "`config.first_run` `{text}` is not a local date and time (YYYY-MM-DDTHH:MM:SS, \
                 read in `config.timezone`)"
            ))
        })?;
    let every = match config.get("every") {
        Some(v) => v
            .as_i64()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad(format!("`config.every` must be a positive integer, got {v}")))?,
        None => return Err(bad("`config.every` is required")),
    };
    let unit = match config.get("unit") {
        None => "minute",
        Some(Value::String(u)) => u.as_str(),
        Some(_) => return Err(bad("`config.unit` must be a string")),
    };
    let too_big = || bad(format!("`config.every` {every} {unit}s is too long"));
    let seconds = |factor: i64| every.checked_mul(factor).filter(|s| *s <= 3_153_600_000);
    let period = match unit {
        "second" => Period::Seconds(seconds(1).ok_or_else(too_big)?),
        "minute" => Period::Seconds(seconds(60).ok_or_else(too_big)?),
        "hour" => Period::Seconds(seconds(3600).ok_or_else(too_big)?),
        "day" => Period::Days(Some(every).filter(|d| *d <= 36_500).ok_or_else(too_big)?),
        "week" => Period::Days(every.checked_mul(7).filter(|d| *d <= 36_500).ok_or_else(too_big)?),
        other => {
            return Err(bad(format!(
                "`config.unit` `{other}` is not one of second, minute, hour, day, week"
            )))
        }
    };
    Ok(Shape::Repeat { first, every: period })
}

/// Five fields (minute hour day month weekday) or six with seconds first; a seventh (year)
/// field is refused rather than guessed at, since six fields could then mean either.
fn parse_cron(expression: &str) -> Result<Cron, SpecError> {
    let fields = expression.split_whitespace().count();
    if !expression.starts_with('@') && !(5..=6).contains(&fields) {
        return Err(bad(format!(
            "cron expression `{expression}` has {fields} fields: use 5 (minute hour day month \
             weekday) or 6 (second minute hour day month weekday)"
        )));
    }
    let parser = CronParser::builder().seconds(Seconds::Optional).year(Year::Disallowed).build();
    parser
        .parse(expression)
        .map_err(|e| bad(format!("cron expression `{expression}` is invalid: {e}")))
}

/// The largest `config.offset`, in its unit.
const MAX_OFFSET: i64 = 100_000;

fn parse_offset(config: &Map<String, Value>) -> Result<Shift, SpecError> {
    let amount = match config.get("offset") {
        None | Some(Value::Null) => return Ok(Shift::Seconds(0)),
        Some(v) => v.as_i64().filter(|n| n.abs() <= MAX_OFFSET).ok_or_else(|| {
            bad(format!(
                "`config.offset` must be an integer from -{MAX_OFFSET} to {MAX_OFFSET}, \
                     got {v}"
            ))
        })?,
    };
    let unit = match config.get("offset_unit") {
        None | Some(Value::Null) => "minute",
        Some(Value::String(u)) => u.as_str(),
        Some(_) => return Err(bad("`config.offset_unit` must be a string")),
    };
    match unit {
        "second" => Ok(Shift::Seconds(amount)),
        "minute" => Ok(Shift::Seconds(amount * 60)),
        "hour" => Ok(Shift::Seconds(amount * 3600)),
        "day" => Ok(Shift::Days(amount)),
        other => Err(bad(format!(
            "`config.offset_unit` `{other}` is not one of second, minute, hour, day"
        ))),
    }
}

fn parse_misfire(config: &Map<String, Value>) -> Result<Misfire, SpecError> {
    let policy = match config.get("misfire") {
        None | Some(Value::Null) => "latest",
        Some(Value::String(p)) => p.as_str(),
        Some(_) => return Err(bad("`config.misfire` must be skip, latest or all")),
    };
    match policy {
        "skip" => Ok(Misfire::Skip),
        "latest" => Ok(Misfire::Latest),
        "all" => {
            let max = match config.get("misfire_max") {
                None | Some(Value::Null) => 10,
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| (1..=MISFIRE_MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        bad(format!(
                            "`config.misfire_max` must be an integer from 1 to \
                             {MISFIRE_MAX_LIMIT}, got {v}"
                        ))
                    })?,
            };
            Ok(Misfire::All(max))
        }
        other => Err(bad(format!("`config.misfire` `{other}` is not one of skip, latest, all"))),
    }
}

fn parse_format(value: Option<&Value>) -> Result<Option<String>, SpecError> {
    let pattern = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(p)) if !p.is_empty() => p,
        Some(_) => return Err(bad("`config.time_format` must be a non-empty strftime pattern")),
    };
    if StrftimeItems::new(pattern).any(|item| matches!(item, Item::Error)) {
        return Err(bad(format!(
            "`config.time_format` `{pattern}` is not a valid strftime pattern"
        )));
    }
    Ok(Some(pattern.clone()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn fires(op: &str, config: &Value, from: &str, to: &str) -> Vec<String> {
        let spec = ScheduleSpec::parse(op, config).unwrap();
        let (from, to) = (utc(from), utc(to));
        upcoming(&spec, from, 1000)
            .into_iter()
            .take_while(|t| *t < to)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .collect()
    }

    #[test]
    fn berlin_daily_0230_fires_once_on_both_dst_days() {
        let config = json!({"time": "02:30", "timezone": "Europe/Berlin"});
        // Spring forward: 02:30 does not exist; it fires when the clock jumps to 03:00 CEST.
        let spring = fires(OP_DAILY, &config, "2027-03-27T00:00:00Z", "2027-03-29T00:00:00Z");
        assert_eq!(spring, ["2027-03-27T01:30:00Z", "2027-03-28T01:00:00Z"]);
        // Fall back: 02:30 occurs twice; only the first (CEST) occurrence fires.
        let fall = fires(OP_DAILY, &config, "2027-10-30T00:00:00Z", "2027-11-01T00:00:00Z");
        assert_eq!(fall, ["2027-10-30T00:30:00Z", "2027-10-31T00:30:00Z"]);
    }

    #[test]
    fn new_york_cron_follows_the_same_rule() {
        let config = json!({"expression": "30 2 * * *", "timezone": "America/New_York"});
        let spring = fires(OP_CRON, &config, "2027-03-13T00:00:00Z", "2027-03-15T00:00:00Z");
        // 2027-03-14 02:30 EST does not exist; the clock jumps at 07:00 UTC.
        assert_eq!(spring, ["2027-03-13T07:30:00Z", "2027-03-14T07:00:00Z"]);
        let config = json!({"expression": "30 1 * * *", "timezone": "America/New_York"});
        let fall = fires(OP_CRON, &config, "2027-11-06T00:00:00Z", "2027-11-08T00:00:00Z");
        // 01:30 occurs twice on 2027-11-07; the EDT one (05:30 UTC) fires.
        assert_eq!(fall, ["2027-11-06T05:30:00Z", "2027-11-07T05:30:00Z"]);
    }

    #[test]
    fn starting_inside_the_repeated_hour_does_not_fire_it_again() {
        let config = json!({"time": "02:30", "timezone": "Europe/Berlin"});
        let spec = ScheduleSpec::parse(OP_DAILY, &config).unwrap();
        // 01:00 UTC is 02:00 CET, the second pass through 02:xx.
        let next = next_fire(&spec, utc("2027-10-31T01:00:00Z")).unwrap();
        assert_eq!(next, utc("2027-11-01T01:30:00Z"));
    }

    #[test]
    fn sub_hourly_cron_collapses_the_skipped_hour() {
        let config = json!({"expression": "*/20 * * * *", "timezone": "Europe/Berlin"});
        let got = fires(OP_CRON, &config, "2027-03-28T00:30:00Z", "2027-03-28T01:30:00Z");
        assert_eq!(got, ["2027-03-28T00:40:00Z", "2027-03-28T01:00:00Z", "2027-03-28T01:20:00Z"]);
    }

    #[test]
    fn repeat_steps_real_time_below_a_day_and_the_wall_clock_above() {
        let every = json!({"first_run": "2027-01-01T00:00:00", "every": 90, "unit": "second"});
        let got = fires(OP_REPEAT, &every, "2027-01-01T00:00:00Z", "2027-01-01T00:04:00Z");
        assert_eq!(got, ["2027-01-01T00:01:30Z", "2027-01-01T00:03:00Z"]);
        let daily = json!({"first_run": "2027-03-27T09:00", "every": 1, "unit": "day",
            "timezone": "Europe/Berlin"});
        let got = fires(OP_REPEAT, &daily, "2027-03-26T00:00:00Z", "2027-03-29T00:00:00Z");
        assert_eq!(got, ["2027-03-27T08:00:00Z", "2027-03-28T07:00:00Z"]);
    }

    #[test]
    fn several_times_of_day() {
        let config = json!({"times": ["18:00", "08:15", "08:15"], "timezone": "Asia/Shanghai"});
        let got = fires(OP_TIMES, &config, "2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z");
        assert_eq!(got, ["2027-01-01T00:15:00Z", "2027-01-01T10:00:00Z"]);
    }

    #[test]
    fn six_fields_put_seconds_first() {
        let config = json!({"expression": "*/15 * * * * *"});
        let got = fires(OP_CRON, &config, "2027-01-01T00:00:00Z", "2027-01-01T00:01:00Z");
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn impossible_schedules_are_refused() {
        let cases = [
            (OP_CRON, json!({"expression": "0 0 30 2 *"}), "never fires"),
            (OP_CRON, json!({"expression": "0 0 0 1 1 * 2030"}), "has 7 fields"),
            (OP_CRON, json!({"expression": "61 * * * *"}), "is invalid"),
            (OP_DAILY, json!({"time": "25:00"}), "not a time of day"),
            (OP_DAILY, json!({"time": "02:30", "timezone": "Mars/Olympus"}), "unknown time zone"),
            (OP_REPEAT, json!({"first_run": "2027-01-01T00:00", "every": 0}), "positive integer"),
            (OP_TIMES, json!({"times": []}), "1 to 288"),
            (OP_DAILY, json!({"time": "02:30", "misfire": "often"}), "misfire"),
            (
                OP_DAILY,
                json!({"time": "02:30", "offset": 100_000_000_000_i64}),
                "-100000 to 100000",
            ),
            (
                OP_REPEAT,
                json!({"first_run": "9999-12-31T23:59:59", "every": 1,
                       "timezone": "America/New_York"}),
                "past the last supported time",
            ),
        ];
        for (op, config, expected) in cases {
            let err = ScheduleSpec::parse(op, &config).unwrap_err();
            assert!(err.0.contains(expected), "{config}: {err}");
        }
        assert!(ScheduleSpec::parse(OP_CRON, &json!({"expression": "0 0 29 2 *"})).is_ok());
    }

    /// The preview used to go on into year 10000 (`+10000-01-07T23:59:59Z`).
    #[test]
    fn schedules_end_with_year_9999() {
        let config = json!({"first_run": "9999-12-31T23:59:59", "every": 1, "unit": "week"});
        let spec = ScheduleSpec::parse(OP_REPEAT, &config).unwrap();
        assert_eq!(upcoming(&spec, utc("9999-01-01T00:00:00Z"), 10).len(), 1);
        let daily = ScheduleSpec::parse(OP_DAILY, &json!({"time": "12:00"})).unwrap();
        assert_eq!(next_fire(&daily, utc("9999-12-31T12:00:00Z")), None);
    }

    #[test]
    fn offset_in_days_keeps_the_local_time() {
        let config = json!({"time": "09:00", "timezone": "Europe/Berlin", "offset": -1,
            "offset_unit": "day", "time_format": "%Y-%m-%d %H:%M"});
        let spec = ScheduleSpec::parse(OP_DAILY, &config).unwrap();
        let fire = next_fire(&spec, utc("2027-03-28T00:00:00Z")).unwrap();
        assert_eq!(format_local(&spec, fire), "2027-03-28 09:00");
        assert_eq!(format_local(&spec, shifted(&spec, fire)), "2027-03-27 09:00");
    }
}
