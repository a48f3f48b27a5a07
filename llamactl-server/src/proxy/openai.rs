//! The OpenAI-compatible endpoint: `POST /v1/*` routed by the body's `model` (an instance
//! name, or `instance/model` for llama.cpp router instances), and `GET /v1/models`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use llamactl_core::InstanceStatus;
use llamactl_core::manager::{Lease, Rights};
use llamactl_core::router::{SubModelLease, SubModelView};
use llamactl_core::{SubModelReason, SubModelStatus};
use serde_json::json;

use super::model_field::{
    ModelField, find_json_model, find_multipart_model, multipart_boundary, replace_bytes, replace_json_string,
};
use crate::activity::RequestTrack;
use crate::api::body::read_body;
use crate::api::error::{ApiError, ErrorText, retry_after_header};
use crate::auth::Principal;
use crate::state::AppState;
pub use llamactl_api::types::{ModelEntry, ModelList};

/// An error in the OpenAI API's form: `{"error": {"message", "type", "code"}}`.
#[derive(Debug)]
pub struct OpenAiError(pub ApiError);

impl From<ApiError> for OpenAiError {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let error = self.0;
        let kind = match error.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::NOT_FOUND => "not_found_error",
            s if s.is_client_error() => "invalid_request_error",
            _ => "server_error",
        };
        let text = ErrorText(format!("{}: {}", error.code, error.details));
        let body = json!({"error": {"message": error.details, "type": kind, "code": error.code}});
        let mut response = (error.status, Json(body)).into_response();
        response.extensions_mut().insert(text);
        if let Some(after) = error.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, retry_after_header(after));
        }
        response
    }
}

pub use super::model_route::Route;
use super::model_route::{KnownModels, RouteError, resolve};

/// Resolves a request's `model` ([`resolve`]): an instance name, `instance/model`, or a
/// router instance's model by its id or alias.
pub fn route(state: &AppState, model: &str) -> Result<Route, ApiError> {
    let known = state.routers.known();
    let routers: Vec<KnownModels<'_>> = known
        .iter()
        .map(|(instance, views)| (instance.as_str(), views.iter().map(|v| (v.id.as_str(), &v.aliases[..])).collect()))
        .collect();
    resolve(model, |name| state.manager.contains(name), &routers).map_err(|error| match error {
        RouteError::NotFound => {
            ApiError::new(StatusCode::NOT_FOUND, "model_not_found", format!("no instance serves model {model:?}"))
        }
        RouteError::Ambiguous(candidates) => ApiError::bad_request(
            "ambiguous_model",
            format!("model {model:?} could be {}; name one of them", candidates.join(" or ")),
        ),
    })
}

/// For a router instance's model: the instance started if needed (its lease held meanwhile),
/// then a lease on the model, loaded if needed.
async fn lease_sub_model(
    state: &AppState,
    route: &Route,
    rights: Rights,
    track: Option<&RequestTrack>,
) -> Result<Option<SubModelLease>, ApiError> {
    let Some(sub) = &route.sub_model else { return Ok(None) };
    if !state.routers.is_router(&route.instance) {
        return Ok(None);
    }
    let instance_lease = state.proxy.acquire(&state.manager, &route.instance, rights, track).await?;
    let models = state.routers.models(&route.instance)?;
    let lease = models.acquire(sub, SubModelReason::OnDemand, rights, state.proxy.on_demand_timeout()).await?;
    if let (Some(track), Some(waited)) = (track, lease.waited()) {
        track.update(|d| d.queued = Some(d.queued.unwrap_or_default() + waited));
    }
    drop(instance_lease);
    Ok(Some(lease))
}

/// The `model` a request to `lease` must carry, if not the one the client sent: the router's
/// sub-model, else the leased run's own required name (mlx_lm's model path, vLLM's served
/// name), which replaces the instance name.
fn model_for<'a>(route: &'a Route, lease: &'a Lease) -> Option<&'a str> {
    route.sub_model.as_deref().or_else(|| lease.request_model())
}

/// The model named by a buffered request body (JSON or multipart).
fn model_of(content_type: &str, body: &[u8]) -> Result<(ModelField, bool), ApiError> {
    if let Some(boundary) = multipart_boundary(content_type) {
        let field = find_multipart_model(body, &boundary)
            .ok_or_else(|| ApiError::bad_request("missing_model", "the multipart body has no model field"))?;
        return Ok((field, true));
    }
    match find_json_model(body) {
        Ok(Some(field)) => Ok((field, false)),
        Ok(None) => Err(ApiError::bad_request("missing_model", "the request body has no \"model\" string")),
        Err(error) => Err(ApiError::bad_request("invalid_body", error)),
    }
}

/// Call the OpenAI-compatible API
///
/// `POST /v1/*`: forwarded to the instance named by the body's `model`.
#[utoipa::path(
    post,
    path = "/v1/{path}",
    tag = "OpenAI",
    operation_id = "callOpenAi",
    params(("path" = String, Path, description = "The OpenAI API path, e.g. chat/completions, completions, embeddings, audio/transcriptions, messages")),
    request_body(content = Object, description = "The OpenAI request; its `model` names the instance (or `instance/model`)", content_type = "application/json"),
    responses(
        (status = 200, description = "The backend's answer, streamed as it comes"),
        (status = 400, description = "No model in the body"),
        (status = 401, description = "Missing or invalid key"),
        (status = 403, description = "The key may not use this instance"),
        (status = 404, description = "No instance serves this model"),
        (status = 413, description = "Body too large"),
        (status = 503, description = "Not ready in time, queue full, limit reached, or the backend did not answer (also once resent after its restart); see Retry-After"),
    ),
    security(("inference_key" = []), ("management_key" = []))
)]
pub async fn post(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    request: Request,
) -> Result<Response, OpenAiError> {
    let (parts, body) = request.into_parts();
    let body = read_body(body, state.proxy.max_body()).await?;
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (field, multipart) = model_of(content_type, &body)?;
    let mut route = route(&state, &field.value)?;
    let track = parts.extensions.get::<Arc<RequestTrack>>().cloned();
    if let Some(track) = &track {
        let model = route.sub_model.clone().unwrap_or_else(|| field.value.clone());
        track.update(|d| (d.instance, d.model) = (Some(route.instance.clone()), Some(model)));
    }
    let rights = principal.rights(&route.instance);
    let sub_lease = lease_sub_model(&state, &route, rights, track.as_deref()).await?;
    if let Some(lease) = &sub_lease {
        route.sub_model = Some(lease.id().to_owned());
    }
    let body_for = |lease: &Lease| match model_for(&route, lease) {
        Some(model) if model != field.value => Bytes::from(if multipart {
            replace_bytes(&body, field.span.clone(), model)
        } else {
            replace_json_string(&body, field.span.clone(), model)
        }),
        _ => body.clone(),
    };
    let response = state.proxy.send_resending(&state.manager, &route.instance, rights, parts, body_for).await?;
    Ok(match sub_lease {
        Some(lease) => super::hold(response, lease),
        None => response,
    })
}

/// List the models this key may use
///
/// `GET /v1/models`: the instances this key may use, and the models of running llama.cpp
/// router instances as `instance/model`.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "OpenAI",
    operation_id = "listModels",
    responses(
        (status = 200, description = "The models, in the OpenAI form", body = ModelList),
        (status = 401, description = "Missing or invalid key"),
    ),
    security(("inference_key" = []), ("management_key" = []))
)]
pub async fn models(State(state): State<AppState>, Extension(principal): Extension<Principal>) -> Json<ModelList> {
    let known: std::collections::BTreeMap<String, Vec<SubModelView>> = state.routers.known().into_iter().collect();
    let mut data = Vec::new();
    for info in state.manager.list() {
        let name = info.name.to_string();
        if !principal.rights(&name).infer {
            continue;
        }
        let created = info.state.created_at.timestamp();
        let status = info.status();
        let entry = |id: String, model_status| ModelEntry {
            id,
            object: "model".into(),
            created,
            owned_by: "llamactl".into(),
            status,
            model_status,
        };
        for model in known.get(&name).into_iter().flatten() {
            let model_status = if status == InstanceStatus::Running { model.status } else { SubModelStatus::Unloaded };
            data.push(entry(format!("{name}/{}", model.id), Some(model_status)));
        }
        data.push(entry(name, None));
    }
    Json(ModelList { object: "list".into(), data })
}
