//! The whole life of a real llama-server instance: create, start, ready, chat, stop, nothing
//! left behind.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use llamactl_core::logs::LogStream;
use llamactl_core::{InstanceStatus, TransitionReason};
use llamactl_tests::*;

#[tokio::test]
async fn llama_server_lifecycle() {
    let t = TestManager::new(|_| {}).await;
    let m = &t.manager;
    let mut notices = m.subscribe_transitions();
    m.create("tiny".parse().unwrap(), llama_options()).await.unwrap();
    assert_eq!(m.get("tiny").unwrap().status(), InstanceStatus::Stopped);

    let started = m.start("tiny").await.unwrap();
    assert_eq!(started.status(), InstanceStatus::Starting, "spawned but not yet ready");
    let pid = started.state.runtime.pid.unwrap();
    let ready = wait_status(m, "tiny", InstanceStatus::Running, Duration::from_secs(60)).await;
    let port = ready.runtime.port.unwrap();
    assert_eq!(m.running_count(), 1);
    let seen: Vec<(InstanceStatus, InstanceStatus)> =
        [notices.recv().await.unwrap(), notices.recv().await.unwrap()].iter().map(|n| (n.from, n.to)).collect();
    assert_eq!(
        seen,
        [(InstanceStatus::Stopped, InstanceStatus::Starting), (InstanceStatus::Starting, InstanceStatus::Running)]
    );
    assert!(t.config.port_range.contains(&port), "allocated from the range");

    // Running means answering: the very first request after `running` succeeds.
    let lease = m.ensure_ready("tiny", Duration::from_secs(5)).await.unwrap();
    assert_eq!(lease.listen().port, port);
    let (status, body) = chat(&lease.base_url(), Some("tiny")).await;
    assert_chat_completion(status, &body);
    let (status, stream) = chat_stream(&lease.base_url(), Some("tiny")).await;
    assert_chat_stream(status, &stream);
    let models = http().get(format!("{}/v1/models", lease.base_url())).send().await.unwrap();
    assert_eq!(models.status().as_u16(), 200);
    drop(lease);

    // Its output is in the log, with the exact command the manager ran.
    let lines = m.logs("tiny").unwrap().tail(2000);
    let start_line = lines.iter().find(|l| l.stream == LogStream::Manager && l.text.starts_with("starting:")).unwrap();
    assert!(start_line.text.contains("--gpu-layers 0"), "explicit zero reaches llama-server: {}", start_line.text);
    assert!(
        lines.iter().any(|l| l.stream != LogStream::Manager && l.text.contains("llama")),
        "backend output captured"
    );
    let log_file = m.logs("tiny").unwrap().file_path().unwrap();
    assert!(std::fs::read_to_string(log_file).unwrap().contains("starting:"));

    let stopped = m.stop("tiny").await.unwrap();
    assert_eq!(stopped.status(), InstanceStatus::Stopped);
    let exit = stopped.state.runtime.last_exit;
    assert!(
        exit.signal != Some(9) && (exit.code.is_some() || exit.signal == Some(15)),
        "ended by SIGTERM, not SIGKILL: {exit}"
    );
    assert!(!process_alive(pid), "llama-server is gone");
    assert!(!llamactl_core::process::group_alive(pid), "its process group is empty");
    assert!(!port_open(port), "its port is free");
    assert_eq!(m.running_count(), 0);

    let kinds: Vec<String> = m
        .events("tiny", Default::default())
        .await
        .unwrap()
        .iter()
        .map(|e| format!("{}->{}:{}", e.from, e.to, e.reason.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            "stopped->starting:user_start",
            "starting->running:ready",
            "running->stopping:user_stop",
            "stopping->stopped:user_stop"
        ]
    );
    assert_eq!(m.get("tiny").unwrap().last_reason(), Some(&TransitionReason::UserStop));
}

#[tokio::test]
async fn llama_server_on_demand_then_idle_stop() {
    let t = TestManager::new(|_| {}).await;
    let m = &t.manager;
    let mut options = llama_options();
    options.idle_timeout = Some(Duration::from_secs(1));
    m.create("idle".parse().unwrap(), options).await.unwrap();

    let lease = m.ensure_ready("idle", Duration::from_secs(60)).await.unwrap();
    let (status, body) = chat(&lease.base_url(), None).await;
    assert_chat_completion(status, &body);
    drop(lease);
    let stopped = wait_status(m, "idle", InstanceStatus::Stopped, Duration::from_secs(10)).await;
    assert_eq!(stopped.runtime.last_reason, Some(TransitionReason::IdleTimeout));
    let elapsed = (stopped.runtime.stopped_at.unwrap() - stopped.runtime.ready_at.unwrap()).to_std().unwrap();
    assert!(elapsed >= Duration::from_secs(1), "idle timeout honoured to the second: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "seconds, not minutes: {elapsed:?}");
}
