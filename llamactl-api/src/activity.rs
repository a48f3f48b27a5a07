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

/// The query of `GET /api/v1/activity`: which records, how many, from where. Every field is
/// optional; the server's defaults apply to what is not given.
///
/// ```
/// use llamactl_api::activity::ActivityFilter;
/// let filter = ActivityFilter { instance: Some("qwen".into()), limit: Some(20), ..ActivityFilter::default() };
/// assert_eq!(filter.query(), "limit=20&instance=qwen");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityFilter {
    /// At most this many records.
    pub limit: Option<u32>,
    /// Only records older than this id (the `next_before_id` of the page before).
    pub before_id: Option<i64>,
    /// Only requests for this instance.
    pub instance: Option<String>,
    /// Only requests with this key: its name, or its numeric id.
    pub key: Option<String>,
    /// Only requests answered with this HTTP status.
    pub status: Option<u16>,
    /// Only requests that arrived at this time or later.
    pub since: Option<DateTime<Utc>>,
}

impl ActivityFilter {
    /// The query string (without `?`), its values percent-encoded; empty without conditions.
    pub fn query(&self) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        if let Some(before) = self.before_id {
            pairs.push(("before_id", before.to_string()));
        }
        if let Some(instance) = &self.instance {
            pairs.push(("instance", instance.clone()));
        }
        if let Some(key) = &self.key {
            pairs.push(("key", key.clone()));
        }
        if let Some(status) = self.status {
            pairs.push(("status", status.to_string()));
        }
        if let Some(since) = self.since {
            pairs.push(("since", since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)));
        }
        encode_query(&pairs)
    }

    /// Whether `record` meets the filter's conditions (instance, key, status, since), as the
    /// server applies them; `limit` and `before_id` say nothing about one record. For records
    /// that arrive one by one (`event: activity`).
    ///
    /// ```
    /// # use llamactl_api::activity::{ActivityFilter, ActivityRecord};
    /// # let record: ActivityRecord = serde_json::from_value(serde_json::json!({
    /// #     "id": 1, "at": "2026-12-01T10:00:00Z", "instance": "qwen", "model": null,
    /// #     "path": "/v1/chat/completions", "status": 200, "key_id": 3, "key_name": "ci",
    /// #     "client": null, "duration_ms": 12.0, "ttfb_ms": null, "queue_ms": null,
    /// #     "streamed": false, "prompt_tokens": null, "completion_tokens": null,
    /// #     "cached_tokens": null, "prompt_tps": null, "generation_tps": null,
    /// #     "outcome": "completed", "error": null}))?;
    /// let by_id = ActivityFilter { key: Some("3".into()), ..ActivityFilter::default() };
    /// assert!(by_id.matches(&record));
    /// let other = ActivityFilter { instance: Some("small".into()), ..ActivityFilter::default() };
    /// assert!(!other.matches(&record));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn matches(&self, record: &ActivityRecord) -> bool {
        let instance = self.instance.as_ref().is_none_or(|i| record.instance.as_ref() == Some(i));
        let key = self.key.as_ref().is_none_or(|k| {
            record.key_name.as_ref() == Some(k) || record.key_id.is_some_and(|id| id.to_string() == *k)
        });
        let status = self.status.is_none_or(|s| record.status == s);
        let since = self.since.is_none_or(|s| record.at >= s);
        instance && key && status && since
    }
}

/// `a=1&b=x%20y`: names as they are (they are fixed words), values percent-encoded.
pub(crate) fn encode_query(pairs: &[(&str, String)]) -> String {
    pairs.iter().map(|(name, value)| format!("{name}={}", percent_encode(value))).collect::<Vec<_>>().join("&")
}

/// Every byte but the unreserved ones of RFC 3986 (`A-Z a-z 0-9 - . _ ~`) as `%XX`.
pub(crate) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(instance: Option<&str>, key: Option<(i64, &str)>, status: u16, at: &str) -> ActivityRecord {
        ActivityRecord {
            id: 1,
            at: at.parse().unwrap(),
            instance: instance.map(str::to_owned),
            model: None,
            path: "/v1/chat/completions".into(),
            status,
            key_id: key.map(|k| k.0),
            key_name: key.map(|k| k.1.to_owned()),
            client: None,
            duration_ms: 1.0,
            ttfb_ms: None,
            queue_ms: None,
            streamed: false,
            prompt_tokens: None,
            completion_tokens: None,
            cached_tokens: None,
            prompt_tps: None,
            generation_tps: None,
            outcome: ActivityOutcome::Completed,
            error: None,
        }
    }

    #[test]
    fn the_query_names_each_condition_given_and_encodes_its_value() {
        assert_eq!(ActivityFilter::default().query(), "");
        let filter = ActivityFilter {
            limit: Some(5),
            before_id: Some(99),
            instance: Some("qwen-2.5".into()),
            key: Some("my key&co".into()),
            status: Some(503),
            since: Some("2026-12-01T10:00:00.5+01:00".parse().unwrap()),
        };
        assert_eq!(
            filter.query(),
            "limit=5&before_id=99&instance=qwen-2.5&key=my%20key%26co&status=503&since=2026-12-01T09%3A00%3A00.500Z"
        );
    }

    #[test]
    fn a_record_matches_when_every_condition_given_holds() {
        let at = "2026-12-01T10:00:00Z";
        let ci = record(Some("qwen"), Some((7, "ci")), 200, at);
        let anonymous = record(None, None, 404, at);
        assert!(ActivityFilter::default().matches(&ci) && ActivityFilter::default().matches(&anonymous));

        let by = |f: ActivityFilter| (f.matches(&ci), f.matches(&anonymous));
        let none = ActivityFilter::default;
        assert_eq!(by(ActivityFilter { instance: Some("qwen".into()), ..none() }), (true, false));
        assert_eq!(by(ActivityFilter { instance: Some("small".into()), ..none() }), (false, false));
        assert_eq!(by(ActivityFilter { key: Some("ci".into()), ..none() }), (true, false));
        assert_eq!(by(ActivityFilter { key: Some("7".into()), ..none() }), (true, false));
        assert_eq!(by(ActivityFilter { key: Some("8".into()), ..none() }), (false, false));
        assert_eq!(by(ActivityFilter { status: Some(404), ..none() }), (false, true));
        let later = ActivityFilter { since: Some("2026-12-01T10:00:01Z".parse().unwrap()), ..none() };
        assert_eq!(by(later), (false, false));
        let same = ActivityFilter { since: Some(at.parse().unwrap()), ..none() };
        assert_eq!(by(same), (true, true));
        // limit and before_id are the page's business.
        assert_eq!(by(ActivityFilter { limit: Some(1), before_id: Some(1), ..none() }), (true, true));
        let both = ActivityFilter { instance: Some("qwen".into()), status: Some(500), ..none() };
        assert_eq!(by(both), (false, false));
    }
}
