//! The activity routes: request records, their statistics, and the requests in flight.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use llamactl_api::activity::{ActivityGroupBy, ActivityPage, ActivityStatsResponse, InflightRequest};
use llamactl_core::db::ActivityQuery;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use super::extract::{Path, Query};
use super::wire::{activity_record, activity_stats_group};
use crate::state::AppState;

/// Most records in one page.
const MAX_LIMIT: u32 = 1000;

/// Filters of `GET /api/v1/activity`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ActivityParams {
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only records older than this id (the previous page's `next_before_id`).
    pub before_id: Option<i64>,
    /// Only this instance's.
    pub instance: Option<String>,
    /// Only this key's: its name, or its numeric id.
    pub key: Option<String>,
    /// Only answers with this HTTP status.
    pub status: Option<u16>,
    /// Only requests that arrived at or after this time (RFC 3339).
    pub since: Option<String>,
}

fn since_of(since: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    since
        .map(|text| {
            DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|e| {
                ApiError::bad_request("invalid_query", format!("since: {text:?} is not an RFC 3339 time ({e})"))
            })
        })
        .transpose()
}

/// List request records
///
/// `GET /api/v1/activity`: one record per proxied request, newest first.
#[utoipa::path(get, path = "/api/v1/activity", tag = "Activity", operation_id = "listActivity",
    params(ActivityParams),
    responses(
        (status = 200, description = "A page of records, newest first", body = ActivityPage),
        (status = 400, description = "Invalid query (names the parameter)", body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<ActivityParams>,
) -> Result<Json<ActivityPage>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", format!("limit: {limit} is not between 1 and {MAX_LIMIT}")));
    }
    let (key_id, key_name) = match params.key {
        Some(key) => match key.parse::<i64>() {
            Ok(id) => (Some(id), None),
            Err(_) => (None, Some(key)),
        },
        None => (None, None),
    };
    let query = ActivityQuery {
        limit,
        before_id: params.before_id,
        instance: params.instance,
        key_id,
        key_name,
        status: params.status,
        since: since_of(params.since.as_deref())?,
    };
    let records = state.history.activity(&query).await?;
    let next_before_id = if records.len() == limit as usize { records.last().map(|r| r.id) } else { None };
    Ok(Json(ActivityPage { items: records.iter().map(activity_record).collect(), next_before_id }))
}

/// Parameters of `GET /api/v1/activity/stats`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct StatsParams {
    /// Only requests that arrived at or after this time (RFC 3339).
    pub since: Option<String>,
    /// `instance` (default), `model` or `key`.
    pub group_by: Option<String>,
}

/// Summarise request records
///
/// `GET /api/v1/activity/stats`: per instance, model or key: requests, errors, tokens, and
/// percentiles of duration, time to first byte and generation speed.
#[utoipa::path(get, path = "/api/v1/activity/stats", tag = "Activity", operation_id = "activityStats",
    params(StatsParams),
    responses(
        (status = 200, description = "One entry per group", body = ActivityStatsResponse),
        (status = 400, description = "Invalid query (names the parameter)", body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn stats(
    State(state): State<AppState>,
    Query(params): Query<StatsParams>,
) -> Result<Json<ActivityStatsResponse>, ApiError> {
    let group_by = match params.group_by.as_deref() {
        None => ActivityGroupBy::Instance,
        Some(text) => text.parse().map_err(|_| {
            ApiError::bad_request("invalid_query", format!("group_by: {text:?} is not instance, model or key"))
        })?,
    };
    let since = since_of(params.since.as_deref())?;
    let groups = state.history.activity_stats(since, group_by).await?;
    Ok(Json(ActivityStatsResponse { group_by, since, groups: groups.into_iter().map(activity_stats_group).collect() }))
}

/// List requests in flight
///
/// `GET /api/v1/inflight`: requests being answered or waiting for their instance to start,
/// oldest first (empty when `activity.enabled` is false).
#[utoipa::path(get, path = "/api/v1/inflight", tag = "Activity", operation_id = "listInflight",
    responses((status = 200, description = "Requests in flight, oldest first", body = Vec<InflightRequest>)),
    security(("management_key" = [])))]
pub async fn inflight(State(state): State<AppState>) -> Json<Vec<InflightRequest>> {
    let Some(activity) = &state.activity else { return Json(Vec::new()) };
    let list = activity
        .in_flight()
        .into_iter()
        .map(|track| {
            let details = track.details();
            let position = details
                .instance
                .as_deref()
                .and_then(|instance| state.proxy.queue().position_of(instance, track.id as u64));
            let instance_status =
                details.instance.as_deref().and_then(|i| state.manager.get(i).ok()).map(|i| i.status());
            InflightRequest {
                id: track.id,
                instance: details.instance,
                model: details.model,
                key_name: details.key_name,
                path: track.path.clone(),
                since: track.at,
                state: track.stage().shown(position.is_some()),
                position,
                instance_status,
                bytes_sent: track.bytes_sent(),
            }
        })
        .collect();
    Json(list)
}

/// Cancel a request in flight
///
/// `POST /api/v1/inflight/{id}/cancel`: ends the request: a waiting one is answered 503
/// `cancelled`, a streaming one's stream ends for the client and its backend connection is
/// closed.
#[utoipa::path(post, path = "/api/v1/inflight/{id}/cancel", tag = "Activity", operation_id = "cancelInflight",
    params(("id" = i64, Path, description = "The request's id")),
    responses(
        (status = 204, description = "Cancelled"),
        (status = 404, description = "Not in flight", body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn cancel(State(state): State<AppState>, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    match &state.activity {
        Some(activity) if activity.cancel(id) => Ok(StatusCode::NO_CONTENT),
        _ => Err(ApiError::not_found(format!("request {id} is not in flight"))),
    }
}
