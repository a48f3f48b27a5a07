//! The OpenAI-compatible endpoint: `POST /v1/*` routed by the body's `model` (an instance
//! name, or `instance/model` for llama.cpp router instances), and `GET /v1/models`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use llamactl_core::manager::Lease;
use llamactl_core::{BackendOptions, InstanceStatus};
use serde_json::{Value, json};

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

/// Where a `model` value leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The instance.
    pub instance: String,
    /// For `instance/model` (a llama.cpp router instance's model): the model the backend gets.
    pub sub_model: Option<String>,
}

/// Resolves a request's `model`: an instance name, or `instance/model` for a llama.cpp router
/// instance (the backend then gets `model`).
pub fn route(state: &AppState, model: &str) -> Result<Route, ApiError> {
    if state.manager.contains(model) {
        return Ok(Route { instance: model.to_owned(), sub_model: None });
    }
    if let Some((instance, inner)) = model.split_once('/')
        && state.manager.contains(instance)
    {
        return Ok(Route { instance: instance.to_owned(), sub_model: Some(inner.to_owned()) });
    }
    Err(ApiError::new(StatusCode::NOT_FOUND, "model_not_found", format!("no instance serves model {model:?}")))
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
    let route = route(&state, &field.value)?;
    if let Some(track) = parts.extensions.get::<Arc<RequestTrack>>() {
        let model = route.sub_model.clone().unwrap_or_else(|| field.value.clone());
        track.update(|d| (d.instance, d.model) = (Some(route.instance.clone()), Some(model)));
    }
    let rights = principal.rights(&route.instance);
    let body_for = |lease: &Lease| match model_for(&route, lease) {
        Some(model) if model != field.value => Bytes::from(if multipart {
            replace_bytes(&body, field.span.clone(), model)
        } else {
            replace_json_string(&body, field.span.clone(), model)
        }),
        _ => body.clone(),
    };
    Ok(state.proxy.send_resending(&state.manager, &route.instance, rights, parts, body_for).await?)
}

fn is_router(options: &llamactl_core::InstanceOptions) -> bool {
    match &options.backend {
        BackendOptions::LlamaCpp(llama) => {
            options.preset_ini.is_some()
                || llama.model.is_none()
                    && llama.hf_repo.is_none()
                    && ["models_dir", "models_preset"].iter().any(|k| llama.extra.get(k).is_some())
        }
        _ => false,
    }
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
    let mut data = Vec::new();
    for info in state.manager.list() {
        let name = info.name.to_string();
        if !principal.rights(&name).infer {
            continue;
        }
        let created = info.state.created_at.timestamp();
        let status = info.status();
        if let Ok(options) = &info.state.options
            && is_router(options)
            && status == InstanceStatus::Running
            && let Some(listen) = &info.state.listen
        {
            for model in router_models(&state, &listen.base_url()).await {
                data.push(ModelEntry {
                    id: format!("{name}/{model}"),
                    object: "model".into(),
                    created,
                    owned_by: "llamactl".into(),
                    status,
                });
            }
        }
        data.push(ModelEntry { id: name, object: "model".into(), created, owned_by: "llamactl".into(), status });
    }
    Json(ModelList { object: "list".into(), data })
}

/// The models a llama.cpp router instance offers (its `GET /models`), empty on any error.
pub async fn router_models(state: &AppState, base_url: &str) -> Vec<String> {
    let Ok(uri) = format!("{base_url}/models").parse() else { return Vec::new() };
    let fetch = async {
        let response = state.proxy.get(uri).await.ok()?;
        let bytes = response.into_body().collect().await.ok()?.to_bytes();
        let value: Value = serde_json::from_slice(&bytes).ok()?;
        Some(
            value["data"]
                .as_array()?
                .iter()
                .filter_map(|m| m["id"].as_str().or_else(|| m["name"].as_str()).map(str::to_owned))
                .collect::<Vec<_>>(),
        )
    };
    tokio::time::timeout(Duration::from_secs(2), fetch).await.ok().flatten().unwrap_or_default()
}
