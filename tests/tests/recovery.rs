//! The manager dropped, shut down or killed, and rebuilt on the same database file.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use llamactl_core::{Database, DesiredState, InstanceStatus, SqliteDatabase, TransitionReason};
use llamactl_tests::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[tokio::test]
async fn a_manager_rebuilt_on_the_same_file_reloads_everything() {
    let t = TestManager::new(|_| {}).await;
    let m = &t.manager;
    let mut kept = test_backend_options(&["--log-lines", "2"]);
    kept.idle_timeout = Some(Duration::from_secs(90));
    kept.environment.insert("MARK".into(), "1".into());
    m.create("runs".parse().unwrap(), kept.clone()).await.unwrap();
    m.create("rests".parse().unwrap(), test_backend_options(&[])).await.unwrap();
    m.start("runs").await.unwrap();
    let before = wait_status(m, "runs", InstanceStatus::Running, Duration::from_secs(10)).await;
    m.shutdown().await;
    assert!(!process_alive(before.runtime.pid.unwrap()), "shutdown stops the backend");
    let TestManager { manager, dir, config, db } = t;
    drop((manager, db));

    let again = open_manager(dir.path(), config).await;
    let names: Vec<String> = again.list().iter().map(|i| i.name.to_string()).collect();
    assert_eq!(names, ["rests", "runs"]);
    let runs = again.get("runs").unwrap();
    assert_eq!(**runs.state.options.as_ref().unwrap(), kept, "options unchanged");
    assert_eq!(runs.state.runtime.desired_state, DesiredState::Running);
    let after = wait_status(&again, "runs", InstanceStatus::Running, Duration::from_secs(10)).await;
    assert_ne!(after.runtime.pid, before.runtime.pid, "started again at boot");
    assert_eq!(again.get("rests").unwrap().status(), InstanceStatus::Stopped);
    // The log of the previous run is still readable before anything new is written.
    let log = again.logs("rests").unwrap();
    assert!(log.tail(10).is_empty());
    let old_lines = again.logs("runs").unwrap().tail(1000);
    assert!(old_lines.iter().any(|l| l.text == "log line 1"));

    let events = again.events("runs", Default::default()).await.unwrap();
    let reasons: Vec<&str> = events.iter().map(|e| e.reason.kind()).collect();
    assert_eq!(reasons, ["user_start", "ready", "shutdown", "shutdown", "boot", "ready"]);
    again.shutdown().await;
}

#[tokio::test]
async fn a_leftover_that_cannot_be_taken_over_is_stopped_before_its_port_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    {
        let m = open_manager(dir.path(), config.clone()).await;
        m.create("left".parse().unwrap(), llama_options()).await.unwrap();
    }
    // A manager in its own process starts the instance, then dies without any cleanup.
    let range = format!("{}-{}", config.port_range.start(), config.port_range.end());
    let logs = config.logs_dir.clone().unwrap();
    let mut host = Command::new(test_manager_host())
        .args(["--db", db_path(dir.path()).to_str().unwrap(), "--ports", &range, "--start", "left"])
        .args(["--llama-server", llama_server().to_str().unwrap(), "--logs", logs.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(host.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let ready =
        line.trim().strip_prefix("ready ").unwrap_or_else(|| panic!("manager host did not get ready: {line:?}"));
    let pids: serde_json::Value = serde_json::from_str(ready).unwrap();
    let orphan = i32::try_from(pids["left"].as_i64().unwrap()).unwrap();
    kill(Pid::from_raw(i32::try_from(host.id()).unwrap()), Signal::SIGKILL).unwrap();
    host.wait().unwrap();
    assert!(process_alive(orphan), "the backend outlived its manager (own session and process group)");
    let db = SqliteDatabase::open(db_path(dir.path())).await.unwrap();
    let stored = db.get("left").await.unwrap().unwrap();
    assert_eq!((stored.runtime.status, stored.runtime.pid), (InstanceStatus::Running, Some(orphan)));
    assert!(port_open(stored.runtime.port.unwrap()));
    // Its options change while no manager runs: what runs is no longer what should run.
    let mut changed = stored.options.unwrap();
    if let llamactl_core::BackendOptions::LlamaCpp(llama) = &mut changed.backend {
        llama.ctx_size = Some(256);
    }
    db.save(&"left".parse().unwrap(), &changed).await.unwrap();
    db.close().await;

    let m = open_manager(dir.path(), config).await;
    assert!(!process_alive(orphan), "the leftover is stopped during boot");
    let events = m.events("left", Default::default()).await.unwrap();
    let refused = events.iter().find(|e| e.reason.kind() == "adoption_refused").unwrap();
    assert_eq!((refused.from, refused.to), (InstanceStatus::Running, InstanceStatus::Stopped));
    assert!(refused.reason.to_string().contains("options changed"), "{}", refused.reason);
    // Then it runs again (its desired state), on a port that is really free.
    let running = wait_status(&m, "left", InstanceStatus::Running, Duration::from_secs(60)).await;
    assert_ne!(running.runtime.pid, Some(orphan));
    let lease = m.ensure_ready("left", Duration::from_secs(5)).await.unwrap();
    let (status, body) = chat(&lease.base_url(), None).await;
    assert_chat_completion(status, &body);
    drop(lease);
    m.shutdown().await;
}

#[tokio::test]
async fn a_recorded_pid_now_used_by_another_process_is_never_killed() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    {
        let (m, db) = open_manager_with_db(dir.path(), config.clone()).await;
        m.create("ghost".parse().unwrap(), test_backend_options(&[])).await.unwrap();
        llamactl_core::Database::close(db.as_ref()).await;
    }
    // An unrelated process that happens to have the recorded pid (same pid, other start time).
    let mut bystander = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = i32::try_from(bystander.id()).unwrap();
    let ticks = procfs::process::Process::new(pid).unwrap().stat().unwrap().starttime;
    let db = SqliteDatabase::open(db_path(dir.path())).await.unwrap();
    let mut runtime = db.get("ghost").await.unwrap().unwrap().runtime;
    runtime.status = InstanceStatus::Running;
    runtime.pid = Some(pid);
    runtime.process_start_ticks = Some(ticks + 1);
    runtime.boot_id = llamactl_core::process::boot_id();
    runtime.port = Some(1);
    db.save_runtime("ghost", &runtime).await.unwrap();
    db.close().await;

    let m = open_manager(dir.path(), config).await;
    assert!(process_alive(pid), "not ours: left alone");
    let info = m.get("ghost").unwrap();
    assert_eq!(info.status(), InstanceStatus::Stopped);
    assert_eq!(info.last_reason(), Some(&TransitionReason::ManagerRestarted));
    assert_eq!(info.state.runtime.pid, None);
    bystander.kill().unwrap();
    bystander.wait().unwrap();
}

#[tokio::test]
async fn dropping_the_manager_without_shutdown_leaves_no_process() {
    let t = TestManager::new(|_| {}).await;
    t.manager.create("d".parse().unwrap(), test_backend_options(&["--spawn-child"])).await.unwrap();
    t.manager.start("d").await.unwrap();
    let running = wait_status(&t.manager, "d", InstanceStatus::Running, Duration::from_secs(10)).await;
    let pid = running.runtime.pid.unwrap();
    let TestManager { manager, dir: _dir, .. } = t;
    drop(manager);
    assert!(
        eventually(Duration::from_secs(10), || !llamactl_core::process::group_alive(pid)).await,
        "the backend's group is killed when the manager goes away"
    );
}
