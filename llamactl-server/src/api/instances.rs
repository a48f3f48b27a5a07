//! Instances: definitions (create, read, replace, delete) and lifecycle (start, stop, restart),
//! with the Go llamactl's paths and JSON.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use llamactl_core::{InstanceName, InstanceOptions};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::Path;
use super::extract::Query;
use super::extract::check_json_content_type;
use super::wire::{event_response, instance_response, instance_view_response};
use crate::api::body::read_body;
use crate::declared::templates::{origins_of_merged, resolve};
use crate::state::AppState;
pub use llamactl_api::types::{EventResponse, InstanceResponse};

/// Documentation of the options body (the handlers parse it with llamactl-core, which names
/// the field of any error).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct InstanceOptionsSchema {
    /// Which server runs the instance.
    backend_type: BackendTypeSchema,
    /// The backend's flags in snake_case (`ctx_size`, or the short `c`), plus `extra_args`.
    #[schema(value_type = Option<Object>)]
    backend_options: Option<Value>,
    /// Restart after an unexpected exit.
    auto_restart: Option<bool>,
    /// Consecutive automatic restarts before giving up.
    #[schema(minimum = 0)]
    max_restarts: Option<u32>,
    /// First restart delay: seconds, or a string such as "500ms".
    restart_delay: Option<DurationSchema>,
    /// Start when a request needs it.
    on_demand_start: Option<bool>,
    /// Idle time before a stop: minutes, or a string such as "45s"; 0 pins the instance.
    idle_timeout: Option<DurationSchema>,
    /// Time allowed to become ready: seconds, or a string such as "10m".
    startup_timeout: Option<DurationSchema>,
    /// Environment variables of the backend.
    environment: Option<std::collections::BTreeMap<String, String>>,
    /// Program to run instead of the configured one.
    command_override: Option<String>,
    /// Group, for per-group running limits.
    group: Option<String>,
    /// Run as a Docker container.
    docker_enabled: Option<bool>,
    /// Nodes the instance is assigned to.
    nodes: Option<Vec<String>>,
    /// llama.cpp router presets.
    preset_ini: Option<String>,
}

/// Backend types.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum BackendTypeSchema {
    /// llama.cpp's llama-server.
    LlamaCpp,
    /// mlx_lm.server.
    MlxLm,
    /// vllm serve.
    Vllm,
    /// Any OpenAI-compatible server.
    Custom,
}

/// A duration: a whole number in the field's unit, or a string with a unit (ms, s, m, h).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum DurationSchema {
    /// In the field's unit.
    Count(u64),
    /// With a unit, e.g. "30s".
    Text(String),
}

/// The instance name of a route's path, checked on every route that takes one: an invalid name
/// is 400 `invalid_name` (it could never exist), a valid unknown one 404. The message never
/// holds a control character raw ([`llamactl_core::NameError`] shows characters escaped).
pub(crate) fn instance_name(name: &str) -> Result<InstanceName, ApiError> {
    name.parse::<InstanceName>().map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))
}

/// The 400 of a route taking an instance name, in the API documentation.
pub(crate) const INVALID_NAME: &str =
    "Invalid instance name (invalid_name): not 1-50 of a-z A-Z 0-9 . _ -, or \".\" or \"..\"";

/// The 404 of a route taking an instance name, in the API documentation.
pub(crate) const NO_SUCH_INSTANCE: &str = "No instance has this name (not_found)";

/// The 415 of a route reading instance options, in the API documentation.
const UNSUPPORTED_TYPE: &str = "The Content-Type names another format than JSON (unsupported_media_type)";

/// How the options body is read, in the API documentation.
const OPTIONS_BODY: &str = "Instance options, the Go llamactl's JSON. The body is read as JSON whatever its \
    Content-Type (as the Go llamactl does): none, a JSON type (application/json, +json) and the generic \
    application/x-www-form-urlencoded (curl -d), text/plain and application/octet-stream are accepted; \
    any other type (multipart/form-data, XML, ...) is refused with 415.";

/// Options from a request body: JSON, known fields only, valid; errors name the field. With
/// `extends`, merged over the configured templates as they are now.
pub(crate) fn options_from_body(state: &AppState, name: &str, body: &[u8]) -> Result<InstanceOptions, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}")))?;
    if value.get("declared_in").is_some_and(|v| !v.is_null()) {
        return Err(ApiError {
            field: Some("declared_in".into()),
            ..ApiError::bad_request(
                "invalid_options",
                "declared_in: set by llamactl for instances declared in its configuration; leave it out",
            )
        });
    }
    let value = match value.get("extends") {
        Some(extends) if !extends.is_null() => {
            let templates = &state.reloader.config().templates;
            resolve(templates, name, &value)
                .map_err(|e| ApiError {
                    field: Some("extends".into()),
                    ..ApiError::bad_request("invalid_options", e.to_string())
                })?
                .value
        }
        _ => value,
    };
    let options = InstanceOptions::from_json_value(&value)?;
    options.reject_unknown_fields()?;
    options.validate()?;
    Ok(options)
}

/// A declared instance's definition belongs to its file: 409 naming it.
fn refuse_if_declared(state: &AppState, name: &str) -> Result<(), ApiError> {
    let info = state.manager.get(name)?;
    match info.state.options.as_ref().ok().and_then(|o| o.declared_in.clone()) {
        Some(file) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "declared",
            format!(
                "instance {name} is declared in {file}: change it there, then reload the configuration (POST /api/v1/config/reload or SIGHUP)"
            ),
        )),
        None => Ok(()),
    }
}

/// List the instances
///
/// `GET /api/v1/instances`: every instance, in name order, with its status.
#[utoipa::path(get, path = "/api/v1/instances", tag = "Instances", operation_id = "listInstances",
    responses((status = 200, description = "The instances, in name order", body = Vec<InstanceResponse>)),
    security(("management_key" = [])))]
pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let body = Body::from_stream(list_pieces(state.manager.clone()));
    Ok(([(CONTENT_TYPE, "application/json")], body).into_response())
}

/// Instances per piece of a listing's body.
const LIST_PAGE: usize = 128;

/// Where a listing's body is: after which instance it goes on, or done.
enum ListCursor {
    Next { after: Option<String> },
    Done,
}

/// A listing's body, one page of instances at a time (name order), each written only when the
/// client is ready for it: listing 10,000 instances holds one 64 KB piece, not a 5 MB body
/// that the allocator would keep after it is sent.
fn list_pieces(manager: llamactl_core::Manager) -> impl futures::Stream<Item = Result<Vec<u8>, serde_json::Error>> {
    futures::stream::unfold(ListCursor::Next { after: None }, move |cursor| {
        let ListCursor::Next { after } = cursor else { return std::future::ready(None) };
        let mut piece = Vec::with_capacity(512 * LIST_PAGE + 2);
        let mut last: Option<String> = None;
        let mut failed = None;
        let count = manager
            .map_instances_after(after.as_deref(), LIST_PAGE, |view| {
                let first = after.is_none() && last.is_none();
                piece.push(if first { b'[' } else { b',' });
                if let Err(error) = serde_json::to_writer(&mut piece, &instance_view_response(view)) {
                    failed.get_or_insert(error);
                }
                last = Some(view.name.to_string());
            })
            .len();
        let item = match failed {
            Some(error) => (Err(error), ListCursor::Done),
            None if count < LIST_PAGE => {
                if after.is_none() && count == 0 {
                    piece.push(b'[');
                }
                piece.push(b']');
                (Ok(piece), ListCursor::Done)
            }
            None => (Ok(piece), ListCursor::Next { after: last }),
        };
        std::future::ready(Some(item))
    })
}

/// Get an instance
///
/// `GET /api/v1/instances/{name}`: its options, status, port and restart count.
#[utoipa::path(get, path = "/api/v1/instances/{name}", tag = "Instances", operation_id = "getInstance",
    params(("name" = String, Path, description = "Instance name"), GetQuery),
    responses(
        (status = 200, description = "The instance", body = InstanceResponse),
        (status = 400, description = INVALID_NAME, body = ErrorBody),
        (status = 404, description = NO_SUCH_INSTANCE, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<GetQuery>,
) -> Result<Json<InstanceResponse>, ApiError> {
    let name = instance_name(&name)?;
    let mut response = instance_response(&state.manager.get(name.as_str())?);
    if query.effective.unwrap_or(false) {
        let options = response.options.as_ref().and_then(|o| serde_json::to_value(o).ok()).unwrap_or_default();
        let origins = match state.reloader.declared_origins(name.as_str()) {
            Some(origins) => origins,
            None => origins_of_merged(&state.reloader.config().templates, name.as_str(), &options),
        };
        response.origins = Some(origins);
    }
    Ok(Json(response))
}

/// Query of `GET /api/v1/instances/{name}`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct GetQuery {
    /// Also say where each option came from (`origins`: a template, or `instance`): for a
    /// declared instance as its file says; for one created over the API with `extends`, a
    /// value equal to what its templates give now is credited to them. The options are always
    /// the effective, merged ones.
    pub effective: Option<bool>,
}

/// Create an instance
///
/// `POST /api/v1/instances/{name}`: creates a stopped instance with these options.
#[utoipa::path(post, path = "/api/v1/instances/{name}", tag = "Instances", operation_id = "createInstance",
    params(("name" = String, Path, description = "Instance name: 1-50 of a-z A-Z 0-9 . _ -")),
    request_body(content = InstanceOptionsSchema, description = OPTIONS_BODY),
    responses(
        (status = 201, description = "Created, stopped", body = InstanceResponse),
        (status = 400, description = "Invalid name (invalid_name) or options (invalid_json, invalid_options; the field is named)", body = ErrorBody),
        (status = 409, description = "Exists already, port pinned by another instance, or max_instances reached", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = UNSUPPORTED_TYPE, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<InstanceResponse>), ApiError> {
    let name = instance_name(&name)?;
    check_json_content_type(&headers)?;
    let body = read_body(body, state.proxy.max_body()).await?;
    let options = options_from_body(&state, name.as_str(), &body)?;
    let info = state.manager.create(name, options).await?;
    Ok((StatusCode::CREATED, Json(instance_response(&info))))
}

/// Replace an instance's options
///
/// `PUT /api/v1/instances/{name}`: replaces the options; a running instance restarts with them.
#[utoipa::path(put, path = "/api/v1/instances/{name}", tag = "Instances", operation_id = "updateInstance",
    params(("name" = String, Path, description = "Instance name")),
    request_body(content = InstanceOptionsSchema, description = OPTIONS_BODY),
    responses(
        (status = 200, description = "The instance with its new options", body = InstanceResponse),
        (status = 400, description = "Invalid name (invalid_name) or options (invalid_json, invalid_options; the field is named)", body = ErrorBody),
        (status = 404, description = NO_SUCH_INSTANCE, body = ErrorBody),
        (status = 409, description = "The new options pin a port another instance has (port_conflict), or the instance is declared in the configuration (declared)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = UNSUPPORTED_TYPE, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<InstanceResponse>, ApiError> {
    let name = instance_name(&name)?;
    check_json_content_type(&headers)?;
    refuse_if_declared(&state, name.as_str())?;
    let body = read_body(body, state.proxy.max_body()).await?;
    let options = options_from_body(&state, name.as_str(), &body)?;
    Ok(Json(instance_response(&state.manager.update(name.as_str(), options).await?)))
}

/// Delete an instance
///
/// `DELETE /api/v1/instances/{name}`: stops it if needed and deletes it.
#[utoipa::path(delete, path = "/api/v1/instances/{name}", tag = "Instances", operation_id = "deleteInstance",
    params(("name" = String, Path, description = "Instance name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = INVALID_NAME, body = ErrorBody),
        (status = 404, description = NO_SUCH_INSTANCE, body = ErrorBody),
        (status = 409, description = "The instance is declared in the configuration (declared)", body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn delete(State(state): State<AppState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    let name = instance_name(&name)?;
    refuse_if_declared(&state, name.as_str())?;
    state.manager.delete(name.as_str()).await?;
    state.auth.invalidate();
    // Its models' events go with it (a new instance of the same name starts a new log).
    if let Err(error) = state.model_events.delete_sub_model_events(name.as_str()).await {
        tracing::warn!(instance = %name, %error, "its models' events were not removed");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Start an instance
///
/// `POST /api/v1/instances/{name}/start`: starts it (status `starting`, then `running` once
/// ready).
#[utoipa::path(post, path = "/api/v1/instances/{name}/start", tag = "Instances", operation_id = "startInstance",
    params(("name" = String, Path, description = "Instance name")),
    responses(
        (status = 200, description = "The instance, starting or running", body = InstanceResponse),
        (status = 400, description = INVALID_NAME, body = ErrorBody),
        (status = 404, description = NO_SUCH_INSTANCE, body = ErrorBody),
        (status = 409, description = "Its port is in use", body = ErrorBody),
        (status = 422, description = "It cannot run as configured (program missing, Docker, another node)", body = ErrorBody),
        (status = 503, description = "A running limit is reached and nothing can be evicted; see Retry-After", body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<InstanceResponse>, ApiError> {
    let name = instance_name(&name)?;
    let info = state.manager.start(name.as_str()).await.map_err(|e| lifecycle_error(&state, name.as_str(), e))?;
    Ok(Json(instance_response(&info)))
}

/// A start that was tried and failed (the program cannot run) is a problem of the instance's
/// options, answered 422; a busy port or a full limit keep their own statuses. A program that
/// cannot be run is named with what to set so that it can (the config file's key, its
/// variable, or PATH).
fn lifecycle_error(state: &AppState, name: &str, error: llamactl_core::manager::ManagerError) -> ApiError {
    let remedy = crate::config::start_failure_remedy(&state.manager, name, &error);
    match error {
        llamactl_core::manager::ManagerError::StartFailed { .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "start_failed", remedy.unwrap_or_else(|| error.to_string()))
        }
        other => other.into(),
    }
}

/// Stop an instance
///
/// `POST /api/v1/instances/{name}/stop`: stops its process (SIGTERM, then SIGKILL after the
/// stop timeout).
#[utoipa::path(post, path = "/api/v1/instances/{name}/stop", tag = "Instances", operation_id = "stopInstance",
    params(("name" = String, Path, description = "Instance name")),
    responses(
        (status = 200, description = "Stopped", body = InstanceResponse),
        (status = 400, description = INVALID_NAME, body = ErrorBody),
        (status = 404, description = NO_SUCH_INSTANCE, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn stop(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<InstanceResponse>, ApiError> {
    let name = instance_name(&name)?;
    Ok(Json(instance_response(&state.manager.stop(name.as_str()).await?)))
}

/// Restart an instance
///
/// `POST /api/v1/instances/{name}/restart`: stops it if it runs, then starts it.
#[utoipa::path(post, path = "/api/v1/instances/{name}/restart", tag = "Instances", operation_id = "restartInstance",
    params(("name" = String, Path, description = "Instance name")),
    responses(
        (status = 200, description = "Starting again", body = InstanceResponse),
        (status = 400, description = INVALID_NAME, body = ErrorBody),
        (status = 404, description = NO_SUCH_INSTANCE, body = ErrorBody),
        (status = 409, description = "Its port is in use", body = ErrorBody),
        (status = 422, description = "It cannot run as configured (program missing, Docker, another node)", body = ErrorBody),
        (status = 503, description = "A running limit is reached and nothing can be evicted; see Retry-After", body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn restart(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<InstanceResponse>, ApiError> {
    let name = instance_name(&name)?;
    let info = state.manager.restart(name.as_str()).await.map_err(|e| lifecycle_error(&state, name.as_str(), e))?;
    Ok(Json(instance_response(&info)))
}

/// Query of `GET /api/v1/instances/{name}/events`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// Only events with a larger id.
    pub after_id: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// List an instance's status changes
///
/// `GET /api/v1/instances/{name}/events`: the instance's transitions, oldest first.
#[utoipa::path(get, path = "/api/v1/instances/{name}/events", tag = "Instances", operation_id = "listInstanceEvents",
    params(("name" = String, Path, description = "Instance name"), EventsQuery),
    responses(
        (status = 200, description = "Its transitions, oldest first", body = Vec<EventResponse>),
        (status = 400, description = "Invalid instance name (invalid_name) or query", body = ErrorBody),
        (status = 404, description = NO_SUCH_INSTANCE, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn events(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<Vec<EventResponse>>, ApiError> {
    let name = instance_name(&name)?;
    let query = llamactl_core::EventQuery { after_id: query.after_id, limit: query.limit.unwrap_or(100).min(1000) };
    let events = state.manager.events(name.as_str(), query).await?;
    Ok(Json(events.into_iter().map(event_response).collect()))
}
