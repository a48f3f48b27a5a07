//! Bodies of the activity routes: request records (`/api/v1/activity`), their statistics
//! (`/api/v1/activity/stats`) and the requests in flight (`/api/v1/inflight`).

use chrono::{DateTime, Utc};
pub use llamactl_wire::{ActivityGroupBy, ActivityOutcome};
use serde::{Deserialize, Serialize};

use crate::types::InstanceStatus;

/// What one proxied request did (also sent by `GET /api/v1/events` as `event: activity`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivityRecord {
    /// The request's id (also its id while in flight).
    pub id: i64,
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// The instance it was for (null if refused before routing).
    pub instance: Option<String>,
    /// A router instance's sub-model, else the model the client named.
    pub model: Option<String>,
    /// The request path.
    pub path: String,
    /// The HTTP status answered.
    pub status: u16,
    /// The inference key's id.
    pub key_id: Option<i64>,
    /// The key's name (`management` for a management key); never the secret.
    pub key_name: Option<String>,
    /// The client's address.
    pub client: Option<String>,
    /// From arrival to the end of the answer, in milliseconds.
    pub duration_ms: f64,
    /// From arrival to the first byte of the answer's body.
    pub ttfb_ms: Option<f64>,
    /// Time spent waiting for the instance to start.
    pub queue_ms: Option<f64>,
    /// Whether the answer was an event stream.
    pub streamed: bool,
    /// Prompt tokens, as the backend reported them (null: not reported).
    pub prompt_tokens: Option<u64>,
    /// Generated tokens, as the backend reported them.
    pub completion_tokens: Option<u64>,
    /// Prompt tokens served from the backend's cache.
    pub cached_tokens: Option<u64>,
    /// Prompt processing speed, tokens per second.
    pub prompt_tps: Option<f64>,
    /// Generation speed, tokens per second.
    pub generation_tps: Option<f64>,
    /// `completed`, `cancelled` or `error`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub outcome: ActivityOutcome,
    /// What went wrong.
    pub error: Option<String>,
}

/// `GET /api/v1/activity`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivityPage {
    /// The records.
    pub items: Vec<ActivityRecord>,
    /// Pass as `before_id` for the next (older) page; null on the last page.
    pub next_before_id: Option<i64>,
}

/// One group of `GET /api/v1/activity/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivityStatsGroup {
    /// The instance, model or key name (null: records without one).
    pub group: Option<String>,
    /// Requests.
    pub requests: u64,
    /// Of which errors (HTTP status 400 and above, or no answer).
    pub errors: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Generated tokens.
    pub completion_tokens: u64,
    /// Median duration, milliseconds.
    pub duration_p50_ms: f64,
    /// 95th percentile of the duration.
    pub duration_p95_ms: f64,
    /// Median time to first byte.
    pub ttfb_p50_ms: Option<f64>,
    /// Median generation speed, tokens per second.
    pub generation_tps_p50: Option<f64>,
}

/// `GET /api/v1/activity/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivityStatsResponse {
    /// What the groups are.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub group_by: ActivityGroupBy,
    /// Records from this time on (null: all kept).
    pub since: Option<DateTime<Utc>>,
    /// One entry per group.
    pub groups: Vec<ActivityStatsGroup>,
}

/// Where a request in flight is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum InflightState {
    /// Its body is being read or its key checked.
    Receiving,
    /// Waiting for its instance to start.
    Queued,
    /// Sent to the backend, which has not answered yet (or answers without a stream).
    Forwarding,
    /// The backend's event stream is passing to the client.
    Streaming,
}

/// `GET /api/v1/inflight`: one request in flight or waiting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InflightRequest {
    /// Its id (its record's id once it ends; cancel with `POST /api/v1/inflight/{id}/cancel`).
    pub id: i64,
    /// The instance, once routed.
    pub instance: Option<String>,
    /// The model.
    pub model: Option<String>,
    /// The key's name.
    pub key_name: Option<String>,
    /// The path.
    pub path: String,
    /// When it arrived.
    pub since: DateTime<Utc>,
    /// Where it is.
    pub state: InflightState,
    /// Its place in the instance's cold-start queue (1: next), while queued.
    pub position: Option<usize>,
    /// The instance's status now.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub instance_status: Option<InstanceStatus>,
    /// Bytes of the answer sent to the client so far.
    pub bytes_sent: u64,
}
