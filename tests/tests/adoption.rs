//! A restarted manager takes over the backends still running — after `kill -9`, or after a
//! shutdown with the `keep` policy — instead of starting them again: same process (or
//! container), no model reloaded, requests served, logs continuing; and it refuses (stopping
//! the backend) what it cannot vouch for.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use llamactl_core::db::EventQuery;
use llamactl_core::manager::ShutdownPolicy;
use llamactl_core::{Database, InstanceStatus, Manager, SqliteDatabase, TransitionReason};
use llamactl_tests::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Starts `names` in a manager of its own process, then kills that manager with SIGKILL;
/// returns the backends' pids.
fn run_and_kill_a_manager(dir: &std::path::Path, config: &llamactl_core::ManagerConfig, names: &[&str]) -> Vec<i32> {
    let range = format!("{}-{}", config.port_range.start(), config.port_range.end());
    let logs = config.logs_dir.clone().unwrap();
    let mut command = Command::new(test_manager_host());
    command
        .args(["--db", db_path(dir).to_str().unwrap(), "--ports", &range, "--logs", logs.to_str().unwrap()])
        .args(["--llama-server", llama_server().to_str().unwrap()]);
    for name in names {
        command.args(["--start", name]);
    }
    let mut host = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(host.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let ready = line.trim().strip_prefix("ready ").unwrap_or_else(|| panic!("manager host not ready: {line:?}"));
    let pids: serde_json::Value = serde_json::from_str(ready).unwrap();
    kill(Pid::from_raw(i32::try_from(host.id()).unwrap()), Signal::SIGKILL).unwrap();
    host.wait().unwrap();
    names.iter().map(|n| i32::try_from(pids[*n].as_i64().unwrap()).unwrap()).collect()
}

fn kinds(events: &[llamactl_core::db::InstanceEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.reason.kind()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_managers_llama_server_is_taken_over_without_a_new_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    {
        let m = open_manager(dir.path(), config.clone()).await;
        m.create("big".parse().unwrap(), llama_options()).await.unwrap();
        m.create("small".parse().unwrap(), test_backend_options(&["--print-env", "MARK"])).await.unwrap();
        m.shutdown().await;
    }
    let pids = run_and_kill_a_manager(dir.path(), &config, &["big", "small"]);
    assert!(pids.iter().all(|p| process_alive(*p)), "the backends outlived their manager");

    let began = std::time::Instant::now();
    let m = open_manager(dir.path(), config.clone()).await;
    let took = began.elapsed();
    for (name, pid) in ["big", "small"].iter().zip(&pids) {
        let info = m.get(name).unwrap();
        assert_eq!(info.status(), InstanceStatus::Running, "{name} is running at once");
        assert_eq!(info.state.runtime.pid, Some(*pid), "{name}: the same process, not a new start");
        let events = m.events(name, EventQuery::default()).await.unwrap();
        assert_eq!(kinds(&events).last(), Some(&"adopted"), "{name}: {:?}", kinds(&events));
        assert_eq!(events.iter().filter(|e| e.reason.kind() == "user_start").count(), 1, "started once, ever");
    }
    println!("boot with 2 adopted backends took {took:?}");

    // It serves, and its log goes on: the request shows up in llama-server's output.
    let lease = m.ensure_ready("big", Duration::from_secs(5)).await.unwrap();
    let (status, body) = chat(&lease.base_url(), None).await;
    assert_chat_completion(status, &body);
    drop(lease);
    let logs = m.logs("big").unwrap();
    let before = logs.tail(10_000).iter().filter(|l| l.text.contains("took over process")).count();
    assert_eq!(before, 1);
    assert!(
        eventually(Duration::from_secs(10), || {
            let lines = logs.tail(10_000);
            let taken = lines.iter().position(|l| l.text.contains("took over process")).unwrap();
            lines[taken..].iter().any(|l| l.text.contains("/v1/chat/completions") || l.text.contains("prompt"))
        })
        .await,
        "new output after the takeover reaches the log"
    );

    // An adopted backend killed later is noticed and restarted by the policy (auto_restart).
    kill(Pid::from_raw(pids[1]), Signal::SIGKILL).unwrap();
    let restarted = wait_state(&m, "small", Duration::from_secs(30), |s| {
        s.runtime.status == InstanceStatus::Running && s.runtime.pid != Some(pids[1])
    })
    .await;
    assert_eq!(restarted.runtime.restart_count, 1);
    let events = m.events("small", EventQuery::default()).await.unwrap();
    assert!(kinds(&events).contains(&"crashed"), "{:?}", kinds(&events));
    m.shutdown().await;
    assert!(!process_alive(pids[0]), "the default shutdown policy stops adopted backends too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keep_policy_leaves_backends_running_for_the_next_manager() {
    let t = TestManager::new(|c| c.shutdown_policy = ShutdownPolicy::Keep).await;
    let m = &t.manager;
    m.create("kept".parse().unwrap(), test_backend_options(&[])).await.unwrap();
    m.create("loading".parse().unwrap(), test_backend_options(&["--ready-after-ms", "2500"])).await.unwrap();
    m.start("kept").await.unwrap();
    let kept = wait_status(m, "kept", InstanceStatus::Running, Duration::from_secs(10)).await;
    m.start("loading").await.unwrap();
    let loading = m.get("loading").unwrap().state;
    assert_eq!(loading.runtime.status, InstanceStatus::Starting);
    t.shutdown().await;
    let (kept_pid, loading_pid) = (kept.runtime.pid.unwrap(), loading.runtime.pid.unwrap());
    assert!(process_alive(kept_pid) && process_alive(loading_pid), "nothing was stopped");
    assert!(port_open(kept.runtime.port.unwrap()));

    let (again, again_db) = open_manager_with_db(t.dir.path(), t.config.clone()).await;
    assert_eq!(again.get("kept").unwrap().state.runtime.pid, Some(kept_pid));
    assert_eq!(again.get("kept").unwrap().status(), InstanceStatus::Running);
    // Still loading when taken over: awaited like a start, then running — the same process.
    assert_eq!(again.get("loading").unwrap().status(), InstanceStatus::Starting);
    let ready = wait_status(&again, "loading", InstanceStatus::Running, Duration::from_secs(10)).await;
    assert_eq!(ready.runtime.pid, Some(loading_pid));
    let lease = again.ensure_ready("kept", Duration::from_secs(1)).await.unwrap();
    let (status, body) = chat(&lease.base_url(), None).await;
    assert_chat_completion(status, &body);
    drop(lease);
    again.stop("kept").await.unwrap();
    assert!(!process_alive(kept_pid), "an adopted backend stops like any other");
    again.shutdown().await;
    llamactl_core::Database::close(again_db.as_ref()).await;
    assert!(process_alive(loading_pid), "keep, again");
    let last = open_manager(t.dir.path(), ManagerConfigExt::stop_policy(&t.config)).await;
    last.shutdown().await;
    assert!(!process_alive(loading_pid));
}

/// The test configuration with the default shutdown policy.
trait ManagerConfigExt {
    fn stop_policy(&self) -> llamactl_core::ManagerConfig;
}

impl ManagerConfigExt for llamactl_core::ManagerConfig {
    fn stop_policy(&self) -> llamactl_core::ManagerConfig {
        llamactl_core::ManagerConfig { shutdown_policy: ShutdownPolicy::Stop, ..self.clone() }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_does_not_answer_is_not_taken_over() {
    let t = TestManager::new(|c| c.shutdown_policy = ShutdownPolicy::Keep).await;
    let m = &t.manager;
    m.create("frozen".parse().unwrap(), test_backend_options(&[])).await.unwrap();
    m.start("frozen").await.unwrap();
    let running = wait_status(m, "frozen", InstanceStatus::Running, Duration::from_secs(10)).await;
    t.shutdown().await;
    let pid = running.runtime.pid.unwrap();
    // Alive, but it answers nothing.
    kill(Pid::from_raw(pid), Signal::SIGSTOP).unwrap();

    let again = open_manager(t.dir.path(), t.config.stop_policy()).await;
    assert!(!process_alive(pid), "it was stopped");
    let events = again.events("frozen", EventQuery::default()).await.unwrap();
    let refused = events.iter().find(|e| e.reason.kind() == "adoption_refused").unwrap();
    assert!(refused.reason.to_string().contains("does not answer"), "{}", refused.reason);
    // Then started anew, as it was meant to run.
    let fresh = wait_status(&again, "frozen", InstanceStatus::Running, Duration::from_secs(10)).await;
    assert_ne!(fresh.runtime.pid, Some(pid));
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_pid_reused_by_another_process_is_neither_adopted_nor_killed() {
    let t = TestManager::new(|_| {}).await;
    t.manager.create("ghost".parse().unwrap(), test_backend_options(&[])).await.unwrap();
    t.shutdown().await;
    // An unrelated process holding a recorded pid, with the very command line the instance would
    // run — but not the start time that was recorded.
    let mut bystander = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = i32::try_from(bystander.id()).unwrap();
    let ticks = procfs::process::Process::new(pid).unwrap().stat().unwrap().starttime;
    let db = SqliteDatabase::open(t.db_path()).await.unwrap();
    let mut runtime = db.get("ghost").await.unwrap().unwrap().runtime;
    runtime.status = InstanceStatus::Running;
    runtime.pid = Some(pid);
    runtime.process_start_ticks = Some(ticks + 1);
    runtime.boot_id = llamactl_core::process::boot_id();
    runtime.port = Some(1);
    runtime.command_hash = llamactl_core::process::running_command_hash(pid);
    runtime.output_path = Some(t.dir.path().join("logs/ghost.output"));
    db.save_runtime("ghost", &runtime).await.unwrap();
    db.close().await;

    let m: Manager = open_manager(t.dir.path(), t.config.clone()).await;
    assert!(process_alive(pid), "not ours: left alone");
    let info = m.get("ghost").unwrap();
    assert_eq!(info.status(), InstanceStatus::Stopped);
    assert_eq!(info.last_reason(), Some(&TransitionReason::ManagerRestarted));
    t.shutdown().await;
    bystander.kill().unwrap();
    bystander.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_restarts_without_unloading_under_the_keep_policy() {
    use llamactl_tests::server::{SpawnedServer, create_instance, server_config};
    let dir = tempfile::tempdir().unwrap();
    let mut config = server_config(dir.path());
    config.server.port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    config.instances.shutdown_policy = ShutdownPolicy::Keep;
    let server = SpawnedServer::start(dir.path(), &config);
    let options = serde_json::json!({
        "backend_type": "custom",
        "backend_options": {"command": test_backend(), "args": ["--host", "{host}", "--port", "{port}"]},
    });
    create_instance(&server.base, "kept", &options).await;
    server.manage(reqwest::Method::POST, "/api/v1/instances/kept/start").send().await.unwrap();
    let running = loop {
        let info: serde_json::Value =
            server.manage(reqwest::Method::GET, "/api/v1/instances/kept").send().await.unwrap().json().await.unwrap();
        if info["status"] == "running" {
            break info;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let pid = i32::try_from(running["pid"].as_i64().unwrap()).unwrap();
    assert!(server.terminate(), "a clean SIGTERM shutdown");
    assert!(process_alive(pid), "the keep policy left the backend running");

    let again = SpawnedServer::start(dir.path(), &config);
    let info: serde_json::Value =
        again.manage(reqwest::Method::GET, "/api/v1/instances/kept").send().await.unwrap().json().await.unwrap();
    assert_eq!((info["status"].as_str(), info["pid"].as_i64()), (Some("running"), Some(i64::from(pid))));
    assert_eq!(info["last_reason"]["kind"], "adopted");
    let answer = again
        .manage(reqwest::Method::POST, "/v1/chat/completions")
        .json(&serde_json::json!({"model": "kept", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    again.manage(reqwest::Method::POST, "/api/v1/instances/kept/stop").send().await.unwrap();
    assert!(!process_alive(pid));
    assert!(again.terminate());
}
