//! Instance logs: the last lines as text, or followed live as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use llamactl_core::logs::LogLine;
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use super::extract::Path;
use super::extract::Query;
use super::instances::instance_name;
use crate::state::AppState;

/// Query of `GET /api/v1/instances/{name}/logs`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct LogsQuery {
    /// Number of lines from the end (default 100; -1 or absent with follow: 100).
    pub lines: Option<i64>,
    /// Keep the connection open and send new lines as server-sent events.
    pub follow: Option<bool>,
}

fn event_for(line: &LogLine) -> Event {
    Event::default()
        .id(line.seq.to_string())
        .event(match line.stream {
            llamactl_core::logs::LogStream::Stdout => "stdout",
            llamactl_core::logs::LogStream::Stderr => "stderr",
            llamactl_core::logs::LogStream::Manager => "manager",
        })
        .data(line.text.clone())
}

/// Read or follow an instance's log
///
/// `GET /api/v1/instances/{name}/logs?lines=N[&follow=true]`: the last `N` lines as text; with
/// `follow`, an SSE stream of those lines and then every new one, with no gap between them.
#[utoipa::path(get, path = "/api/v1/instances/{name}/logs", tag = "Instances", operation_id = "getInstanceLogs",
    params(("name" = String, Path, description = "Instance name"), LogsQuery),
    responses(
        (status = 200, description = "text/plain lines, or text/event-stream with follow=true", content_type = "text/plain"),
        (status = 400, description = "Invalid instance name (invalid_name) or query", body = ErrorBody),
        (status = 404, description = super::instances::NO_SUCH_INSTANCE, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn logs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let name = instance_name(&name)?;
    let store = state.manager.logs(name.as_str())?;
    let lines = match query.lines {
        Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
        Some(_) => usize::MAX,
        None => 100,
    };
    if !query.follow.unwrap_or(false) {
        let mut text = String::new();
        for line in store.tail(lines) {
            text.push_str(&line.text);
            text.push('\n');
        }
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
    }
    let (recent, receiver) = store.follow(if lines == usize::MAX { 100 } else { lines });
    let live = BroadcastStream::new(receiver).map(|item| match item {
        Ok(line) => event_for(&line),
        Err(BroadcastStreamRecvError::Lagged(missed)) => {
            Event::default().event("lagged").data(format!("{missed} lines were skipped: this client reads too slowly"))
        }
    });
    let stream = futures::stream::iter(recent.iter().map(|l| event_for(l)).collect::<Vec<_>>())
        .chain(live)
        .take_until(state.stopping.clone().cancelled_owned())
        .map(Ok::<_, Infallible>);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}
