//! Manager behaviour that needs no HTTP backend. Lifecycle, limits and faults against real
//! and purpose-built backends are in the workspace's `tests/` crate.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::{DesiredState, InstanceOptions, InstanceStatus, SqliteDatabase};

fn options(value: serde_json::Value) -> InstanceOptions {
    InstanceOptions::from_json_value(&value).unwrap()
}

/// A custom backend running `/bin/sh -c script`.
fn shell(script: &str) -> InstanceOptions {
    options(json!({"backend_type": "custom", "backend_options": {"command": "/bin/sh", "args": ["-c", script]}}))
}

fn fast_config() -> ManagerConfig {
    ManagerConfig {
        stop_grace: Duration::from_secs(2),
        kill_timeout: Duration::from_secs(2),
        port_range: 31_000..=31_999,
        ..ManagerConfig::default()
    }
}

async fn manager() -> Manager {
    let db = Arc::new(SqliteDatabase::open_in_memory().await.unwrap());
    Manager::open(fast_config(), db).await.unwrap()
}

fn name(s: &str) -> InstanceName {
    s.parse().unwrap()
}

#[tokio::test]
async fn create_validates_and_names_the_field() {
    let manager = manager().await;
    let err = manager.create(name("v"), options(json!({"backend_type": "vllm"}))).await.unwrap_err();
    assert!(matches!(&err, ManagerError::InvalidOptions(e) if e.field() == "backend_options.model"), "{err}");
    assert!(manager.list().is_empty(), "nothing was created");

    manager.create(name("a"), shell("true")).await.unwrap();
    let err = manager.create(name("a"), shell("true")).await.unwrap_err();
    assert!(matches!(err, ManagerError::AlreadyExists(_)), "{err}");
}

#[tokio::test]
async fn a_pinned_port_belongs_to_one_instance() {
    let manager = manager().await;
    let pinned =
        |port: u16| options(json!({"backend_type": "llama_cpp", "backend_options": {"model": "/m", "port": port}}));
    manager.create(name("a"), pinned(31_424)).await.unwrap();
    let err = manager.create(name("b"), pinned(31_424)).await.unwrap_err();
    assert!(err.to_string().contains("already pinned by instance a"), "{err}");
    assert!(manager.get("b").is_err());
    // Moving a's pin frees the old port for others.
    manager.update("a", pinned(31_425)).await.unwrap();
    manager.create(name("b"), pinned(31_424)).await.unwrap();
    // Deleting releases a pin.
    manager.delete("a").await.unwrap();
    manager.create(name("c"), pinned(31_425)).await.unwrap();
}

#[tokio::test]
async fn an_exit_while_starting_fails_with_the_last_output() {
    let manager = manager().await;
    manager.create(name("bad"), shell("echo 'error: model file not found' >&2; exit 7")).await.unwrap();
    let err = manager.ensure_ready("bad", Duration::from_secs(10)).await.unwrap_err();
    let ManagerError::StartFailed { reason, detail, .. } = &err else { panic!("{err}") };
    assert_eq!(reason, &TransitionReason::StartupExited { exit: crate::ExitInfo { code: Some(7), signal: None } });
    assert!(detail.contains("error: model file not found"), "{detail}");
    let info = manager.get("bad").unwrap();
    assert_eq!(info.status(), InstanceStatus::Failed);
    assert!(info.state.runtime.last_error.unwrap().contains("model file not found"));
    assert_eq!(manager.running_count(), 0, "a failed instance holds no slot");
}

#[tokio::test]
async fn a_backend_that_never_answers_times_out_and_is_killed() {
    let manager = manager().await;
    let mut never = shell("echo loading; exec sleep 60");
    never.startup_timeout = Some(Duration::from_millis(300));
    manager.create(name("slow"), never).await.unwrap();
    let info = manager.start("slow").await.unwrap();
    let pid = info.state.runtime.pid.unwrap();
    let mut state = manager.subscribe("slow").unwrap();
    let failed =
        tokio::time::timeout(Duration::from_secs(10), state.wait_for(|s| s.runtime.status == InstanceStatus::Failed))
            .await
            .unwrap()
            .unwrap()
            .clone();
    assert!(matches!(failed.runtime.last_reason, Some(TransitionReason::HealthTimeout { after_ms: 300 })));
    assert!(failed.runtime.last_error.unwrap().contains("loading"));
    assert!(!crate::process::group_alive(pid), "the hung backend is gone");
    let kinds: Vec<_> =
        manager.events("slow", EventQuery::default()).await.unwrap().iter().map(|e| e.reason.kind()).collect();
    assert_eq!(kinds, ["user_start", "health_timeout"]);
}

#[tokio::test]
async fn instances_that_cannot_run_here_say_why() {
    let manager = manager().await;
    // A custom backend in a container needs an image; nothing reaches the engine without one.
    let mut docker = shell("true");
    docker.docker_enabled = Some(true);
    manager.create(name("d"), docker).await.unwrap();
    let err = manager.start("d").await.unwrap_err();
    assert!(err.to_string().contains("docker.image: no image for a custom container"), "{err}");
    assert!(matches!(manager.get("d").unwrap().state.runtime.last_reason, Some(TransitionReason::Refused { .. })));

    let mut remote = shell("true");
    remote.nodes = vec!["gpu-box".into()];
    manager.create(name("r"), remote).await.unwrap();
    let err = manager.start("r").await.unwrap_err();
    assert!(err.to_string().contains("nodes: assigned to gpu-box"), "{err}");

    let missing = options(json!({"backend_type": "custom", "backend_options": {"command": "/nonexistent/server"}}));
    manager.create(name("m"), missing).await.unwrap();
    let err = manager.start("m").await.unwrap_err();
    assert!(err.to_string().contains("/nonexistent/server"), "{err}");
    assert_eq!(manager.get("m").unwrap().status(), InstanceStatus::Failed);
}

#[tokio::test]
async fn on_demand_start_off_is_respected() {
    let manager = manager().await;
    let mut off = shell("sleep 60");
    off.on_demand_start = Some(false);
    manager.create(name("off"), off).await.unwrap();
    let err = manager.ensure_ready("off", Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(err, ManagerError::NotRunning { .. }), "{err}");
    assert_eq!(manager.get("off").unwrap().status(), InstanceStatus::Stopped);
}

#[tokio::test]
async fn a_waiter_deadline_does_not_stop_the_start() {
    let manager = manager().await;
    manager.create(name("s"), shell("exec sleep 60")).await.unwrap();
    let err = manager.ensure_ready("s", Duration::from_millis(200)).await.unwrap_err();
    assert!(matches!(err, ManagerError::Timeout { status: InstanceStatus::Starting, .. }), "{err}");
    assert_eq!(manager.get("s").unwrap().status(), InstanceStatus::Starting, "still starting for others");
    manager.stop("s").await.unwrap();
    assert_eq!(manager.get("s").unwrap().status(), InstanceStatus::Stopped);
}

#[tokio::test]
async fn shutdown_stops_everything_and_refuses_new_work() {
    let manager = manager().await;
    manager.create(name("a"), shell("exec sleep 60")).await.unwrap();
    let pid = manager.start("a").await.unwrap().state.runtime.pid.unwrap();
    manager.shutdown().await;
    assert!(!crate::process::group_alive(pid));
    let info = manager.get("a").unwrap();
    assert_eq!(info.status(), InstanceStatus::Stopped);
    assert_eq!(info.state.runtime.desired_state, DesiredState::Running, "comes back on the next boot");
    assert!(matches!(manager.start("a").await, Err(ManagerError::ShuttingDown)));
}

#[tokio::test]
async fn invalid_configuration_is_rejected() {
    let db = Arc::new(SqliteDatabase::open_in_memory().await.unwrap());
    #[allow(clippy::reversed_empty_ranges)]
    let config = ManagerConfig { port_range: 9000..=8000, ..ManagerConfig::default() };
    let err = Manager::open(config, db).await.unwrap_err();
    assert!(err.to_string().contains("port_range"), "{err}");
}

#[tokio::test]
async fn a_stopped_instance_holds_no_task_and_wakes_on_a_command() {
    let manager = manager().await;
    manager.create(name("a"), shell("sleep 30")).await.unwrap();
    let handle = manager.handle("a").unwrap();
    assert!(!handle.mailbox.is_awake(), "a created instance has no actor yet");
    manager.start("a").await.unwrap();
    assert!(handle.mailbox.is_awake(), "a started instance has its actor");
    manager.stop("a").await.unwrap();
    // The actor retires once it has nothing left to do.
    let mut asleep = false;
    for _ in 0..200 {
        if !handle.mailbox.is_awake() {
            asleep = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(asleep, "a stopped instance's actor retires");
    let info = manager.get("a").unwrap();
    assert_eq!(info.status(), InstanceStatus::Stopped);
    assert_eq!(info.state.runtime.desired_state, DesiredState::Stopped);
    // The next command wakes a new actor that starts from the published state.
    manager.start("a").await.unwrap();
    assert_eq!(manager.get("a").unwrap().state.attempt, 2, "the attempt count carried over");
    manager.delete("a").await.unwrap();
    assert!(matches!(handle.ask(|reply| Command::Delete { reply }).await, Err(ManagerError::NotFound(_))));
}

#[tokio::test]
async fn concurrent_creates_at_max_instances_cannot_all_pass() {
    let db = Arc::new(SqliteDatabase::open_in_memory().await.unwrap());
    let manager = Manager::open(ManagerConfig { max_instances: Some(5), ..fast_config() }, db).await.unwrap();
    manager.create(name("first"), shell("true")).await.unwrap();
    let creates = (0..20).map(|i| manager.create(name(&format!("c{i}")), shell("true")));
    let results = futures::future::join_all(creates).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 4, "one existed, four more fit under the limit of five");
    for error in results.into_iter().filter_map(Result::err) {
        assert!(matches!(error, ManagerError::InstanceLimit { max: 5 }), "{error}");
        assert_eq!(error.to_string(), "max_instances (5) reached");
    }
    assert_eq!(manager.len(), 5);
    // A delete makes room again.
    manager.delete("first").await.unwrap();
    manager.create(name("again"), shell("true")).await.unwrap();
    assert_eq!(manager.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_racing_the_actors_retirement_are_all_answered() {
    let manager = manager().await;
    manager.create(name("a"), shell("sleep 30")).await.unwrap();
    // Every stop of a stopped instance wakes an actor that retires right after answering: the
    // posts of the other tasks keep landing while it decides to retire.
    let loops = (0..8).map(|_| {
        let manager = manager.clone();
        tokio::spawn(async move {
            for _ in 0..300 {
                manager.stop("a").await.unwrap();
            }
        })
    });
    for result in futures::future::join_all(loops).await {
        result.unwrap();
    }
    assert_eq!(manager.get("a").unwrap().status(), InstanceStatus::Stopped);
}
