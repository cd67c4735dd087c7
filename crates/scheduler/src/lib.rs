//! Automatic triggers: schedules that fire flows.
//!
//! * [`Schedule`] is the trigger connector; its config is parsed into a [`ScheduleSpec`]
//!   (validated when a flow is saved) and [`next_fire`] computes fire times in the schedule's
//!   zone with one DST rule.
//! * [`start`] runs the scheduler loop of a process, which turns due fire times into queued
//!   runs exactly once across any number of processes.
//!
//! The engine's flows service arms and disarms schedules (`workbench_engine::schedules`); this
//! crate depends on the engine, never the other way round. `docs/schedules.md` is the guide.

mod connector;
mod runner;
pub mod spec;

use connector_api::Registry;
use serde_json::Value;

pub use connector::{outputs, Schedule, FIRE_TIME_KEY};
pub use runner::{start, SchedulerConfig};
pub use spec::{next_fire, upcoming, Misfire, ScheduleSpec, SpecError};

/// Adds the [`Schedule`] connector to a registry.
pub fn register(registry: &mut Registry) {
    registry.register(std::sync::Arc::new(Schedule::new()));
}

/// Parses a schedule as the flows service stored it: `{"operation", "config"}`.
pub fn stored_spec(stored: &Value) -> Result<ScheduleSpec, SpecError> {
    let operation = stored.get("operation").and_then(Value::as_str).unwrap_or_default();
    ScheduleSpec::parse(operation, stored.get("config").unwrap_or(&Value::Null))
}
