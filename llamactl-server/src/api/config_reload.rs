//! Reloading the configuration file over the API: plan (dry run) or apply, and the last reload.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use super::extract::Query;
use crate::declared::{Outcome, ReloadReport, Trigger};
use crate::state::AppState;

/// Query of `POST /api/v1/config/reload`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ReloadQuery {
    /// Only plan: read the file, say what would change, change nothing.
    pub dry_run: Option<bool>,
}

/// Reload the configuration file
///
/// `POST /api/v1/config/reload`: reads the configuration file again and plans, per declared
/// instance, `create`, `update_restart`, `update_no_restart`, `delete` or `unchanged`, and per
/// changed global setting whether it is applied now or needs a server restart; then applies
/// the plan, unless `dry_run=true`. An invalid file (YAML, unknown key, bad value, template
/// cycle) changes nothing: 400 naming the file, line and key.
#[utoipa::path(post, path = "/api/v1/config/reload", tag = "System", operation_id = "reloadConfig",
    params(ReloadQuery),
    responses(
        (status = 200, description = "The plan, and how applying it went", body = ReloadReport),
        (status = 400, description = "The configuration is invalid; nothing changed (invalid_config)", body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn reload(
    State(state): State<AppState>,
    Query(query): Query<ReloadQuery>,
) -> Result<Json<ReloadReport>, ApiError> {
    let report = state.reloader.reload(Trigger::Api, query.dry_run.unwrap_or(false)).await;
    match report.outcome {
        Outcome::Failed => Err(ApiError::bad_request("invalid_config", report.error.unwrap_or_default())),
        _ => Ok(Json(report)),
    }
}

/// Show the last reload
///
/// `GET /api/v1/config/reload`: the last reload (the start's reconciliation counts): its
/// plan and outcome.
#[utoipa::path(get, path = "/api/v1/config/reload", tag = "System", operation_id = "getLastReload",
    responses(
        (status = 200, description = "The last reload", body = ReloadReport),
        (status = 404, description = "No reload yet (not_found)", body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn last(State(state): State<AppState>) -> Result<Json<ReloadReport>, ApiError> {
    state.reloader.last().map(Json).ok_or_else(|| ApiError::not_found("no reload yet".to_owned()))
}
