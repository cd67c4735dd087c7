//! Automatic triggers: schedules that fire flows.
//!
//! FIXME: nothing fires yet; schedule triggers are accepted in flow definitions but never run.
//! Lifting it needs the fire-time table and the claim loop described in docs/ARCHITECTURE.md.
