//! The server itself: health, readiness, version, configuration, nodes, status events and
//! metrics.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use llamactl_core::InstanceStatus;
use serde_json::Value;
use tokio_stream::wrappers::BroadcastStream;

use super::error::{ApiError, ErrorBody};
use super::extract::Path;
use super::wire::{activity_record, status_event};
use crate::state::AppState;
pub use llamactl_api::types::{NodeResponse, StatusBody, StatusEvent};

/// Check that the server is up
///
/// `GET /health`: the manager process is up.
#[utoipa::path(get, path = "/health", tag = "System", operation_id = "getHealth",
    responses((status = 200, description = "Up: `{\"status\": \"ok\"}`", body = StatusBody)))]
pub async fn health() -> Json<StatusBody> {
    Json(StatusBody { status: "ok".into(), details: None })
}

/// Check that the server accepts work
///
/// `GET /ready`: the database answers and the manager accepts work.
#[utoipa::path(get, path = "/ready", tag = "System", operation_id = "getReadiness",
    responses(
        (status = 200, description = "Ready: `{\"status\": \"ready\"}`", body = StatusBody),
        (status = 503, description = "Not ready: `{\"status\": \"not_ready\", \"details\": why}`", body = StatusBody),
    ))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let problem = match tokio::time::timeout(Duration::from_secs(2), state.manager.database().ping()).await {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(format!("database: {error}")),
        Err(_) => Some("database: no answer within 2 s".to_owned()),
    };
    match problem {
        None => Json(StatusBody { status: "ready".into(), details: None }).into_response(),
        Some(details) => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(StatusBody { status: "not_ready".into(), details: Some(details) }))
                .into_response()
        }
    }
}

/// Show the server's version
///
/// `GET /api/v1/version`
#[utoipa::path(get, path = "/api/v1/version", tag = "System", operation_id = "getVersion",
    responses((status = 200, description = "Version text", body = String, content_type = "text/plain")),
    security(("management_key" = [])))]
pub async fn version() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("llamactl-server {}\n", env!("CARGO_PKG_VERSION")))
}

/// Show the effective configuration
///
/// `GET /api/v1/config`: the effective configuration, secrets removed.
#[utoipa::path(get, path = "/api/v1/config", tag = "System", operation_id = "getConfig",
    responses((status = 200, description = "The configuration, secrets removed", body = Object)),
    security(("management_key" = [])))]
pub async fn config(State(state): State<AppState>) -> Json<Value> {
    Json(state.reloader.config().redacted())
}

fn nodes_of(state: &AppState) -> Vec<NodeResponse> {
    let local = state.manager.config().local_node.clone();
    let mut nodes = vec![NodeResponse { name: local.clone(), address: String::new(), local: true }];
    for (name, node) in &state.config.nodes {
        if *name != local {
            nodes.push(NodeResponse { name: name.clone(), address: node.address.clone(), local: false });
        }
    }
    nodes
}

/// List the nodes
///
/// `GET /api/v1/nodes`: this node and the configured remote ones.
#[utoipa::path(get, path = "/api/v1/nodes", tag = "System", operation_id = "listNodes",
    responses((status = 200, description = "This node first, then the configured ones", body = Vec<NodeResponse>)),
    security(("management_key" = [])))]
pub async fn nodes(State(state): State<AppState>) -> Json<Vec<NodeResponse>> {
    Json(nodes_of(&state))
}

/// Get a node
///
/// `GET /api/v1/nodes/{name}`
#[utoipa::path(get, path = "/api/v1/nodes/{name}", tag = "System", operation_id = "getNode",
    params(("name" = String, Path, description = "Node name")),
    responses(
        (status = 200, description = "The node", body = NodeResponse),
        (status = 404, description = "No node has this name (not_found)", body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn node(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<NodeResponse>, ApiError> {
    nodes_of(&state)
        .into_iter()
        .find(|n| n.name == name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("node {name} not found")))
}

/// Follow status changes, router model changes and request records
///
/// `GET /api/v1/events`: server-sent events: every status change of every instance
/// (`event: status`, data: `{"name","from","to","reason","at"}`) and, when activity is
/// recorded, every proxied request as it ends (`event: activity`, data: its record), and every
/// status change of a router instance's model (`event: model`, data:
/// `{"instance","model","from","to","reason","at"}`), and every configuration reload
/// (`event: reload`, data: its plan and outcome).
#[utoipa::path(get, path = "/api/v1/events", tag = "System", operation_id = "streamEvents",
    responses((status = 200, description = "text/event-stream of status changes and request records", content_type = "text/event-stream")),
    security(("management_key" = [])))]
pub async fn events(State(state): State<AppState>) -> impl IntoResponse {
    let statuses = BroadcastStream::new(state.manager.subscribe_transitions()).map(|item| match item {
        Ok(notice) => {
            Event::default().event("status").data(serde_json::to_string(&status_event(notice)).unwrap_or_default())
        }
        Err(_) => Event::default().event("lagged").data("some status changes were skipped"),
    });
    let records = match &state.activity {
        Some(activity) => BroadcastStream::new(activity.subscribe())
            .map(|item| match item {
                Ok(record) => Event::default()
                    .event("activity")
                    .data(serde_json::to_string(&activity_record(&record)).unwrap_or_default()),
                Err(_) => Event::default().event("lagged").data("some request records were skipped"),
            })
            .boxed(),
        None => futures::stream::pending().boxed(),
    };
    let models = BroadcastStream::new(state.routers.subscribe()).map(|item| match item {
        Ok(notice) => Event::default().event("model").data(serde_json::to_string(&notice).unwrap_or_default()),
        Err(_) => Event::default().event("lagged").data("some model status changes were skipped"),
    });
    let reloads = BroadcastStream::new(state.reloader.subscribe()).map(|item| match item {
        Ok(report) => Event::default().event("reload").data(serde_json::to_string(&report).unwrap_or_default()),
        Err(_) => Event::default().event("lagged").data("some reloads were skipped"),
    });
    let stream =
        futures::stream::select(futures::stream::select(statuses, records), futures::stream::select(models, reloads))
            .take_until(state.stopping.clone().cancelled_owned())
            .map(Ok::<_, Infallible>);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Read the Prometheus metrics
///
/// `GET /metrics`: Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "System", operation_id = "getMetrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")),
    security(("management_key" = [])))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = state.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    text.push_str("# HELP llamactl_instances Instances by status.\n# TYPE llamactl_instances gauge\n");
    let list = state.manager.map_instances(|v| (v.state.runtime.status, v.in_flight, v.logs.file_error().is_some()));
    let per_instance = state.manager.map_instances(|v| (v.name.to_string(), v.in_flight));
    text.push_str("# HELP llamactl_instance_requests_in_flight Proxied requests in flight, per instance.\n# TYPE llamactl_instance_requests_in_flight gauge\n");
    for (instance, in_flight) in per_instance {
        text.push_str(&format!("llamactl_instance_requests_in_flight{{instance=\"{instance}\"}} {in_flight}\n"));
    }
    text.push_str("# HELP llamactl_cold_start_queue_depth Requests waiting for their instance to start.\n# TYPE llamactl_cold_start_queue_depth gauge\n");
    for (instance, depth) in state.proxy.queue().depths() {
        text.push_str(&format!("llamactl_cold_start_queue_depth{{instance=\"{instance}\"}} {depth}\n"));
    }
    for status in InstanceStatus::ALL {
        let count = list.iter().filter(|(s, _, _)| *s == status).count();
        text.push_str(&format!("llamactl_instances{{status=\"{status}\"}} {count}\n"));
    }
    let in_flight: u32 = list.iter().map(|(_, n, _)| n).sum();
    text.push_str(&format!(
        "# HELP llamactl_requests_in_flight Proxied requests in flight.\n# TYPE llamactl_requests_in_flight gauge\nllamactl_requests_in_flight {in_flight}\n"
    ));
    let failing = list.iter().filter(|(_, _, f)| *f).count();
    text.push_str(&format!(
        "# HELP llamactl_log_files_failing Instances whose log file cannot be written now (e.g. a full disk; lines are kept in memory).\n# TYPE llamactl_log_files_failing gauge\nllamactl_log_files_failing {failing}\n"
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Counts transitions by target status and reason, for `/metrics`.
pub async fn count_transitions(state: AppState) {
    let mut notices = state.manager.subscribe_transitions();
    loop {
        match notices.recv().await {
            Ok(notice) => {
                metrics::counter!(
                    "llamactl_transitions_total",
                    "to" => notice.to.as_str(),
                    "reason" => notice.reason.kind()
                )
                .increment(1);
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// The documentation of unknown routes: `{"error": "not_found"}`.
pub async fn fallback() -> ApiError {
    ApiError::not_found("no such route")
}
