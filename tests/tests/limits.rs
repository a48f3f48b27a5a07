//! Running limits with LRU eviction, on every start path.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use llamactl_core::manager::{LeaseRequest, Limit, ManagerError, Rights};
use llamactl_core::{InstanceOptions, InstanceStatus, Manager, TransitionReason};
use llamactl_tests::*;

/// A test-backend instance that idles out after ten minutes (evictable).
fn evictable() -> InstanceOptions {
    let mut options = test_backend_options(&[]);
    options.idle_timeout = Some(Duration::from_secs(600));
    options
}

async fn run(m: &Manager, name: &str) {
    m.start(name).await.unwrap();
    wait_status(m, name, InstanceStatus::Running, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn eviction_picks_the_least_recently_used_idle_instance() {
    let t = TestManager::new(|c| c.max_running_instances = Some(2)).await;
    let m = &t.manager;
    for name in ["a", "b", "c"] {
        m.create(name.parse().unwrap(), evictable()).await.unwrap();
    }
    run(m, "a").await;
    run(m, "b").await;
    // a is used after b became ready: b is now the least recently used.
    drop(m.ensure_ready("a", Duration::from_secs(5)).await.unwrap());
    run(m, "c").await;
    let b = m.get("b").unwrap();
    assert_eq!(b.status(), InstanceStatus::Stopped);
    assert_eq!(b.last_reason(), Some(&TransitionReason::Evicted { by: "c".into() }));
    assert_eq!(b.state.runtime.desired_state, llamactl_core::DesiredState::Stopped);
    assert_eq!(m.get("a").unwrap().status(), InstanceStatus::Running);
    assert_eq!(m.running_count(), 2);
}

#[tokio::test]
async fn a_busy_instance_is_never_evicted_and_the_error_says_when_to_retry() {
    let t = TestManager::new(|c| c.max_running_instances = Some(1)).await;
    let m = &t.manager;
    m.create("busy".parse().unwrap(), evictable()).await.unwrap();
    m.create("next".parse().unwrap(), evictable()).await.unwrap();
    let lease = m.ensure_ready("busy", Duration::from_secs(10)).await.unwrap();
    let err = m.start("next").await.unwrap_err();
    let ManagerError::CapacityExhausted { limit, detail, retry_after, .. } = &err else { panic!("{err}") };
    assert_eq!(limit, &Limit::Global { max: 1 });
    assert!(detail.contains("requests in flight"), "{detail}");
    assert_eq!(err.retry_after(), Some(*retry_after));
    assert_eq!(m.get("busy").unwrap().status(), InstanceStatus::Running);
    // The on-demand path says the same.
    let err = m.ensure_ready("next", Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(err, ManagerError::CapacityExhausted { .. }), "{err}");

    drop(lease);
    run(m, "next").await;
    assert_eq!(m.get("busy").unwrap().last_reason(), Some(&TransitionReason::Evicted { by: "next".into() }));
}

#[tokio::test]
async fn pinned_and_starting_instances_are_never_evicted() {
    let t = TestManager::new(|c| c.max_running_instances = Some(1)).await;
    let m = &t.manager;
    let mut pinned = test_backend_options(&[]);
    pinned.idle_timeout = Some(Duration::ZERO);
    m.create("pinned".parse().unwrap(), pinned).await.unwrap();
    m.create("other".parse().unwrap(), evictable()).await.unwrap();
    run(m, "pinned").await;
    let err = m.start("other").await.unwrap_err();
    assert!(err.to_string().contains("pinned"), "{err}");
    m.stop("pinned").await.unwrap();

    let mut slow = test_backend_options(&["--ready-after-ms", "3000"]);
    slow.idle_timeout = Some(Duration::from_secs(600));
    m.create("loading".parse().unwrap(), slow).await.unwrap();
    m.start("loading").await.unwrap();
    let err = m.start("other").await.unwrap_err();
    assert!(matches!(err, ManagerError::CapacityExhausted { .. }), "{err}");
    assert_eq!(m.get("loading").unwrap().status(), InstanceStatus::Starting, "still loading, untouched");
}

#[tokio::test]
async fn group_limits_evict_within_the_group_only() {
    let t = TestManager::new(|c| {
        c.group_limits.insert("gpu".into(), 1);
    })
    .await;
    let m = &t.manager;
    let in_group = |group: &str| {
        let mut options = evictable();
        options.group = Some(group.into());
        options
    };
    m.create("g1".parse().unwrap(), in_group("gpu")).await.unwrap();
    m.create("g2".parse().unwrap(), in_group("gpu")).await.unwrap();
    m.create("c1".parse().unwrap(), in_group("cpu")).await.unwrap();
    m.create("c2".parse().unwrap(), in_group("cpu")).await.unwrap();
    run(m, "c1").await;
    run(m, "g1").await;
    run(m, "c2").await;
    run(m, "g2").await;
    assert_eq!(m.get("g1").unwrap().last_reason(), Some(&TransitionReason::Evicted { by: "g2".into() }));
    for name in ["c1", "c2", "g2"] {
        assert_eq!(m.get(name).unwrap().status(), InstanceStatus::Running, "{name}");
    }
}

#[tokio::test]
async fn limits_hold_on_manual_on_demand_and_boot_starts() {
    let t = TestManager::new(|c| {
        c.max_running_instances = Some(1);
        c.enable_lru_eviction = false;
    })
    .await;
    let m = &t.manager;
    m.create("first".parse().unwrap(), evictable()).await.unwrap();
    m.create("second".parse().unwrap(), evictable()).await.unwrap();
    run(m, "second").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    run_after_stop(m, "second", "first").await;
    m.start("second").await.unwrap_err();
    // Both want to run; only one may.
    let err = m.ensure_ready("second", Duration::from_secs(5)).await.unwrap_err();
    assert!(err.to_string().contains("LRU eviction is disabled"), "{err}");
    {
        // Make "second" want to run too, as if it had been running when the manager stopped.
        let db = m.database();
        let mut stored = db.get("second").await.unwrap().unwrap();
        stored.runtime.desired_state = llamactl_core::DesiredState::Running;
        db.save_runtime("second", &stored.runtime).await.unwrap();
    }
    m.shutdown().await;
    let TestManager { manager, dir, config, db } = t;
    drop((manager, db));
    let again = open_manager(dir.path(), config).await;
    let running: Vec<String> =
        again.list().into_iter().filter(|i| i.status().holds_slot()).map(|i| i.name.to_string()).collect();
    assert_eq!(running, ["first"], "boot starts within the limit, most recently used first");
    again.shutdown().await;
}

/// Stops `running` and starts `next`.
async fn run_after_stop(m: &Manager, running: &str, next: &str) {
    m.stop(running).await.unwrap();
    run(m, next).await;
}

#[tokio::test]
async fn two_starts_racing_for_one_slot_both_get_an_answer() {
    let t = TestManager::new(|c| c.max_running_instances = Some(1)).await;
    let m = Arc::new(t.manager.clone());
    for name in ["holder", "x", "y"] {
        let mut options = test_backend_options(&["--ready-after-ms", "300"]);
        options.idle_timeout = Some(Duration::from_secs(600));
        m.create(name.parse().unwrap(), options).await.unwrap();
    }
    run(&m, "holder").await;
    let race = |name: &'static str| {
        let m = m.clone();
        tokio::spawn(async move { m.ensure_ready(name, Duration::from_secs(20)).await.map(|_| ()) })
    };
    let (x, y) = (race("x"), race("y"));
    let results = tokio::time::timeout(Duration::from_secs(30), futures::future::join_all([x, y]))
        .await
        .expect("no waiter hangs");
    let outcomes: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    let ok = outcomes.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "one gets the slot: {outcomes:?}");
    let err = outcomes.into_iter().find_map(Result::err).unwrap();
    assert!(matches!(err, ManagerError::CapacityExhausted { .. }), "the other is told at once: {err}");
    assert_eq!(m.running_count(), 1);
}

#[tokio::test]
async fn callers_without_the_right_to_start_or_evict_are_refused() {
    let t = TestManager::new(|c| c.max_running_instances = Some(1)).await;
    let m = &t.manager;
    m.create("running".parse().unwrap(), evictable()).await.unwrap();
    m.create("wanted".parse().unwrap(), evictable()).await.unwrap();
    run(m, "running").await;
    let within = || LeaseRequest::within(Duration::from_secs(5));
    let no_start = Rights { start: false, ..Rights::ALL };
    let err = m.acquire("wanted", within().with_rights(no_start)).await.unwrap_err();
    assert!(matches!(err, ManagerError::MayNotStart { status: InstanceStatus::Stopped, .. }), "{err}");
    // A running instance is served without the right to start.
    drop(m.acquire("running", within().with_rights(no_start)).await.unwrap());
    let no_infer = Rights { infer: false, ..Rights::ALL };
    let err = m.acquire("running", within().with_rights(no_infer)).await.unwrap_err();
    assert!(matches!(err, ManagerError::MayNotUse { .. }), "{err}");

    let no_evict = Rights { evict: false, ..Rights::ALL };
    let err = m.acquire("wanted", within().with_rights(no_evict)).await.unwrap_err();
    assert!(err.to_string().contains("may not evict"), "{err}");
    assert_eq!(m.get("running").unwrap().status(), InstanceStatus::Running, "nothing was evicted");
    let lease = m.acquire("wanted", within()).await.unwrap();
    assert!(lease.waited().is_some(), "it waited for its start");
    drop(lease);
    assert_eq!(m.get("running").unwrap().status(), InstanceStatus::Stopped);
}
