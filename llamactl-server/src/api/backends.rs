//! Backend utilities: llama-server's help, version and devices (run with the configured
//! command), importing a pasted command line as options, and llama.cpp router-mode models.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use llamactl_core::BackendType;
use llamactl_core::options::parse_command;
use serde_json::{Value, json};

use super::error::{ApiError, ErrorBody};
use super::extract::{Json as ApiJson, Path};
use super::instances::instance_name;
use crate::state::AppState;
pub use llamactl_api::types::{ParseCommandRequest, ParseCommandResponse};

/// Longest a `--help`, `--version` or `--list-devices` run may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(15);

async fn run_llama_server(state: &AppState, flag: &str) -> Result<Response, ApiError> {
    let program = state.manager.config().backends.llama_cpp.command.clone().unwrap_or_else(|| "llama-server".into());
    let run =
        tokio::process::Command::new(&program).arg(flag).stdin(std::process::Stdio::null()).kill_on_drop(true).output();
    let output = match tokio::time::timeout(TOOL_TIMEOUT, run).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "backend_unavailable",
                format!("cannot run {program}: {error} (set backends.llama-cpp.command)"),
            ));
        }
        Err(_) => {
            return Err(ApiError::unavailable(
                "timeout",
                format!("{program} {flag} took longer than {TOOL_TIMEOUT:?}"),
                TOOL_TIMEOUT,
            ));
        }
    };
    // llama-server prints some of these on stderr.
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// `GET /api/v1/backends/llama-cpp/help`: `llama-server --help`.
#[utoipa::path(get, path = "/api/v1/backends/llama-cpp/help", tag = "Backends",
    responses((status = 200, body = String, content_type = "text/plain"), (status = 503, body = ErrorBody)),
    security(("management_key" = [])))]
pub async fn llama_help(State(state): State<AppState>) -> Result<Response, ApiError> {
    run_llama_server(&state, "--help").await
}

/// `GET /api/v1/backends/llama-cpp/version`: `llama-server --version`.
#[utoipa::path(get, path = "/api/v1/backends/llama-cpp/version", tag = "Backends",
    responses((status = 200, body = String, content_type = "text/plain"), (status = 503, body = ErrorBody)),
    security(("management_key" = [])))]
pub async fn llama_version(State(state): State<AppState>) -> Result<Response, ApiError> {
    run_llama_server(&state, "--version").await
}

/// `GET /api/v1/backends/llama-cpp/devices`: `llama-server --list-devices`.
#[utoipa::path(get, path = "/api/v1/backends/llama-cpp/devices", tag = "Backends",
    responses((status = 200, body = String, content_type = "text/plain"), (status = 503, body = ErrorBody)),
    security(("management_key" = [])))]
pub async fn llama_devices(State(state): State<AppState>) -> Result<Response, ApiError> {
    run_llama_server(&state, "--list-devices").await
}

fn parse(backend: BackendType, request: &ParseCommandRequest) -> Result<Json<ParseCommandResponse>, ApiError> {
    let options = parse_command(backend, &request.command)
        .map_err(|e| ApiError::bad_request("invalid_command", format!("command: {e}")))?;
    Ok(Json(ParseCommandResponse { backend_type: backend.as_str().to_owned(), backend_options: options }))
}

/// `POST /api/v1/backends/llama-cpp/parse-command`
#[utoipa::path(post, path = "/api/v1/backends/llama-cpp/parse-command", tag = "Backends",
    request_body = ParseCommandRequest,
    responses((status = 200, body = ParseCommandResponse), (status = 400, body = ErrorBody)),
    security(("management_key" = [])))]
pub async fn parse_llama(
    ApiJson(request): ApiJson<ParseCommandRequest>,
) -> Result<Json<ParseCommandResponse>, ApiError> {
    parse(BackendType::LlamaCpp, &request)
}

/// `POST /api/v1/backends/mlx/parse-command`
#[utoipa::path(post, path = "/api/v1/backends/mlx/parse-command", tag = "Backends",
    request_body = ParseCommandRequest,
    responses((status = 200, body = ParseCommandResponse), (status = 400, body = ErrorBody)),
    security(("management_key" = [])))]
pub async fn parse_mlx(ApiJson(request): ApiJson<ParseCommandRequest>) -> Result<Json<ParseCommandResponse>, ApiError> {
    parse(BackendType::MlxLm, &request)
}

/// `POST /api/v1/backends/vllm/parse-command`
#[utoipa::path(post, path = "/api/v1/backends/vllm/parse-command", tag = "Backends",
    request_body = ParseCommandRequest,
    responses((status = 200, body = ParseCommandResponse), (status = 400, body = ErrorBody)),
    security(("management_key" = [])))]
pub async fn parse_vllm(
    ApiJson(request): ApiJson<ParseCommandRequest>,
) -> Result<Json<ParseCommandResponse>, ApiError> {
    parse(BackendType::Vllm, &request)
}

/// The 400 of the router routes, in the API documentation.
const NOT_A_LLAMA_CPP_NAME: &str = "Invalid instance name (invalid_name), or not a llama.cpp instance (wrong_backend)";

/// Base URL of a running llama.cpp instance, or why there is none.
fn running_llama(state: &AppState, name: &str) -> Result<String, ApiError> {
    let name = instance_name(name)?;
    let info = state.manager.get(name.as_str())?;
    let options = info.state.options.as_ref().map_err(|e| ApiError::internal(e.to_string()))?;
    if options.backend.backend_type() != BackendType::LlamaCpp {
        return Err(ApiError::bad_request("wrong_backend", format!("instance {name} is not a llama.cpp instance")));
    }
    match (&info.state.listen, info.status()) {
        (Some(listen), llamactl_core::InstanceStatus::Running) => Ok(listen.base_url()),
        (_, status) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_running",
            format!("instance {name} is {status}; start it first"),
        )),
    }
}

async fn call_router(state: &AppState, url: String, body: Option<Value>) -> Result<Response, ApiError> {
    let uri = url.parse().map_err(|e| ApiError::internal(format!("bad URL {url}: {e}")))?;
    let response = match body {
        None => state.proxy.get(uri).await,
        Some(body) => state.proxy.post_json(uri, &body).await,
    }
    .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "backend_unreachable", e.to_string()))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "backend_unreachable", e.to_string()))?
        .to_bytes();
    Ok((status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// `GET /api/v1/llama-cpp/{name}/models`: the models of a llama.cpp router instance.
#[utoipa::path(get, path = "/api/v1/llama-cpp/{name}/models", tag = "Backends",
    params(("name" = String, Path, description = "Instance name")),
    responses(
        (status = 200, body = Object),
        (status = 400, description = NOT_A_LLAMA_CPP_NAME, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn router_models(State(state): State<AppState>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let base = running_llama(&state, &name)?;
    call_router(&state, format!("{base}/models"), None).await
}

/// `POST /api/v1/llama-cpp/{name}/models/{model}/load`
#[utoipa::path(post, path = "/api/v1/llama-cpp/{name}/models/{model}/load", tag = "Backends",
    params(("name" = String, Path, description = "Instance name"), ("model" = String, Path, description = "Model name")),
    responses(
        (status = 200, body = Object),
        (status = 400, description = NOT_A_LLAMA_CPP_NAME, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn router_load(
    State(state): State<AppState>,
    Path((name, model)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let base = running_llama(&state, &name)?;
    call_router(&state, format!("{base}/models/load"), Some(json!({"model": model}))).await
}

/// `POST /api/v1/llama-cpp/{name}/models/{model}/unload`
#[utoipa::path(post, path = "/api/v1/llama-cpp/{name}/models/{model}/unload", tag = "Backends",
    params(("name" = String, Path, description = "Instance name"), ("model" = String, Path, description = "Model name")),
    responses(
        (status = 200, body = Object),
        (status = 400, description = NOT_A_LLAMA_CPP_NAME, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn router_unload(
    State(state): State<AppState>,
    Path((name, model)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let base = running_llama(&state, &name)?;
    call_router(&state, format!("{base}/models/unload"), Some(json!({"model": model}))).await
}
