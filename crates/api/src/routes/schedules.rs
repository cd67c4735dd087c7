//! Schedules (our extension): preview the next fire times of a scheduled flow.

use axum::extract::State;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use workbench_engine::flows;
use workbench_engine::schedule_store;
use workbench_engine::schedules::schedule_trigger;
use workbench_scheduler::{upcoming, ScheduleSpec};

use super::flows::{flow_error, flow_id};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Code};
use crate::extract::{Json, Path, Query};
use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(preview_schedule))
}

/// The most fire times one preview lists.
const MAX_COUNT: usize = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PreviewQuery {
    /// How many fire times, 1 to 100 (default 10).
    count: Option<String>,
    /// List fire times after this instant (RFC 3339); now when absent.
    after: Option<String>,
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The next fire times of a scheduled flow's latest version, in UTC and in its zone, and the
/// schedule as armed (null while the flow is disabled).
#[utoipa::path(get, path = "/v1/{project_id}/flows/{flow_id}/schedule/preview", tag = "schedules",
    params(("project_id" = String, Path), ("flow_id" = String, Path), PreviewQuery),
    responses((status = 200, description = "Upcoming fire times", body = Object)))]
async fn preview_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path((_project, id)): Path<(String, String)>,
    Query(query): Query<PreviewQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("mssi:flow:get", Code::NoPermission)?;
    let id = flow_id(&id, Code::FlowNotFound)?;
    let count = match query.count.as_deref().filter(|c| !c.is_empty()) {
        None => 10,
        Some(text) => {
            text.parse::<usize>().ok().filter(|n| (1..=MAX_COUNT).contains(n)).ok_or_else(|| {
                ApiError::with(Code::ParamInvalid, format!("count must be 1 to {MAX_COUNT}"))
            })?
        }
    };
    let after = match query.after.as_deref().filter(|a| !a.is_empty()) {
        None => Utc::now(),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|_| ApiError::with(Code::ParamInvalid, "after must be an RFC 3339 time"))?
            .with_timezone(&Utc),
    };

    let meta = flows::get(&state.db, &caller.project_id, id, None)
        .await
        .map_err(|e| flow_error(e, Code::FlowNotFound))?;
    let trigger = schedule_trigger(&meta).ok_or_else(|| {
        ApiError::with(Code::ParamInvalid, "the flow's trigger is not a schedule")
    })?;
    let spec = ScheduleSpec::parse(&trigger.operation, &trigger.config).map_err(|e| {
        ApiError::with(Code::ParamInvalid, format!("step `{}`: {e}", trigger.step_id))
    })?;
    let armed = schedule_store::find(&state.db, id).await?.map(|(status, version, next)| {
        json!({"state": status, "version": version, "next_fire_time": next.map(iso)})
    });

    let fire_times: Vec<Value> = upcoming(&spec, after, count)
        .into_iter()
        .map(|at| {
            let local = at.with_timezone(&spec.zone).to_rfc3339_opts(SecondsFormat::Secs, false);
            json!({"utc": iso(at), "local": local})
        })
        .collect();
    Ok(Json(json!({
        "flow_id": id,
        "version": meta.get("version").cloned().unwrap_or(Value::Null),
        "trigger": trigger.operation,
        "timezone": spec.zone.name(),
        "armed": armed,
        "fire_times": fire_times,
    })))
}
