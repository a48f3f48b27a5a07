//! A llama.cpp router instance's models: `GET /api/v1/instances/{name}/models`,
//! `POST /api/v1/instances/{name}/models/{model}/load` and `.../unload`. Loads and unloads go
//! through llamactl's scheduling (room made by its LRU, never under a request in flight).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use llamactl_core::manager::Rights;
use llamactl_core::router::{RouterError, RouterModels, SubModelView};
use llamactl_core::{InstanceStatus, SubModelStatus};

use super::error::{ApiError, ErrorBody};
use super::extract::{Path, Query};
use super::instances::EventsQuery;
use super::instances::instance_name;
use crate::state::AppState;
pub use llamactl_api::router::{SubModelEventInfo, SubModelInfo, SubModelList};

/// The 400 of these routes, in the API documentation.
const NOT_A_ROUTER: &str = "Invalid instance name (invalid_name), or not a llama.cpp router instance (not_a_router)";

/// A view as the API sends it.
pub fn sub_model_info(view: &SubModelView) -> SubModelInfo {
    SubModelInfo {
        id: view.id.clone(),
        aliases: view.aliases.clone(),
        tags: view.tags.clone(),
        source: view.source.clone(),
        status: view.status,
        reason: view.reason.clone(),
        since: view.since,
        exit_code: view.exit_code,
        in_flight: view.in_flight,
        last_used: view.last_used,
        pinned: view.pinned,
        idle_timeout_seconds: view.idle_timeout.map(|d| d.as_secs()),
    }
}

/// The instance, checked to be a router.
fn router_instance(state: &AppState, name: &str) -> Result<llamactl_core::InstanceInfo, ApiError> {
    let name = instance_name(name)?;
    let info = state.manager.get(name.as_str())?;
    if !state.routers.is_router(name.as_str()) {
        return Err(RouterError::NotARouter(name.to_string()).into());
    }
    Ok(info)
}

/// The running router's models, starting the instance first if it is stopped (as the Go
/// llamactl's router routes do).
pub async fn running_models(state: &AppState, name: &str, rights: Rights) -> Result<Arc<RouterModels>, ApiError> {
    router_instance(state, name)?;
    let lease = state.proxy.acquire(&state.manager, name, rights, None).await?;
    let models = state.routers.models(name)?;
    drop(lease);
    Ok(models)
}

/// How long a load or unload through the API may take.
pub fn load_wait(state: &AppState) -> Duration {
    state.proxy.on_demand_timeout()
}

fn info_of(models: &RouterModels, model: &str) -> Result<SubModelInfo, ApiError> {
    let id = models.resolve(model).unwrap_or_else(|| model.to_owned());
    models.views().iter().find(|v| v.id == id).map(sub_model_info).ok_or_else(|| {
        RouterError::UnknownModel { instance: models.instance().to_owned(), model: model.to_owned() }.into()
    })
}

/// List a router instance's models
///
/// `GET /api/v1/instances/{name}/models`: every model the router lists, with llamactl's view
/// of it (status, why, requests in flight, pinning, idle timeout). A stopped router's models
/// are those it listed when it last ran, all unloaded.
#[utoipa::path(get, path = "/api/v1/instances/{name}/models", tag = "Instances", operation_id = "listSubModels",
    params(("name" = String, Path, description = "Instance name")),
    responses(
        (status = 200, description = "The models", body = SubModelList),
        (status = 400, description = NOT_A_ROUTER, body = ErrorBody),
        (status = 404, description = super::instances::NO_SUCH_INSTANCE, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn list(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<SubModelList>, ApiError> {
    let info = router_instance(&state, &name)?;
    let running = info.status() == InstanceStatus::Running;
    let models_max = llamactl_core::router::Routers::models_max(&info);
    let items = if running {
        let models = state.routers.models(&name)?;
        models.refresh().await?;
        models.views().iter().map(sub_model_info).collect()
    } else {
        let known = state.routers.known();
        let views = known.into_iter().find(|(instance, _)| *instance == name).map(|(_, v)| v).unwrap_or_default();
        views
            .iter()
            .map(|v| SubModelInfo { status: SubModelStatus::Unloaded, in_flight: 0, ..sub_model_info(v) })
            .collect()
    };
    Ok(Json(SubModelList { instance: name, running, models_max, items }))
}

/// Load a model of a router instance
///
/// `POST /api/v1/instances/{name}/models/{model}/load`: starts the instance if it is stopped,
/// makes room under `models_max` (unloading the least recently used idle model that is not
/// pinned) and waits until the model answers. 503 with Retry-After when every place is held by
/// a model that may not go now.
#[utoipa::path(post, path = "/api/v1/instances/{name}/models/{model}/load", tag = "Instances", operation_id = "loadSubModel",
    params(("name" = String, Path, description = "Instance name"), ("model" = String, Path, description = "Model id or alias (percent-encode a '/')")),
    responses(
        (status = 200, description = "The model, loaded", body = SubModelInfo),
        (status = 400, description = NOT_A_ROUTER, body = ErrorBody),
        (status = 404, description = "No such instance (not_found) or model (model_not_found)", body = ErrorBody),
        (status = 503, description = "No room (no_room), failed recently (model_failed), did not load (load_failed, timeout); see Retry-After", body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn load(
    State(state): State<AppState>,
    Path((name, model)): Path<(String, String)>,
) -> Result<Json<SubModelInfo>, ApiError> {
    let models = running_models(&state, &name, Rights::ALL).await?;
    models.load(&model, Rights::ALL, load_wait(&state)).await?;
    Ok(Json(info_of(&models, &model)?))
}

/// Unload a model of a router instance
///
/// `POST /api/v1/instances/{name}/models/{model}/unload`: refused (409, model_busy) while
/// requests to it are in flight. A stopped instance's models are all unloaded already.
#[utoipa::path(post, path = "/api/v1/instances/{name}/models/{model}/unload", tag = "Instances", operation_id = "unloadSubModel",
    params(("name" = String, Path, description = "Instance name"), ("model" = String, Path, description = "Model id or alias (percent-encode a '/')")),
    responses(
        (status = 200, description = "The model, unloaded", body = SubModelInfo),
        (status = 400, description = NOT_A_ROUTER, body = ErrorBody),
        (status = 404, description = "No such instance (not_found) or model (model_not_found)", body = ErrorBody),
        (status = 409, description = "Requests to it are in flight (model_busy)", body = ErrorBody),
        (status = 503, description = "The instance is not running (not_running) or the model did not unload in time (timeout)", body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn unload(
    State(state): State<AppState>,
    Path((name, model)): Path<(String, String)>,
) -> Result<Json<SubModelInfo>, ApiError> {
    router_instance(&state, &name)?;
    let models = state.routers.models(&name)?;
    models.unload(&model, load_wait(&state)).await?;
    Ok(Json(info_of(&models, &model)?))
}

/// List a router instance's model changes
///
/// `GET /api/v1/instances/{name}/models/events`: every status change of its models, oldest
/// first, with its typed reason (the newest 1,000 are kept).
#[utoipa::path(get, path = "/api/v1/instances/{name}/models/events", tag = "Instances", operation_id = "listSubModelEvents",
    params(("name" = String, Path, description = "Instance name"), EventsQuery),
    responses(
        (status = 200, description = "Its models' changes, oldest first", body = Vec<SubModelEventInfo>),
        (status = 400, description = "Invalid instance name (invalid_name) or query", body = ErrorBody),
        (status = 404, description = super::instances::NO_SUCH_INSTANCE, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn events(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<Vec<SubModelEventInfo>>, ApiError> {
    let name = instance_name(&name)?;
    state.manager.get(name.as_str())?;
    let query = llamactl_core::EventQuery { after_id: query.after_id, limit: query.limit.unwrap_or(100).min(1000) };
    let events = state.model_events.sub_model_events(name.as_str(), query).await?;
    Ok(Json(
        events
            .into_iter()
            .map(|e| SubModelEventInfo {
                id: e.id,
                instance: e.change.instance,
                model: e.change.model,
                from: e.change.from,
                to: e.change.to,
                reason: e.change.reason,
                at: e.change.at,
            })
            .collect(),
    ))
}
