//! Faults at the worst moment, with the real server binary on a real SQLite file:
//!
//! - the server killed with SIGKILL in the middle of a burst of 1,000 concurrent creates and
//!   updates: after a restart every acknowledged write is there, as acknowledged; no write is
//!   half there; `PRAGMA integrity_check` and `foreign_key_check` are clean;
//! - backends SIGKILLed at random under load: every request is served or answered 503 with
//!   Retry-After, none hangs, and `/metrics` counts what the clients got;
//! - SIGTERM under load from 24 clients: what is in flight completes, nothing else is cut, no
//!   backend is left running, every status is recorded;
//! - the disk of the logs folder full (a 1 MiB tmpfs): the server keeps serving, says so in
//!   the instance's log and in `/metrics`, recovers when room comes back, and its database
//!   is unharmed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use llamactl_tests::server::{MANAGEMENT_KEY, SpawnedServer, get_json, server_config};
use serde_json::{Value, json};
use sqlx::Connection;

const CREATES: usize = 800;
const UPDATES: usize = 200;
/// The kill comes once this many writes are acknowledged.
const KILL_AFTER: usize = 300;

fn model_path(kind: &str, i: usize) -> String {
    format!("/models/{kind}-{i}.gguf")
}

fn options(model: &str) -> Value {
    json!({
        "backend_type": "llama_cpp",
        "backend_options": {"model": model, "ctx_size": 512},
        "on_demand_start": true,
        "idle_timeout": 5,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// 201 / 200: the server says it is stored.
    Acknowledged,
    /// No answer (the server died first) or an error answer.
    Unknown,
}

async fn send(client: &reqwest::Client, method: reqwest::Method, url: String, body: Value) -> Outcome {
    match client.request(method, url).bearer_auth(MANAGEMENT_KEY).json(&body).send().await {
        Ok(response) if response.status().is_success() => {
            // The acknowledgement is the status line and the whole body.
            if response.bytes().await.is_ok() { Outcome::Acknowledged } else { Outcome::Unknown }
        }
        _ => Outcome::Unknown,
    }
}

async fn list(base: &str) -> BTreeMap<String, Value> {
    let answer = get_json(base, "/api/v1/instances").await;
    answer.as_array().unwrap().iter().map(|i| (i["name"].as_str().unwrap().to_owned(), i.clone())).collect()
}

fn model_of(instance: &Value) -> &str {
    assert!(instance["options_error"].is_null(), "options readable: {instance}");
    instance["options"]["backend_options"]["model"].as_str().unwrap()
}

async fn check_database(path: &std::path::Path) {
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut db).await.unwrap();
    assert_eq!(integrity, "ok");
    let violations: Vec<(String,)> = sqlx::query_as("PRAGMA foreign_key_check").fetch_all(&mut db).await.unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM instances i LEFT JOIN instance_runtime r ON r.instance_id = i.id WHERE r.instance_id IS NULL",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(orphans, 0, "every instance has its runtime row (written in the same transaction)");
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_a_kill_9_during_a_burst_of_1000() {
    llamactl_tests::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = server_config(dir.path());
    let server = SpawnedServer::start(dir.path(), &config);
    let base = server.base.clone();
    let client = reqwest::Client::new();
    for i in 0..UPDATES {
        let url = format!("{base}/api/v1/instances/u-{i:04}");
        let created = send(&client, reqwest::Method::POST, url, options(&model_path("old", i))).await;
        assert_eq!(created, Outcome::Acknowledged);
    }

    // 1,000 writes at once; the server is killed once KILL_AFTER of them are acknowledged.
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let (killed_tx, killed_rx) = tokio::sync::oneshot::channel::<()>();
    let killer = {
        let acknowledged = acknowledged.clone();
        tokio::spawn(async move {
            while acknowledged.load(Ordering::SeqCst) < KILL_AFTER {
                tokio::task::yield_now().await;
            }
            server.kill_hard();
            let _ = killed_tx.send(());
        })
    };
    let mut writes = Vec::new();
    for i in 0..CREATES + UPDATES {
        let (client, base, acknowledged) = (client.clone(), base.clone(), acknowledged.clone());
        writes.push(tokio::spawn(async move {
            let (key, method, url, model) = if i < CREATES {
                let name = format!("c-{i:04}");
                (name.clone(), reqwest::Method::POST, format!("{base}/api/v1/instances/{name}"), model_path("new", i))
            } else {
                let j = i - CREATES;
                let name = format!("u-{j:04}");
                (
                    name.clone(),
                    reqwest::Method::PUT,
                    format!("{base}/api/v1/instances/{name}"),
                    model_path("updated", j),
                )
            };
            let outcome = send(&client, method, url, options(&model)).await;
            if outcome == Outcome::Acknowledged {
                acknowledged.fetch_add(1, Ordering::SeqCst);
            }
            (key, model, outcome)
        }));
    }
    let mut results = Vec::new();
    for write in writes {
        results.push(write.await.unwrap());
    }
    // Every write may have finished before the kill came; the kill must still happen.
    acknowledged.fetch_add(KILL_AFTER, Ordering::SeqCst);
    killer.await.unwrap();
    killed_rx.await.unwrap();
    let acked = results.iter().filter(|(_, _, o)| *o == Outcome::Acknowledged).count();
    assert!(acked >= KILL_AFTER, "{acked} acknowledged");
    assert!(acked < results.len(), "the kill came after the burst: nothing was tested");

    let server = SpawnedServer::start(dir.path(), &config);
    let stored = list(&server.base).await;
    let mut unacknowledged_present = 0;
    for (name, model, outcome) in &results {
        let old = name.strip_prefix("u-").map(|j| model_path("old", j.parse().unwrap()));
        match (outcome, stored.get(name)) {
            (Outcome::Acknowledged, Some(instance)) => {
                assert_eq!(model_of(instance), model, "{name}: acknowledged write stored as acknowledged")
            }
            (Outcome::Acknowledged, None) => panic!("{name}: acknowledged, then lost"),
            // Not acknowledged: either fully there or not at all (an update: old or new).
            (Outcome::Unknown, Some(instance)) => {
                let found = model_of(instance);
                if found == model {
                    unacknowledged_present += 1;
                } else {
                    assert_eq!(Some(found.to_owned()), old, "{name}: neither the old nor the new options");
                }
            }
            (Outcome::Unknown, None) => assert!(old.is_none(), "{name}: an update removed the instance"),
        }
    }
    let expected: usize =
        UPDATES + results.iter().filter(|(n, _, o)| n.starts_with("c-") && *o == Outcome::Acknowledged).count();
    assert!(stored.len() >= expected, "{} stored, {expected} at least", stored.len());
    assert!(stored.len() <= UPDATES + CREATES);
    assert!(stored.keys().all(|n| n.starts_with("c-") || n.starts_with("u-")));
    println!(
        "{acked} of {} writes acknowledged before the kill; {unacknowledged_present} more were stored but not acknowledged",
        results.len()
    );
    assert!(server.terminate());
    check_database(&llamactl_tests::db_path(dir.path())).await;
}

/// A 1 MiB tmpfs mounted for a test's logs folder, unmounted when dropped.
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(path: std::path::PathBuf) -> Self {
        std::fs::create_dir_all(&path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "llamactl-test", path.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs needs root (CAP_SYS_ADMIN); the test suite runs as root in CI");
        Self { path }
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![b'x'; 4096];
        loop {
            if let Err(error) = file.write_all(&block).and_then(|()| file.sync_all()) {
                assert_eq!(error.raw_os_error(), Some(28), "ENOSPC expected: {error}");
                return filler;
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

async fn metric(server: &llamactl_tests::server::TestServer, name: &str) -> f64 {
    let text = server.manage(reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} missing from {text}"))
}

async fn log_lines(server: &llamactl_tests::server::TestServer, name: &str) -> Vec<String> {
    let answer = server.manage(reqwest::Method::GET, &format!("/api/v1/instances/{name}/logs?lines=200")).send().await;
    answer.unwrap().text().await.unwrap().lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_for_the_logs_keeps_the_server_serving_and_is_reported() {
    use llamactl_tests::server::TestServer;
    use reqwest::Method;
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(dir.path().join("logs"));
    let logs = disk.path.clone();
    let server = TestServer::start(move |config| config.instances.logs_dir = Some(logs)).await;
    let options = serde_json::to_value(llamactl_tests::test_backend_options(&[])).unwrap();
    let created = server.manage(Method::POST, "/api/v1/instances/busy").json(&options).send().await.unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let started = server.manage(Method::POST, "/api/v1/instances/busy/start").send().await.unwrap();
    assert!(started.status().is_success());
    for _ in 0..500 {
        let body: Value =
            server.manage(Method::GET, "/api/v1/instances/busy").send().await.unwrap().json().await.unwrap();
        if body["status"] == "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(metric(&server, "llamactl_log_files_failing").await, 0.0);

    let filler = disk.fill();
    // Lines keep coming (the manager's own, on stops and starts): the first ones may still fit
    // in the last page of the log file, later ones cannot reach the disk.
    let mut rounds = 0;
    while metric(&server, "llamactl_log_files_failing").await == 0.0 {
        rounds += 1;
        assert!(rounds < 200, "a full disk was never reported");
        for action in ["stop", "start"] {
            let answer = server.manage(Method::POST, &format!("/api/v1/instances/busy/{action}")).send().await.unwrap();
            assert!(answer.status().is_success(), "{action}: {}", answer.text().await.unwrap());
        }
    }
    let stopped = server.manage(Method::POST, "/api/v1/instances/busy/stop").send().await.unwrap();
    assert!(stopped.status().is_success());
    assert_eq!(metric(&server, "llamactl_log_files_failing").await, 1.0, "the condition is reported");
    let lines = log_lines(&server, "busy").await;
    assert!(lines.iter().any(|l| l.contains("cannot write log file") && l.contains("No space left")), "{lines:#?}");

    // The server keeps serving: reads, writes to its database (not on the full disk), proxying.
    let second = server.manage(Method::POST, "/api/v1/instances/other").json(&options).send().await.unwrap();
    assert_eq!(second.status().as_u16(), 201, "{}", second.text().await.unwrap());
    let listed: Value = server.manage(Method::GET, "/api/v1/instances").send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(server.manage(Method::GET, "/health").send().await.unwrap().status().is_success());

    // Room again: the next line reaches the file and the report clears.
    std::fs::remove_file(filler).unwrap();
    let started = server.manage(Method::POST, "/api/v1/instances/busy/start").send().await.unwrap();
    assert!(started.status().is_success());
    assert_eq!(metric(&server, "llamactl_log_files_failing").await, 0.0);
    let lines = log_lines(&server, "busy").await;
    assert!(lines.iter().any(|l| l.contains("can be written again")), "{lines:#?}");
    let data = server.stop().await;
    drop(disk);
    check_database(&llamactl_tests::db_path(data.path())).await;
}

/// Sum of a Prometheus counter's samples whose labels contain `filter`.
fn counter_sum(metrics: &str, name: &str, filter: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_killed_at_random_under_load_never_hang_a_request_and_metrics_match() {
    use std::time::{Duration, Instant};
    const INSTANCES: usize = 3;
    const CLIENTS: usize = 12;
    llamactl_tests::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = server_config(dir.path());
    let server = SpawnedServer::start(dir.path(), &config);
    let base = server.base.clone();
    for i in 0..INSTANCES {
        let mut options =
            serde_json::to_value(llamactl_tests::test_backend_options(&["--response-delay-ms", "10"])).unwrap();
        options["on_demand_start"] = json!(true);
        options["auto_restart"] = json!(true);
        options["max_restarts"] = json!(10_000);
        options["restart_delay"] = json!(0);
        llamactl_tests::server::create_instance(&base, &format!("k{i}"), &options).await;
    }
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let until = Instant::now() + Duration::from_secs(6);
    let killer = {
        let base = base.clone();
        tokio::spawn(async move {
            let mut kills = 0;
            let mut i = 0;
            while Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(150)).await;
                let name = format!("k{}", i % INSTANCES);
                i += 1;
                let info = get_json(&base, &format!("/api/v1/instances/{name}")).await;
                if let Some(pid) = info["pid"].as_i64().filter(|_| info["status"] == "running") {
                    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap());
                    if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).is_ok() {
                        kills += 1;
                    }
                }
            }
            kills
        })
    };
    let mut loads = Vec::new();
    for c in 0..CLIENTS {
        let (client, base) = (client.clone(), base.clone());
        loads.push(tokio::spawn(async move {
            let mut outcomes: Vec<Result<(u16, bool, String), String>> = Vec::new();
            let mut n = c;
            while Instant::now() < until {
                let body =
                    json!({"model": format!("k{}", n % INSTANCES), "messages": [{"role": "user", "content": "hi"}]});
                n += 1;
                let outcome = match client
                    .post(format!("{base}/v1/chat/completions"))
                    .bearer_auth(MANAGEMENT_KEY)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let retry_after = response.headers().contains_key("retry-after");
                        match response.text().await {
                            Ok(text) => Ok((status, retry_after, text)),
                            Err(error) => Err(format!("body cut: {error}")),
                        }
                    }
                    Err(error) => Err(format!("no answer (a hang shows as a timeout): {error}")),
                };
                outcomes.push(outcome);
            }
            outcomes
        }));
    }
    let mut outcomes = Vec::new();
    for load in loads {
        outcomes.extend(load.await.unwrap());
    }
    let kills = killer.await.unwrap();
    let (mut ok, mut unavailable, mut unreachable_answers) = (0, 0, 0);
    for outcome in &outcomes {
        match outcome {
            Ok((200, _, _)) => ok += 1,
            Ok((503, true, text)) => {
                unavailable += 1;
                if text.contains("backend_unreachable") {
                    unreachable_answers += 1;
                }
            }
            other => panic!("neither served nor 503 with Retry-After: {other:?}"),
        }
    }
    assert!(kills >= 10, "only {kills} kills");
    assert!(ok > 0);
    let metrics =
        client.get(format!("{base}/metrics")).bearer_auth(MANAGEMENT_KEY).send().await.unwrap().text().await.unwrap();
    let served = counter_sum(&metrics, "llamactl_proxy_requests_total", "status=\"200\"");
    assert_eq!(served, f64::from(ok), "requests_total{{status=200}} counts what clients got:\n{metrics}");
    let unreachable = counter_sum(&metrics, "llamactl_proxy_errors_total", "");
    assert!(
        unreachable >= f64::from(unreachable_answers),
        "{unreachable} backend failures counted, {unreachable_answers} answered 503 backend_unreachable"
    );
    println!(
        "{} requests: {ok} served, {unavailable} answered 503 with Retry-After; {kills} backends killed; {unreachable} backend failures counted (resent once each)",
        outcomes.len()
    );
    assert!(server.terminate());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_what_is_in_flight_and_leaves_nothing_running() {
    use std::time::Duration;
    const INSTANCES: usize = 3;
    const CLIENTS: usize = 24;
    llamactl_tests::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let server = SpawnedServer::start(dir.path(), &server_config(dir.path()));
    let base = server.base.clone();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut pids = Vec::new();
    for i in 0..INSTANCES {
        let name = format!("s{i}");
        let options =
            serde_json::to_value(llamactl_tests::test_backend_options(&["--response-delay-ms", "300"])).unwrap();
        llamactl_tests::server::create_instance(&base, &name, &options).await;
        let started =
            client.post(format!("{base}/api/v1/instances/{name}/start")).bearer_auth(MANAGEMENT_KEY).send().await;
        assert!(started.unwrap().status().is_success());
    }
    for i in 0..INSTANCES {
        let info = loop {
            let info = get_json(&base, &format!("/api/v1/instances/s{i}")).await;
            if info["status"] == "running" {
                break info;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        pids.push(i32::try_from(info["pid"].as_i64().unwrap()).unwrap());
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loads = Vec::new();
    for c in 0..CLIENTS {
        let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
        loads.push(tokio::spawn(async move {
            let mut outcomes: Vec<Result<u16, String>> = Vec::new();
            let mut n = c;
            while !stop.load(Ordering::SeqCst) {
                let body =
                    json!({"model": format!("s{}", n % INSTANCES), "messages": [{"role": "user", "content": "hi"}]});
                n += 1;
                let sent = client
                    .post(format!("{base}/v1/chat/completions"))
                    .bearer_auth(MANAGEMENT_KEY)
                    .json(&body)
                    .send()
                    .await;
                outcomes.push(match sent {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        match response.text().await {
                            Ok(_) => Ok(status),
                            Err(error) => Err(format!("answer cut: {error}")),
                        }
                    }
                    // After the listener closed: refused, never sent. Nothing else is acceptable.
                    Err(error) if error.is_connect() => break,
                    Err(error) => Err(format!("no answer: {error}")),
                });
            }
            outcomes
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let exited = tokio::task::spawn_blocking(move || server.terminate());
    let clean = exited.await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let mut outcomes = Vec::new();
    for load in loads {
        outcomes.extend(load.await.unwrap());
    }
    assert!(clean, "clean exit");
    let served = outcomes.iter().filter(|o| matches!(o, Ok(200))).count();
    for outcome in &outcomes {
        // In flight at the signal: completed. Arriving during the stop: 503 (with Retry-After).
        assert!(matches!(outcome, Ok(200 | 503)), "{outcome:?}");
    }
    assert!(served >= CLIENTS, "{served} served");
    for pid in pids {
        assert!(!llamactl_tests::process_alive(pid), "backend {pid} left running");
    }
    let db = llamactl_core::SqliteDatabase::open(llamactl_tests::db_path(dir.path())).await.unwrap();
    for i in 0..INSTANCES {
        let stored = llamactl_core::Database::get(&db, &format!("s{i}")).await.unwrap().unwrap();
        assert_eq!(stored.runtime.status, llamactl_core::InstanceStatus::Stopped);
        assert_eq!(stored.runtime.last_reason, Some(llamactl_core::TransitionReason::Shutdown));
        assert_eq!(stored.runtime.desired_state, llamactl_core::DesiredState::Running, "comes back on the next start");
    }
    println!("{} requests: {served} served, the rest answered 503 during the stop", outcomes.len());
}
