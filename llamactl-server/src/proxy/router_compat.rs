//! A llama.cpp-router-compatible API over every instance and every router model:
//! `GET /models`, `POST /models/load`, `POST /models/unload` and `GET /models/sse`, with the
//! router's JSON shapes. An ordinary instance is a model whose load is a start and whose unload
//! is a stop; a router instance's model is `instance/model`. Authenticated as inference; a load
//! needs the key's start right, an unload its evict right.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::StreamExt;
use llamactl_core::router::SubModelNotice;
use llamactl_core::{InstanceStatus, SubModelStatus};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_stream::wrappers::BroadcastStream;

use super::openai::{OpenAiError, route};
use crate::api::error::ApiError;
use crate::auth::Principal;
use crate::state::AppState;

/// The router's `status` object for a model in `value`.
fn status_object(value: &str, exit_code: Option<i32>, failed: bool) -> Value {
    let mut status = json!({"value": value});
    if failed {
        status["failed"] = json!(true);
        status["exit_code"] = json!(exit_code);
    }
    status
}

/// An instance's status in the router's words.
///
/// ```
/// use llamactl_core::InstanceStatus;
/// use llamactl_server::proxy::router_compat::instance_model_status;
/// assert_eq!(instance_model_status(InstanceStatus::Running), "loaded");
/// assert_eq!(instance_model_status(InstanceStatus::Restarting), "loading");
/// assert_eq!(instance_model_status(InstanceStatus::Failed), "failed");
/// ```
pub fn instance_model_status(status: InstanceStatus) -> &'static str {
    match status {
        InstanceStatus::Running => "loaded",
        InstanceStatus::Starting | InstanceStatus::Restarting => "loading",
        InstanceStatus::Stopped | InstanceStatus::Stopping => "unloaded",
        InstanceStatus::Failed => "failed",
    }
}

/// List every model, as a llama.cpp router does
///
/// `GET /models`: every instance this key may use (`loaded` when running, `loading` while it
/// starts, `unloaded` when stopped) and every model of each router instance as
/// `instance/model`, in llama-server's router shape (`status.value`).
#[utoipa::path(get, path = "/models", tag = "OpenAI", operation_id = "listRouterCompatibleModels",
    responses(
        (status = 200, description = "`{\"object\": \"list\", \"data\": [{\"id\", \"aliases\", \"object\", \"owned_by\", \"created\", \"status\": {\"value\"}, \"source\", \"instance\"}]}`", body = Object),
        (status = 401, description = "Missing or invalid key"),
    ),
    security(("inference_key" = []), ("management_key" = [])))]
pub async fn list(State(state): State<AppState>, Extension(principal): Extension<Principal>) -> Json<Value> {
    let known: std::collections::BTreeMap<String, _> = state.routers.known().into_iter().collect();
    let mut data = Vec::new();
    for info in state.manager.list() {
        let name = info.name.to_string();
        if !principal.rights(&name).infer {
            continue;
        }
        let created = info.state.created_at.timestamp();
        let status = info.status();
        let failed = status == InstanceStatus::Failed;
        data.push(json!({
            "id": name, "aliases": [], "tags": [], "object": "model", "owned_by": "llamactl", "created": created,
            "status": status_object(instance_model_status(status), info.state.runtime.last_exit.code, failed),
            "source": "instance", "instance": name,
        }));
        for model in known.get(&name).into_iter().flatten() {
            let model_status = if status == InstanceStatus::Running { model.status } else { SubModelStatus::Unloaded };
            let failed = model_status == SubModelStatus::Failed;
            data.push(json!({
                "id": format!("{name}/{}", model.id), "aliases": model.aliases, "tags": model.tags,
                "object": "model", "owned_by": "llamactl", "created": created,
                "status": status_object(model_status.as_str(), model.exit_code, failed),
                "source": model.source, "instance": name,
            }));
        }
    }
    Json(json!({"object": "list", "data": data}))
}

/// The body of a load or unload.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ModelRequest {
    /// A model id as `GET /models` lists it (or any name `/v1` routes).
    pub model: String,
}

fn model_of(body: &[u8]) -> Result<String, ApiError> {
    let request: ModelRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("expected {{\"model\": \"...\"}}: {e}")))?;
    if request.model.is_empty() {
        return Err(ApiError::bad_request("missing_model", "model must be a non-empty string"));
    }
    Ok(request.model)
}

/// Load a model, as a llama.cpp router does
///
/// `POST /models/load` with `{"model": ID}`: starts an instance, or loads a router
/// instance's model (starting the instance first), and answers `{"success": true}` once it
/// is ready. Needs the key's start right.
#[utoipa::path(post, path = "/models/load", tag = "OpenAI", operation_id = "loadRouterCompatibleModel",
    request_body(content = ModelRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "`{\"success\": true}`", body = Object),
        (status = 400, description = "No model, or an ambiguous one"),
        (status = 403, description = "The key may not start this instance or load its models"),
        (status = 404, description = "No such model"),
        (status = 503, description = "Not ready in time, or no room; see Retry-After"),
    ),
    security(("inference_key" = []), ("management_key" = [])))]
pub async fn load(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, OpenAiError> {
    let route = route(&state, &model_of(&body)?)?;
    let rights = principal.rights(&route.instance);
    if !rights.start {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this key may not start instance {} or load its models", route.instance),
        )
        .into());
    }
    let lease = state.proxy.acquire(&state.manager, &route.instance, rights, None).await?;
    if let Some(sub) = &route.sub_model
        && state.routers.is_router(&route.instance)
    {
        let models = state.routers.models(&route.instance).map_err(ApiError::from)?;
        models.load(sub, rights, state.proxy.on_demand_timeout()).await.map_err(ApiError::from)?;
    }
    drop(lease);
    Ok(Json(json!({"success": true})))
}

/// Unload a model, as a llama.cpp router does
///
/// `POST /models/unload` with `{"model": ID}`: stops an instance, or unloads a router
/// instance's model (409 while requests to it are in flight). Needs the key's evict right.
#[utoipa::path(post, path = "/models/unload", tag = "OpenAI", operation_id = "unloadRouterCompatibleModel",
    request_body(content = ModelRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "`{\"success\": true}`", body = Object),
        (status = 400, description = "No model, or an ambiguous one"),
        (status = 403, description = "The key may not stop this instance or unload its models"),
        (status = 404, description = "No such model"),
        (status = 409, description = "Requests to the model are in flight"),
    ),
    security(("inference_key" = []), ("management_key" = [])))]
pub async fn unload(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, OpenAiError> {
    let route = route(&state, &model_of(&body)?)?;
    if !principal.rights(&route.instance).evict {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this key may not stop instance {} or unload its models", route.instance),
        )
        .into());
    }
    match &route.sub_model {
        Some(sub) if state.routers.is_router(&route.instance) => {
            let running =
                state.manager.get(&route.instance).map_err(ApiError::from)?.status() == InstanceStatus::Running;
            if running {
                let models = state.routers.models(&route.instance).map_err(ApiError::from)?;
                models.unload(sub, state.proxy.on_demand_timeout()).await.map_err(ApiError::from)?;
            }
        }
        _ => {
            state.manager.stop(&route.instance).await.map_err(ApiError::from)?;
        }
    }
    Ok(Json(json!({"success": true})))
}

/// A router event in llama-server's form: `{"model", "event": "status_change", "data": {"status"}}`.
fn status_change(model: &str, status: &str, exit_code: Option<i32>) -> Event {
    let mut data = json!({"status": status});
    if status == "unloaded" || status == "failed" {
        data["exit_code"] = json!(exit_code.unwrap_or(0));
    }
    Event::default().data(json!({"model": model, "event": "status_change", "data": data}).to_string())
}

/// Follow model status changes, as a llama.cpp router does
///
/// `GET /models/sse`: server-sent events, one `data:` line per change, in llama-server's form
/// (`{"model": ID, "event": "status_change", "data": {"status": ...}}`), for the instances
/// this key may use and their router models.
#[utoipa::path(get, path = "/models/sse", tag = "OpenAI", operation_id = "followRouterCompatibleModels",
    responses((status = 200, description = "Server-sent events", content_type = "text/event-stream")),
    security(("inference_key" = []), ("management_key" = [])))]
pub async fn events(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let for_instances = principal.clone();
    let instances = BroadcastStream::new(state.manager.subscribe_transitions()).filter_map(move |notice| {
        let event = notice.ok().filter(|n| for_instances.rights(&n.name).infer).and_then(|n| {
            let (before, after) = (instance_model_status(n.from), instance_model_status(n.to));
            (before != after).then(|| status_change(&n.name, after, None))
        });
        std::future::ready(event)
    });
    let models = BroadcastStream::new(state.routers.subscribe()).filter_map(move |notice| {
        let event = notice.ok().filter(|n: &SubModelNotice| principal.rights(&n.instance).infer).map(|n| {
            let exit_code = match &n.reason {
                llamactl_core::SubModelReason::Crashed { exit_code } => *exit_code,
                _ => None,
            };
            status_change(&format!("{}/{}", n.instance, n.model), n.to.as_str(), exit_code)
        });
        std::future::ready(event)
    });
    let stream = futures::stream::select(instances, models)
        .take_until(state.stopping.clone().cancelled_owned())
        .map(Ok::<_, Infallible>);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
