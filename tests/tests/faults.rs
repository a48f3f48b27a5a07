//! Faults: a killed backend, a backend that never becomes ready, a taken port, a backend that
//! ignores SIGTERM and leaves children behind.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use llamactl_core::manager::ManagerError;
use llamactl_core::ports::PortError;
use llamactl_core::{Database, ExitInfo, InstanceStatus, TransitionReason};
use llamactl_tests::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[tokio::test]
async fn killed_llama_server_restarts_with_backoff_then_gives_up() {
    let t = TestManager::new(|_| {}).await;
    let m = &t.manager;
    let mut options = llama_options();
    options.auto_restart = Some(true);
    options.max_restarts = Some(2);
    options.restart_delay = Some(Duration::from_millis(200));
    m.create("crashy".parse().unwrap(), options).await.unwrap();
    m.start("crashy").await.unwrap();

    let mut pids = Vec::new();
    for round in 0..3u32 {
        let running = wait_status(m, "crashy", InstanceStatus::Running, Duration::from_secs(60)).await;
        let pid = running.runtime.pid.unwrap();
        assert!(!pids.contains(&pid), "a new process each time");
        pids.push(pid);
        kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
        if round < 2 {
            let restarting = wait_state(m, "crashy", Duration::from_secs(10), |s| {
                s.runtime.status == InstanceStatus::Restarting || s.runtime.pid != Some(pid)
            })
            .await;
            assert_eq!(restarting.runtime.restart_count, round + 1);
        }
    }
    let failed = wait_status(m, "crashy", InstanceStatus::Failed, Duration::from_secs(30)).await;
    let killed = ExitInfo { code: None, signal: Some(9) };
    assert_eq!(failed.runtime.last_reason, Some(TransitionReason::GaveUp { restarts: 2, exit: killed }));
    assert!(failed.runtime.last_error.unwrap().contains("signal 9"));
    assert!(pids.iter().all(|pid| !process_alive(*pid)));

    let events = m.events("crashy", Default::default()).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.reason.kind()).collect();
    assert_eq!(
        kinds,
        [
            "user_start",
            "ready",
            "crashed",
            "restart_backoff",
            "ready",
            "crashed",
            "restart_backoff",
            "ready",
            "gave_up"
        ]
    );
    // Backoff: the second delay is about twice the first (exponential, with up to 25% jitter).
    let delays: Vec<u64> = events
        .iter()
        .filter_map(|e| match e.reason {
            TransitionReason::RestartBackoff { delay_ms, .. } => Some(delay_ms),
            _ => None,
        })
        .collect();
    assert!((200..=250).contains(&delays[0]), "{delays:?}");
    assert!((400..=500).contains(&delays[1]), "{delays:?}");
    // The crash events carry the signal.
    assert!(events.iter().any(|e| e.reason == TransitionReason::Crashed { exit: killed }));
}

#[tokio::test]
async fn the_restart_counter_starts_over_after_a_stable_run() {
    let t = TestManager::new(|config| config.restart_reset_after = Duration::from_millis(300)).await;
    let m = &t.manager;
    let mut options = test_backend_options(&[]);
    options.max_restarts = Some(1);
    options.restart_delay = Some(Duration::from_millis(50));
    m.create("stable".parse().unwrap(), options).await.unwrap();
    m.start("stable").await.unwrap();
    // Three crashes, each after a stable run: never gives up although max_restarts is 1.
    for _ in 0..3 {
        let running = wait_status(m, "stable", InstanceStatus::Running, Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        kill(Pid::from_raw(running.runtime.pid.unwrap()), Signal::SIGKILL).unwrap();
        let next = wait_state(m, "stable", Duration::from_secs(10), |s| s.runtime.pid != running.runtime.pid).await;
        assert_ne!(next.runtime.status, InstanceStatus::Failed);
        assert_eq!(next.runtime.restart_count, 1);
    }
}

#[tokio::test]
async fn a_clean_exit_is_still_unexpected_and_restarted() {
    let t = TestManager::new(|_| {}).await;
    let m = &t.manager;
    let mut options = test_backend_options(&["--exit-after-ms", "300", "--exit-code", "0"]);
    options.max_restarts = Some(1);
    options.restart_delay = Some(Duration::from_millis(50));
    m.create("quitter".parse().unwrap(), options).await.unwrap();
    m.start("quitter").await.unwrap();
    let failed = wait_status(m, "quitter", InstanceStatus::Failed, Duration::from_secs(20)).await;
    assert_eq!(
        failed.runtime.last_reason,
        Some(TransitionReason::GaveUp { restarts: 1, exit: ExitInfo { code: Some(0), signal: None } })
    );
}

#[tokio::test]
async fn a_backend_that_never_becomes_ready_times_out_with_the_reason_recorded() {
    let t = TestManager::new(|_| {}).await;
    let m = &t.manager;
    let mut options = test_backend_options(&["--never-ready", "--log-lines", "3"]);
    options.startup_timeout = Some(Duration::from_secs(1));
    m.create("hung".parse().unwrap(), options).await.unwrap();
    let err = m.ensure_ready("hung", Duration::from_secs(30)).await.unwrap_err();
    let ManagerError::StartFailed { reason, detail, .. } = &err else { panic!("{err}") };
    assert_eq!(reason, &TransitionReason::HealthTimeout { after_ms: 1000 });
    assert!(detail.contains("log line 2"), "last output attached: {detail}");

    // The failure is on disk by the time anyone sees it, for whoever looks later.
    let db = llamactl_core::SqliteDatabase::open_shared(t.db_path()).await.unwrap();
    let stored = db.get("hung").await.unwrap().unwrap();
    assert_eq!(stored.runtime.status, InstanceStatus::Failed);
    assert_eq!(stored.runtime.last_reason, Some(TransitionReason::HealthTimeout { after_ms: 1000 }));
    assert!(stored.runtime.last_error.unwrap().contains("did not answer within"));
    assert!(stored.runtime.pid.is_none(), "the hung process is gone and forgotten");
}

#[tokio::test]
async fn a_pinned_port_taken_by_another_process_fails_the_start_clearly() {
    let t = TestManager::new(|_| {}).await;
    let m = &t.manager;
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let mut options = test_backend_options(&[]);
    if let llamactl_core::BackendOptions::Custom(custom) = &mut options.backend {
        custom.port = Some(port);
    }
    m.create("pinned".parse().unwrap(), options).await.unwrap();
    let err = m.start("pinned").await.unwrap_err();
    assert!(matches!(err, ManagerError::Port(PortError::InUse { port: p, .. }) if p == port), "{err}");
    assert!(err.to_string().contains(&port.to_string()));
    let info = m.get("pinned").unwrap();
    assert_eq!(info.status(), InstanceStatus::Failed);
    assert_eq!(info.last_reason(), Some(&TransitionReason::PortUnavailable { port }));

    // Once the port is free again, the instance starts on it.
    drop(squatter);
    m.start("pinned").await.unwrap();
    let running = wait_status(m, "pinned", InstanceStatus::Running, Duration::from_secs(10)).await;
    assert_eq!(running.runtime.port, Some(port));
}

#[tokio::test]
async fn allocated_ports_skip_ports_in_use_and_never_collide() {
    let t = TestManager::new(|_| {}).await;
    let m = &t.manager;
    let start = *t.config.port_range.start();
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", start)).unwrap();
    for i in 0..3 {
        m.create(format!("p{i}").parse().unwrap(), test_backend_options(&[])).await.unwrap();
        m.start(&format!("p{i}")).await.unwrap();
    }
    let mut ports = Vec::new();
    for i in 0..3 {
        let state = wait_status(m, &format!("p{i}"), InstanceStatus::Running, Duration::from_secs(10)).await;
        ports.push(state.runtime.port.unwrap());
    }
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3, "distinct ports");
    assert!(!ports.contains(&start), "the squatted port is skipped");
}

#[tokio::test]
async fn sigterm_ignored_and_children_left_behind_still_leave_nothing_running() {
    let t = TestManager::new(|config| config.stop_grace = Duration::from_millis(500)).await;
    let m = &t.manager;
    m.create("stubborn".parse().unwrap(), test_backend_options(&["--ignore-sigterm", "--spawn-child"])).await.unwrap();
    m.start("stubborn").await.unwrap();
    let running = wait_status(m, "stubborn", InstanceStatus::Running, Duration::from_secs(10)).await;
    let pid = running.runtime.pid.unwrap();
    // The backend's output reaches the log through its output file, within moments.
    let logs = m.logs("stubborn").unwrap();
    let child_of =
        || logs.tail(100).iter().find_map(|l| l.text.strip_prefix("child pid ").map(|p| p.parse::<i32>().unwrap()));
    assert!(eventually(Duration::from_secs(5), || child_of().is_some()).await, "{:?}", logs.tail(100));
    let child = child_of().unwrap();
    assert!(process_alive(child));
    let stopped = m.stop("stubborn").await.unwrap();
    assert_eq!(stopped.state.runtime.last_exit.signal, Some(9), "needed SIGKILL");
    assert!(!process_alive(pid) && !process_alive(child), "leader and child are gone");
    let logs: Vec<String> = m.logs("stubborn").unwrap().tail(100).iter().map(|l| l.text.clone()).collect();
    assert!(logs.iter().any(|l| l.contains("SIGTERM received and ignored")));
    assert!(logs.iter().any(|l| l.contains("killed")), "{logs:#?}");
}

#[tokio::test]
async fn a_crash_of_a_child_free_backend_with_auto_restart_off_is_failed_not_restarted() {
    let t = TestManager::new(|_| {}).await;
    let m = &t.manager;
    let mut options = test_backend_options(&[]);
    options.auto_restart = Some(false);
    m.create("once".parse().unwrap(), options).await.unwrap();
    m.start("once").await.unwrap();
    let running = wait_status(m, "once", InstanceStatus::Running, Duration::from_secs(10)).await;
    kill(Pid::from_raw(running.runtime.pid.unwrap()), Signal::SIGKILL).unwrap();
    let failed = wait_status(m, "once", InstanceStatus::Failed, Duration::from_secs(10)).await;
    assert_eq!(
        failed.runtime.last_reason,
        Some(TransitionReason::Crashed { exit: ExitInfo { code: None, signal: Some(9) } })
    );
    assert_eq!(failed.runtime.restart_count, 0);
}
