//! Pass-through routes to one named instance: llama.cpp's native endpoints under
//! `/llama-cpp/{name}/...` (inference keys, on-demand start) and the raw per-instance proxy
//! `/api/v1/instances/{name}/proxy/...` (management keys, no start).

use axum::extract::{Extension, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use llamactl_core::BackendType;

use std::sync::Arc;

use super::openai::OpenAiError;
use crate::activity::RequestTrack;
use crate::api::error::ApiError;
use crate::api::extract::Path;
use crate::api::instances::instance_name;
use crate::auth::Principal;
use crate::state::AppState;

/// `request` with its path replaced by what follows its first `prefix` segments (the route's
/// own), query kept. The tail is taken from the path as the client sent it, still
/// percent-encoded: decoding it first would turn `%3F` into the start of a query, `%2F` into a
/// separator and `%23` into a fragment the backend never sees.
fn with_tail(mut request: Request, prefix: usize) -> Result<Request, ApiError> {
    let tail = request.uri().path().splitn(prefix + 2, '/').nth(prefix + 1).unwrap_or("");
    let query = request.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
    let path = format!("/{}{query}", tail.trim_start_matches('/'));
    *request.uri_mut() = path.parse::<Uri>().map_err(|e| ApiError::bad_request("invalid_path", e.to_string()))?;
    Ok(request)
}

/// The backend type of instance `name`, once the name is known valid (400 `invalid_name`
/// otherwise) and the instance exists (404).
fn backend_of(state: &AppState, name: &str) -> Result<BackendType, ApiError> {
    let info = state.manager.get(instance_name(name)?.as_str())?;
    let options = info.state.options.as_ref().map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(options.backend.backend_type())
}

/// Call one of llama-server's own endpoints
///
/// `/llama-cpp/{name}/{path}`: llama-server's own endpoints (completion, tokenize, slots,
/// props, ...), started on demand.
#[utoipa::path(
    post,
    path = "/llama-cpp/{name}/{path}",
    tag = "llama.cpp",
    operation_id = "callLlamaCpp",
    params(("name" = String, Path, description = "Instance name"), ("path" = String, Path, description = "llama-server path, e.g. completion")),
    responses(
        (status = 200, description = "llama-server's answer"),
        (status = 400, description = "Invalid instance name (invalid_name), or not a llama.cpp instance (wrong_backend)"),
        (status = 401, description = "Missing or invalid key"),
        (status = 403, description = "The key may not use this instance"),
        (status = 404, description = "No such instance"),
        (status = 503, description = "Not ready in time; see Retry-After"),
    ),
    security(("inference_key" = []), ("management_key" = []))
)]
pub async fn llama_cpp(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((name, _rest)): Path<(String, String)>,
    request: Request,
) -> Result<Response, OpenAiError> {
    let backend = backend_of(&state, &name)?;
    if backend != BackendType::LlamaCpp {
        return Err(
            ApiError::bad_request("wrong_backend", format!("instance {name} is not a llama.cpp instance")).into()
        );
    }
    // `/llama-cpp/{name}/...`
    let request = with_tail(request, 2)?;
    let track = request.extensions().get::<Arc<RequestTrack>>().cloned();
    if let Some(track) = &track {
        track.update(|d| d.instance = Some(name.clone()));
    }
    let lease = state.proxy.acquire(&state.manager, &name, principal.rights(&name), track.as_deref()).await?;
    Ok(state.proxy.forward(lease, request).await?)
}

/// `/llama-cpp/{name}/` itself (llama-server's root).
pub async fn llama_cpp_root(
    state: State<AppState>,
    principal: Extension<Principal>,
    Path(name): Path<String>,
    request: Request,
) -> Result<Response, OpenAiError> {
    llama_cpp(state, principal, Path((name, String::new())), request).await
}

/// Send a request to a running instance as it is
///
/// `/api/v1/instances/{name}/proxy/{path}`: any request to a running instance, as it is. The
/// instance is not started: a stopped one answers 503.
#[utoipa::path(
    post,
    path = "/api/v1/instances/{name}/proxy/{path}",
    tag = "Instances",
    operation_id = "proxyToInstance",
    params(("name" = String, Path, description = "Instance name"), ("path" = String, Path, description = "Backend path")),
    responses(
        (status = 200, description = "The backend's answer"),
        (status = 400, description = crate::api::instances::INVALID_NAME, body = crate::api::error::ErrorBody),
        (status = 404, description = "No such instance", body = crate::api::error::ErrorBody),
        (status = 503, description = "The instance is not running", body = crate::api::error::ErrorBody),
    ),
    security(("management_key" = []))
)]
pub async fn raw(
    State(state): State<AppState>,
    Path((name, _rest)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    instance_name(&name)?;
    let Some(lease) = state.manager.try_lease(&name) else {
        let status = state.manager.get(&name)?.status();
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_running",
            format!("instance {name} is {status}; start it first (the raw proxy does not start instances)"),
        ));
    };
    // `/api/v1/instances/{name}/proxy/...`
    let request = with_tail(request, 5)?;
    state.proxy.forward(lease, request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail_of(uri: &str, prefix: usize) -> String {
        let request = Request::builder().uri(uri).body(axum::body::Body::empty()).unwrap();
        with_tail(request, prefix).unwrap().uri().to_string()
    }

    #[test]
    fn the_tail_is_forwarded_as_sent_with_its_query() {
        assert_eq!(tail_of("/llama-cpp/q/", 2), "/");
        assert_eq!(tail_of("/llama-cpp/q/slots?id=1", 2), "/slots?id=1");
        assert_eq!(tail_of("/llama-cpp/q%2Dx/a%3Fb%2Fc%23d%20e?k=v", 2), "/a%3Fb%2Fc%23d%20e?k=v");
        assert_eq!(tail_of("/api/v1/instances/q/proxy/..%2Fhealth", 5), "/..%2Fhealth");
        assert_eq!(tail_of("/api/v1/instances/q/proxy//x", 5), "/x");
    }
}
