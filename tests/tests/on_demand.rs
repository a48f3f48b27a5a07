//! On-demand start under concurrency: single flight, deadlines, callers that go away, and the
//! idle timer racing new requests.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use llamactl_core::logs::LogStream;
use llamactl_core::manager::ManagerError;
use llamactl_core::{InstanceStatus, TransitionReason};
use llamactl_tests::*;

fn spawn_count(m: &llamactl_core::Manager, name: &str) -> usize {
    m.logs(name)
        .unwrap()
        .tail(10_000)
        .iter()
        .filter(|l| l.stream == LogStream::Manager && l.text.starts_with("starting:"))
        .count()
}

#[tokio::test]
async fn fifty_concurrent_callers_cause_exactly_one_spawn() {
    let t = TestManager::new(|_| {}).await;
    let m = Arc::new(t.manager.clone());
    m.create("shared".parse().unwrap(), test_backend_options(&["--ready-after-ms", "300"])).await.unwrap();

    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (m, barrier) = (m.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let lease = m.ensure_ready("shared", Duration::from_secs(30)).await.unwrap();
                let (status, body) = chat(&lease.base_url(), None).await;
                assert_chat_completion(status, &body);
                lease.listen().port
            })
        })
        .collect();
    let ports: Vec<u16> = futures::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    assert!(ports.windows(2).all(|w| w[0] == w[1]), "all served by one process");
    assert_eq!(spawn_count(&m, "shared"), 1, "exactly one spawn");
    let info = m.get("shared").unwrap();
    assert_eq!(info.state.attempt, 1);
    assert_eq!(info.in_flight, 0, "every lease was released");
    let starts = m
        .events("shared", Default::default())
        .await
        .unwrap()
        .iter()
        .filter(|e| e.to == InstanceStatus::Starting)
        .count();
    assert_eq!(starts, 1);
}

#[tokio::test]
async fn callers_that_go_away_do_not_disturb_the_others() {
    let t = TestManager::new(|_| {}).await;
    let m = Arc::new(t.manager.clone());
    m.create("slow".parse().unwrap(), test_backend_options(&["--ready-after-ms", "800"])).await.unwrap();

    let waiters: Vec<_> = (0..10)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move {
                m.ensure_ready("slow", Duration::from_secs(30)).await.map(|lease| lease.listen().port)
            })
        })
        .collect();
    // One impatient caller with a short deadline.
    let impatient = m.ensure_ready("slow", Duration::from_millis(100)).await.unwrap_err();
    assert!(matches!(impatient, ManagerError::Timeout { .. }), "{impatient}");
    assert!(impatient.retry_after().is_some());
    // Half the callers disconnect while waiting.
    tokio::time::sleep(Duration::from_millis(150)).await;
    for waiter in &waiters[..5] {
        waiter.abort();
    }
    let mut served = 0;
    for waiter in waiters {
        match waiter.await {
            Ok(Ok(_)) => served += 1,
            Ok(Err(error)) => panic!("a remaining caller failed: {error}"),
            Err(join) => assert!(join.is_cancelled()),
        }
    }
    assert_eq!(served, 5);
    let info = m.get("slow").unwrap();
    assert_eq!(info.status(), InstanceStatus::Running);
    assert_eq!(info.in_flight, 0, "callers that left are not counted as busy");
    assert_eq!(spawn_count(&m, "slow"), 1);
}

#[tokio::test]
async fn the_idle_timer_racing_new_requests_never_drops_a_request() {
    let t = TestManager::new(|_| {}).await;
    let m = &t.manager;
    let mut options = test_backend_options(&[]);
    options.idle_timeout = Some(Duration::from_secs(1));
    m.create("racy".parse().unwrap(), options).await.unwrap();

    // Gaps straddling the one-second idle deadline, so some requests arrive just before the
    // stop decision, some just after, and some while the instance is stopping.
    let gaps_ms = [995u64, 1000, 1003, 1007, 1010, 997, 1020, 1001, 1050, 990, 1005, 1000];
    for gap in gaps_ms {
        let lease = m.ensure_ready("racy", Duration::from_secs(30)).await.unwrap();
        let (status, body) = chat(&lease.base_url(), None).await;
        assert_chat_completion(status, &body);
        drop(lease);
        tokio::time::sleep(Duration::from_millis(gap)).await;
    }
    // The last run ends by the idle timer too (it may already have, during the last gap): then
    // every on-demand start has its idle stop.
    let last = wait_status(m, "racy", InstanceStatus::Stopped, Duration::from_secs(10)).await;
    assert_eq!(last.runtime.last_reason, Some(TransitionReason::IdleTimeout));
    let events = m.events("racy", Default::default()).await.unwrap();
    let idle_stops =
        events.iter().filter(|e| e.reason == TransitionReason::IdleTimeout && e.to == InstanceStatus::Stopped).count();
    let on_demand = events.iter().filter(|e| e.reason == TransitionReason::OnDemand).count();
    assert!(idle_stops >= 2, "the idle timer fired during the requests too: {events:#?}");
    assert_eq!(on_demand, idle_stops, "each on-demand start was ended by exactly one idle stop");
}

#[tokio::test]
async fn an_open_lease_keeps_the_instance_busy_past_its_idle_timeout() {
    let t = TestManager::new(|_| {}).await;
    let m = &t.manager;
    let mut options = test_backend_options(&[]);
    options.idle_timeout = Some(Duration::from_secs(1));
    m.create("stream".parse().unwrap(), options).await.unwrap();
    let lease = m.ensure_ready("stream", Duration::from_secs(30)).await.unwrap();
    // A long streaming response: the lease is held for 2.5 idle periods.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(m.get("stream").unwrap().status(), InstanceStatus::Running);
    assert_eq!(m.get("stream").unwrap().in_flight, 1);
    drop(lease);
    let stopped = wait_status(m, "stream", InstanceStatus::Stopped, Duration::from_secs(5)).await;
    assert_eq!(stopped.runtime.last_reason, Some(TransitionReason::IdleTimeout));
}

#[tokio::test]
async fn a_failed_start_is_reported_to_every_waiter() {
    let t = TestManager::new(|_| {}).await;
    let m = Arc::new(t.manager.clone());
    m.create("broken".parse().unwrap(), test_backend_options(&["--no-such-flag"])).await.unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move { m.ensure_ready("broken", Duration::from_secs(30)).await })
        })
        .collect();
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        match err {
            ManagerError::StartFailed { detail, .. } => {
                assert!(detail.contains("unknown argument --no-such-flag"), "{detail}")
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(spawn_count(&m, "broken"), 1, "one failed attempt shared by all");
}

#[tokio::test]
async fn a_recent_failure_is_reported_again_without_a_new_spawn_until_the_cooldown() {
    let t = TestManager::new(|_| {}).await;
    let m = &t.manager;
    let mut options = test_backend_options(&["--no-such-flag"]);
    options.restart_delay = Some(Duration::from_millis(500));
    m.create("doomed".parse().unwrap(), options).await.unwrap();
    let first = m.ensure_ready("doomed", Duration::from_secs(10)).await.unwrap_err();
    assert!(matches!(first, ManagerError::StartFailed { retry_after: None, .. }), "{first}");
    for _ in 0..20 {
        let again = m.ensure_ready("doomed", Duration::from_secs(10)).await.unwrap_err();
        let retry = again.retry_after().expect("a repeated failure says when to retry");
        assert!(retry <= Duration::from_millis(500), "{retry:?}");
    }
    assert_eq!(spawn_count(m, "doomed"), 1, "twenty requests, one spawn");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = m.ensure_ready("doomed", Duration::from_secs(10)).await.unwrap_err();
    assert!(matches!(later, ManagerError::StartFailed { retry_after: None, .. }), "a new attempt after the cooldown");
    assert_eq!(spawn_count(m, "doomed"), 2);
    // An explicit start is always attempted.
    m.start("doomed").await.ok();
    wait_status(m, "doomed", InstanceStatus::Failed, Duration::from_secs(10)).await;
    assert_eq!(spawn_count(m, "doomed"), 3);
}

#[tokio::test]
async fn an_activity_guard_counts_as_busy_for_idle_and_eviction() {
    let t = TestManager::new(|c| c.max_running_instances = Some(1)).await;
    let m = &t.manager;
    let mut options = test_backend_options(&[]);
    options.idle_timeout = Some(Duration::from_secs(1));
    m.create("tracked".parse().unwrap(), options.clone()).await.unwrap();
    m.create("other".parse().unwrap(), options).await.unwrap();
    drop(m.ensure_ready("tracked", Duration::from_secs(10)).await.unwrap());
    // A caller that routes requests itself marks one in flight.
    let guard = m.track_activity("tracked").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(m.get("tracked").unwrap().status(), InstanceStatus::Running, "busy: not idle-stopped");
    let err = m.start("other").await.unwrap_err();
    assert!(err.to_string().contains("tracked has 1 requests in flight"), "{err}");
    drop(guard);
    let stopped = wait_status(m, "tracked", InstanceStatus::Stopped, Duration::from_secs(5)).await;
    assert_eq!(stopped.runtime.last_reason, Some(TransitionReason::IdleTimeout));
}
