//! From the engine's types to the REST API's bodies.
//!
//! `llamactl-api` defines the bodies and knows nothing of `llamactl-core` (so that its clients
//! build without the supervisor); the server, which has both, converts here. Named functions
//! rather than `From` impls: neither side of the conversion is this crate's.

use llamactl_api::types::{EventResponse, InstanceResponse, KeyResponse, OptionsJson, StatusEvent};
use llamactl_core::InstanceStatus;
use llamactl_core::db::{ApiKeyRecord, InstanceEvent};
use llamactl_core::manager::{InstanceInfo, InstanceView, StatusNotice};

/// An instance snapshot as the instance routes answer it.
pub fn instance_response(info: &InstanceInfo) -> InstanceResponse {
    instance_view_response(info.view())
}

/// A borrowed instance (as listings see it) as the instance routes answer it.
pub fn instance_view_response(view: InstanceView<'_>) -> InstanceResponse {
    let state = view.state;
    let runtime = &state.runtime;
    InstanceResponse {
        id: state.id,
        name: view.name.to_string(),
        status: runtime.status,
        ready: runtime.status == InstanceStatus::Running,
        created: state.created_at.timestamp(),
        options: state.options.as_ref().ok().and(state.options_json.clone()).map(OptionsJson::Raw),
        options_error: state.options.as_ref().err().map(ToString::to_string),
        desired_state: runtime.desired_state,
        pid: runtime.pid,
        port: runtime.port,
        restart_count: runtime.restart_count,
        last_error: runtime.last_error.clone(),
        last_reason: runtime.last_reason.clone(),
        started_at: runtime.started_at,
        ready_at: runtime.ready_at,
        stopped_at: runtime.stopped_at,
        in_flight: view.in_flight,
        last_activity: view.last_activity,
        source: match &state.options {
            Ok(options) => options.declared_in.clone().unwrap_or_else(|| llamactl_api::types::API_SOURCE.to_owned()),
            Err(_) => llamactl_api::types::API_SOURCE.to_owned(),
        },
        origins: None,
    }
}

/// A recorded transition as `GET /api/v1/instances/{name}/events` lists it.
pub fn event_response(event: InstanceEvent) -> EventResponse {
    EventResponse {
        id: event.id,
        from: event.from,
        to: event.to,
        reason: event.reason,
        at: event.at,
        pid: event.pid,
        port: event.port,
    }
}

/// A broadcast status change as `GET /api/v1/events` sends it.
pub fn status_event(notice: StatusNotice) -> StatusEvent {
    StatusEvent { name: notice.name, from: notice.from, to: notice.to, reason: notice.reason, at: notice.at }
}

/// A stored key as the key routes list it (never its secret or hash).
pub fn key_response(key: &ApiKeyRecord) -> KeyResponse {
    KeyResponse {
        id: key.id,
        name: key.name.clone(),
        user_id: key.user_id.clone(),
        permission_mode: key.permission_mode,
        expires_at: key.expires_at.map(|t| t.timestamp()),
        enabled: true,
        created_at: key.created_at.timestamp(),
        updated_at: key.updated_at.timestamp(),
        last_used_at: key.last_used_at.map(|t| t.timestamp()),
    }
}

/// A request's record as the activity routes and the event stream send it.
pub fn activity_record(record: &llamactl_core::db::ActivityRecord) -> llamactl_api::activity::ActivityRecord {
    let r = record.clone();
    llamactl_api::activity::ActivityRecord {
        id: r.id,
        at: r.at,
        instance: r.instance,
        model: r.model,
        path: r.path,
        status: r.status,
        key_id: r.key_id,
        key_name: r.key_name,
        client: r.client,
        duration_ms: r.duration_ms,
        ttfb_ms: r.ttfb_ms,
        queue_ms: r.queue_ms,
        streamed: r.streamed,
        prompt_tokens: r.prompt_tokens,
        completion_tokens: r.completion_tokens,
        cached_tokens: r.cached_tokens,
        prompt_tps: r.prompt_tps,
        generation_tps: r.generation_tps,
        outcome: r.outcome,
        error: r.error,
    }
}

/// One group of request statistics.
pub fn activity_stats_group(stats: llamactl_core::db::ActivityStats) -> llamactl_api::activity::ActivityStatsGroup {
    llamactl_api::activity::ActivityStatsGroup {
        group: stats.group,
        requests: stats.requests,
        errors: stats.errors,
        prompt_tokens: stats.prompt_tokens,
        completion_tokens: stats.completion_tokens,
        duration_p50_ms: stats.duration_p50_ms,
        duration_p95_ms: stats.duration_p95_ms,
        ttfb_p50_ms: stats.ttfb_p50_ms,
        generation_tps_p50: stats.generation_tps_p50,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};
    use llamactl_core::db::{PermissionMode, RuntimeRecord};
    use llamactl_core::logs::{LogStore, Rotation};
    use llamactl_core::manager::InstanceState;
    use llamactl_core::{DesiredState, ExitInfo, InstanceOptions, TransitionReason};

    use super::*;

    fn info(options: &str) -> InstanceInfo {
        let options = InstanceOptions::from_json(options).map(Arc::new);
        let runtime = RuntimeRecord {
            status: InstanceStatus::Running,
            desired_state: DesiredState::Running,
            pid: Some(42),
            port: Some(8001),
            restart_count: 2,
            last_reason: Some(TransitionReason::Ready),
            ..RuntimeRecord::default()
        };
        let options_json = options.as_ref().ok().and_then(|o| o.to_raw_json());
        let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let state = InstanceState {
            id: 7,
            options,
            options_json,
            created_at: at,
            updated_at: at,
            runtime,
            listen: None,
            serving: None,
            attempt: 1,
        };
        InstanceInfo {
            name: "tiny".parse().unwrap(),
            state,
            in_flight: 3,
            last_activity: Some(at),
            logs: Arc::new(LogStore::new(None, 16, Rotation::default())),
        }
    }

    #[test]
    fn an_instance_answers_with_its_state_and_its_options_as_stored() {
        let response = instance_response(&info(r#"{"backend_type":"vllm","backend_options":{"model":"m"}}"#));
        assert_eq!((response.id, response.name.as_str(), response.status), (7, "tiny", InstanceStatus::Running));
        assert!(response.ready);
        assert_eq!((response.created, response.pid, response.port), (1_700_000_000, Some(42), Some(8001)));
        assert_eq!((response.restart_count, response.in_flight), (2, 3));
        assert_eq!(response.last_reason, Some(TransitionReason::Ready));
        assert_eq!(response.backend_type().as_deref(), Some("vllm"));
        assert_eq!(response.options_error, None);
    }

    #[test]
    fn unreadable_options_answer_with_why_and_no_options() {
        let response = instance_response(&info(r#"{"backend_type":"nope"}"#));
        assert_eq!(response.options, None);
        assert!(response.options_error.is_some());
    }

    #[test]
    fn events_and_notices_keep_every_field() {
        let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let reason = TransitionReason::Crashed { exit: ExitInfo { code: Some(1), signal: None } };
        let event = InstanceEvent {
            id: 5,
            instance: "tiny".into(),
            from: InstanceStatus::Running,
            to: InstanceStatus::Restarting,
            reason: reason.clone(),
            at,
            pid: Some(42),
            port: Some(8001),
        };
        let expected = EventResponse {
            id: 5,
            from: InstanceStatus::Running,
            to: InstanceStatus::Restarting,
            reason: reason.clone(),
            at,
            pid: Some(42),
            port: Some(8001),
        };
        assert_eq!(event_response(event), expected);
        let notice = StatusNotice {
            name: "tiny".into(),
            from: InstanceStatus::Running,
            to: InstanceStatus::Restarting,
            reason: reason.clone(),
            at,
        };
        let sent = status_event(notice);
        assert_eq!(
            (sent.name.as_str(), sent.from, sent.to, &sent.reason, sent.at),
            ("tiny", expected.from, expected.to, &reason, at)
        );
    }

    #[test]
    fn a_key_is_listed_in_unix_seconds_without_its_secret() {
        let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let key = ApiKeyRecord {
            id: 3,
            name: "ci".into(),
            user_id: "system".into(),
            permission_mode: PermissionMode::PerInstance,
            expires_at: Some(at),
            created_at: at,
            updated_at: at,
            last_used_at: None,
            lookup_id: Some("abc".into()),
            sha256: Some("00".into()),
            legacy_hash: None,
            rights: vec![],
        };
        let listed = key_response(&key);
        assert_eq!((listed.id, listed.name.as_str(), listed.permission_mode), (3, "ci", PermissionMode::PerInstance));
        assert_eq!(
            (listed.expires_at, listed.created_at, listed.last_used_at),
            (Some(1_700_000_000), 1_700_000_000, None)
        );
        assert!(listed.enabled);
    }
}
