use llamactl_api::activity::ActivityStatsGroup;
use serde_json::json;

use super::*;

fn instance(name: &str, status: &str) -> InstanceResponse {
    serde_json::from_value(json!({
        "id": 1, "name": name, "status": status, "ready": false, "desired_state": "running", "created": 0,
        "restart_count": 0, "in_flight": 0
    }))
    .unwrap()
}

fn inflight(id: i64, instance: Option<&str>, state: InflightState) -> InflightRequest {
    InflightRequest {
        id,
        instance: instance.map(str::to_owned),
        model: None,
        key_name: None,
        path: "/v1/chat/completions".into(),
        since: "2026-12-01T10:00:00Z".parse().unwrap(),
        state,
        position: None,
        instance_status: None,
        bytes_sent: 0,
    }
}

fn group(name: Option<&str>, requests: u64, completion_tokens: u64) -> ActivityStatsGroup {
    ActivityStatsGroup {
        group: name.map(str::to_owned),
        requests,
        errors: 0,
        prompt_tokens: 999,
        completion_tokens,
        duration_p50_ms: 1.0,
        duration_p95_ms: 1.0,
        ttfb_p50_ms: None,
        generation_tps_p50: None,
    }
}

#[test]
fn rows_count_each_instances_requests_and_divide_by_the_interval() {
    let instances = [instance("qwen", "running"), instance("small", "starting"), instance("idle", "stopped")];
    let inflight = [
        inflight(1, Some("qwen"), InflightState::Streaming),
        inflight(2, Some("qwen"), InflightState::Forwarding),
        inflight(3, Some("small"), InflightState::Queued),
        inflight(4, Some("small"), InflightState::Queued),
        inflight(5, Some("small"), InflightState::Receiving),
        // Not routed yet, or for an instance deleted since: no row counts it.
        inflight(6, None, InflightState::Receiving),
        inflight(7, Some("gone"), InflightState::Forwarding),
    ];
    let stats = ActivityStatsResponse {
        group_by: ActivityGroupBy::Instance,
        since: None,
        groups: vec![group(Some("qwen"), 5, 200), group(None, 3, 0), group(Some("small"), 1, 0)],
    };
    let memory = HashMap::from([("qwen".to_owned(), 3 << 30)]);
    let rows = rows(&instances, &inflight, &stats, &memory, Duration::from_secs(2));
    assert_eq!(
        rows,
        [
            TopRow {
                name: "qwen".into(),
                status: "running".into(),
                in_flight: 2,
                queued: 0,
                requests_per_second: 2.5,
                tokens_per_second: 100.0,
                memory_bytes: Some(3 << 30),
            },
            TopRow {
                name: "small".into(),
                status: "starting".into(),
                in_flight: 1,
                queued: 2,
                requests_per_second: 0.5,
                tokens_per_second: 0.0,
                memory_bytes: None,
            },
            TopRow {
                name: "idle".into(),
                status: "stopped".into(),
                in_flight: 0,
                queued: 0,
                requests_per_second: 0.0,
                tokens_per_second: 0.0,
                memory_bytes: None,
            },
        ]
    );
}

#[test]
fn the_latest_memory_of_each_instance_is_read_from_the_metrics() {
    let metrics: llamactl_api::resources::SystemMetrics = serde_json::from_value(json!({
        "window": "15m", "interval_seconds": 10, "step_seconds": 10, "enabled": true,
        "host": [], "instances": {}, "gpus": {},
        "latest": {"at": "2026-12-01T10:00:20Z", "instances": {
            "qwen": {"at": "2026-12-01T10:00:20Z", "cpu_percent": 3.0, "rss_bytes": 500},
            "unsampled": {"at": "2026-12-01T10:00:20Z", "cpu_percent": null, "rss_bytes": null}
        }, "gpus": {}}
    }))
    .unwrap();
    assert_eq!(latest_memory(&metrics), HashMap::from([("qwen".into(), 500)]));
    let without: llamactl_api::resources::SystemMetrics = serde_json::from_value(json!({
        "window": "1h", "interval_seconds": 10, "step_seconds": 10, "enabled": false,
        "host": [], "instances": {}, "gpus": {}, "latest": null
    }))
    .unwrap();
    assert!(latest_memory(&without).is_empty());
}

#[test]
fn memory_and_rates_read_for_people() {
    assert_eq!(bytes(None), "-");
    assert_eq!(bytes(Some(900 * 1024)), "900 KiB");
    assert_eq!(bytes(Some(512 << 20)), "512 MiB");
    assert_eq!(bytes(Some(3 << 29)), "1.5 GiB");
    assert_eq!(rate(0.0), "0");
    assert_eq!(rate(0.25), "0.2");
    assert_eq!(rate(12.34), "12.3");
}

#[test]
fn a_frame_overwrites_the_screen_from_the_top_in_one_piece() {
    let lines = vec!["title".to_owned(), String::new(), "NAME  STATUS".to_owned()];
    assert_eq!(frame(&lines), "\x1b[Htitle\x1b[K\n\x1b[K\nNAME  STATUS\x1b[K\n\x1b[J");
    // No clear of the whole screen before drawing (that is what flickers).
    assert!(!frame(&lines).contains("\x1b[2J"));
}
