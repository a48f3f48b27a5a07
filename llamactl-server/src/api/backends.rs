//! Backend utilities: llama-server's help, version and devices (run with the configured
//! command), importing a pasted command line as options, and llama.cpp router-mode models.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use llamactl_core::BackendType;
use llamactl_core::manager::Rights;
use llamactl_core::options::parse_command;
use serde_json::json;

use super::error::{ApiError, ErrorBody};
use super::extract::{Json as ApiJson, Path};
use super::instances::instance_name;
use crate::state::AppState;
pub use llamactl_api::types::{ParseCommandRequest, ParseCommandResponse};

/// Longest a `--help`, `--version` or `--list-devices` run may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(15);

async fn run_llama_server(state: &AppState, flag: &str) -> Result<Response, ApiError> {
    let program = state.manager.config().backends.program(llamactl_core::BackendType::LlamaCpp).unwrap_or_default();
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

/// The 503 of the routes that run llama-server, in the API documentation.
const TOOL_UNAVAILABLE: &str = "llama-server cannot be run (backend_unavailable) or did not finish in time (timeout)";

/// Show llama-server's help
///
/// `GET /api/v1/backends/llama-cpp/help`: `llama-server --help`.
#[utoipa::path(get, path = "/api/v1/backends/llama-cpp/help", tag = "Backends", operation_id = "getLlamaCppHelp",
    responses(
        (status = 200, description = "What `llama-server --help` printed", body = String, content_type = "text/plain"),
        (status = 503, description = TOOL_UNAVAILABLE, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn llama_help(State(state): State<AppState>) -> Result<Response, ApiError> {
    run_llama_server(&state, "--help").await
}

/// Show llama-server's version
///
/// `GET /api/v1/backends/llama-cpp/version`: `llama-server --version`.
#[utoipa::path(get, path = "/api/v1/backends/llama-cpp/version", tag = "Backends", operation_id = "getLlamaCppVersion",
    responses(
        (status = 200, description = "What `llama-server --version` printed", body = String, content_type = "text/plain"),
        (status = 503, description = TOOL_UNAVAILABLE, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn llama_version(State(state): State<AppState>) -> Result<Response, ApiError> {
    run_llama_server(&state, "--version").await
}

/// List the devices llama-server can use
///
/// `GET /api/v1/backends/llama-cpp/devices`: `llama-server --list-devices`.
#[utoipa::path(get, path = "/api/v1/backends/llama-cpp/devices", tag = "Backends", operation_id = "listLlamaCppDevices",
    responses(
        (status = 200, description = "What `llama-server --list-devices` printed", body = String, content_type = "text/plain"),
        (status = 503, description = TOOL_UNAVAILABLE, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn llama_devices(State(state): State<AppState>) -> Result<Response, ApiError> {
    run_llama_server(&state, "--list-devices").await
}

/// The 200 of the parse-command routes, in the API documentation.
const PARSED: &str = "The backend type and the options the command line sets";

/// The 400 of the parse-command routes, in the API documentation.
const NOT_PARSED: &str = "The command line does not parse (invalid_command)";

fn parse(backend: BackendType, request: &ParseCommandRequest) -> Result<Json<ParseCommandResponse>, ApiError> {
    let options = parse_command(backend, &request.command)
        .map_err(|e| ApiError::bad_request("invalid_command", format!("command: {e}")))?;
    Ok(Json(ParseCommandResponse { backend_type: backend.as_str().to_owned(), backend_options: options }))
}

/// Turn a llama-server command line into instance options
///
/// `POST /api/v1/backends/llama-cpp/parse-command`
#[utoipa::path(post, path = "/api/v1/backends/llama-cpp/parse-command", tag = "Backends", operation_id = "parseLlamaCppCommand",
    request_body = ParseCommandRequest,
    responses(
        (status = 200, description = PARSED, body = ParseCommandResponse),
        (status = 400, description = NOT_PARSED, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn parse_llama(
    ApiJson(request): ApiJson<ParseCommandRequest>,
) -> Result<Json<ParseCommandResponse>, ApiError> {
    parse(BackendType::LlamaCpp, &request)
}

/// Turn an mlx_lm.server command line into instance options
///
/// `POST /api/v1/backends/mlx/parse-command`
#[utoipa::path(post, path = "/api/v1/backends/mlx/parse-command", tag = "Backends", operation_id = "parseMlxCommand",
    request_body = ParseCommandRequest,
    responses(
        (status = 200, description = PARSED, body = ParseCommandResponse),
        (status = 400, description = NOT_PARSED, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn parse_mlx(ApiJson(request): ApiJson<ParseCommandRequest>) -> Result<Json<ParseCommandResponse>, ApiError> {
    parse(BackendType::MlxLm, &request)
}

/// Turn a vllm serve command line into instance options
///
/// `POST /api/v1/backends/vllm/parse-command`
#[utoipa::path(post, path = "/api/v1/backends/vllm/parse-command", tag = "Backends", operation_id = "parseVllmCommand",
    request_body = ParseCommandRequest,
    responses(
        (status = 200, description = PARSED, body = ParseCommandResponse),
        (status = 400, description = NOT_PARSED, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn parse_vllm(
    ApiJson(request): ApiJson<ParseCommandRequest>,
) -> Result<Json<ParseCommandResponse>, ApiError> {
    parse(BackendType::Vllm, &request)
}

/// The 400 of the router routes, in the API documentation.
const NOT_A_LLAMA_CPP_NAME: &str = "Invalid instance name (invalid_name), or not a llama.cpp instance (wrong_backend)";

/// The 503 of the router routes, in the API documentation.
const NOT_RUNNING: &str = "The instance is not running (not_running)";

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

async fn call_router(state: &AppState, url: String) -> Result<Response, ApiError> {
    let uri = url.parse().map_err(|e| ApiError::internal(format!("bad URL {url}: {e}")))?;
    let response = state
        .proxy
        .get(uri)
        .await
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

/// List the models of a llama.cpp router instance
///
/// `GET /api/v1/llama-cpp/{name}/models` (the Go llamactl's path): the models of a llama.cpp
/// router instance as llama-server lists them, the instance started first if it is stopped.
#[utoipa::path(get, path = "/api/v1/llama-cpp/{name}/models", tag = "Backends", operation_id = "listRouterModels",
    params(("name" = String, Path, description = "Instance name")),
    responses(
        (status = 200, description = "llama-server's model list", body = Object),
        (status = 400, description = NOT_A_LLAMA_CPP_NAME, body = ErrorBody),
        (status = 404, description = super::instances::NO_SUCH_INSTANCE, body = ErrorBody),
        (status = 503, description = NOT_RUNNING, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn router_models(State(state): State<AppState>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let base = if state.routers.is_router(&name) {
        super::router_models::running_models(&state, &name, Rights::ALL).await?.base_url().to_owned()
    } else {
        running_llama(&state, &name)?
    };
    call_router(&state, format!("{base}/models")).await
}

/// Load a model in a llama.cpp router instance
///
/// `POST /api/v1/llama-cpp/{name}/models/{model}/load` (the Go llamactl's path): starts the
/// instance if needed and loads the model through llamactl's scheduling, as
/// `POST /api/v1/instances/{name}/models/{model}/load` does; answers `{"success": true}`.
#[utoipa::path(post, path = "/api/v1/llama-cpp/{name}/models/{model}/load", tag = "Backends", operation_id = "loadRouterModel",
    params(("name" = String, Path, description = "Instance name"), ("model" = String, Path, description = "Model name")),
    responses(
        (status = 200, description = "llama-server's answer", body = Object),
        (status = 400, description = NOT_A_LLAMA_CPP_NAME, body = ErrorBody),
        (status = 404, description = super::instances::NO_SUCH_INSTANCE, body = ErrorBody),
        (status = 503, description = NOT_RUNNING, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn router_load(
    State(state): State<AppState>,
    Path((name, model)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let models = super::router_models::running_models(&state, &name, Rights::ALL).await?;
    models.load(&model, Rights::ALL, super::router_models::load_wait(&state)).await?;
    Ok(Json(json!({"success": true})).into_response())
}

/// Unload a model of a llama.cpp router instance
///
/// `POST /api/v1/llama-cpp/{name}/models/{model}/unload` (the Go llamactl's path): as
/// `POST /api/v1/instances/{name}/models/{model}/unload`; answers `{"success": true}`.
#[utoipa::path(post, path = "/api/v1/llama-cpp/{name}/models/{model}/unload", tag = "Backends", operation_id = "unloadRouterModel",
    params(("name" = String, Path, description = "Instance name"), ("model" = String, Path, description = "Model name")),
    responses(
        (status = 200, description = "llama-server's answer", body = Object),
        (status = 400, description = NOT_A_LLAMA_CPP_NAME, body = ErrorBody),
        (status = 404, description = super::instances::NO_SUCH_INSTANCE, body = ErrorBody),
        (status = 503, description = NOT_RUNNING, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn router_unload(
    State(state): State<AppState>,
    Path((name, model)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if !state.routers.is_router(&name) {
        running_llama(&state, &name)?;
        return Err(llamactl_core::router::RouterError::NotARouter(name).into());
    }
    let models = state.routers.models(&name)?;
    models.unload(&model, super::router_models::load_wait(&state)).await?;
    Ok(Json(json!({"success": true})).into_response())
}
