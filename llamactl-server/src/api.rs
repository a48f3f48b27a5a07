//! The HTTP routes served so far: health, version and read-only instance listings, with the
//! Go llamactl's paths and its `{"error", "details"}` error body.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use llamactl_core::Manager;
use llamactl_core::manager::{InstanceInfo, ManagerError};
use serde_json::{Value, json};

pub(crate) fn router(manager: Manager) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/api/v1/version", get(version))
        .route("/api/v1/instances", get(list))
        .route("/api/v1/instances/{name}", get(show))
        .with_state(manager)
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn version() -> String {
    format!("llamactl-server {}\n", env!("CARGO_PKG_VERSION"))
}

/// The Go llamactl's instance JSON, with our runtime fields added.
fn instance_json(info: &InstanceInfo) -> Value {
    let runtime = &info.state.runtime;
    json!({
        "name": info.name,
        "status": runtime.status,
        "created": info.state.created_at.timestamp(),
        "options": info.state.options.as_ref().ok().map(|o| o.to_json_value()),
        "options_error": info.state.options.as_ref().err().map(ToString::to_string),
        "desired_state": runtime.desired_state,
        "pid": runtime.pid,
        "port": runtime.port,
        "restart_count": runtime.restart_count,
        "last_error": runtime.last_error,
        "last_reason": runtime.last_reason,
        "started_at": runtime.started_at,
        "ready_at": runtime.ready_at,
        "stopped_at": runtime.stopped_at,
        "in_flight": info.in_flight,
    })
}

async fn list(State(manager): State<Manager>) -> Json<Value> {
    Json(Value::Array(manager.list().iter().map(instance_json).collect()))
}

async fn show(State(manager): State<Manager>, Path(name): Path<String>) -> Response {
    match manager.get(&name) {
        Ok(info) => Json(instance_json(&info)).into_response(),
        Err(error) => error_response(&error),
    }
}

fn error_response(error: &ManagerError) -> Response {
    let (status, code) = match error {
        ManagerError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
    };
    (status, Json(json!({"error": code, "details": error.to_string()}))).into_response()
}
