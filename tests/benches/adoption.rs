//! Adoption benchmarks. Prints figures; asserts nothing about time.
//!
//! 1. Boot with 10 llama-server backends left running by a manager killed with SIGKILL: time
//!    from `Manager::open` to every instance serving a chat completion, against a cold start of
//!    the same 10 instances by a fresh manager, measured in the same run.
//! 2. The real server killed with SIGKILL and started again on the same data and port, while a
//!    client sends a chat completion through its proxy every 20 ms (and another straight to the
//!    backend): how many requests fail, for how long, and whether any fails once it is back.
//!
//! Run: `scripts/bench.sh adoption`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use llamactl_core::ManagerConfig;
use llamactl_core::manager::ShutdownPolicy;
use llamactl_tests::server::{MANAGEMENT_KEY, SpawnedServer, create_instance, server_config};
use llamactl_tests::{db_path, llama_options, llama_server, open_manager, test_config, test_manager_host, tiny_gguf};
use serde_json::json;

const INSTANCES: usize = 10;

fn names() -> Vec<String> {
    (0..INSTANCES).map(|i| format!("m{i}")).collect()
}

/// Starts every instance in a manager of its own process, then kills it with SIGKILL.
fn start_and_kill(dir: &std::path::Path, config: &ManagerConfig) {
    let range = format!("{}-{}", config.port_range.start(), config.port_range.end());
    let logs = config.logs_dir.clone().unwrap();
    let mut command = Command::new(test_manager_host());
    command
        .args(["--db", db_path(dir).to_str().unwrap(), "--ports", &range, "--logs", logs.to_str().unwrap()])
        .args(["--llama-server", llama_server().to_str().unwrap()]);
    for name in names() {
        command.args(["--start", &name]);
    }
    let mut host = command.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(host.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("ready "), "{line}");
    host.kill().unwrap();
    host.wait().unwrap();
}

/// Opens a manager and waits until every instance answers a chat completion; returns the time
/// that took and the manager.
async fn serve_all(
    dir: &std::path::Path,
    config: &ManagerConfig,
    start: bool,
) -> (Duration, Duration, llamactl_core::Manager) {
    let began = Instant::now();
    let manager = open_manager(dir, config.clone()).await;
    let opened = began.elapsed();
    let client = reqwest::Client::new();
    let body = json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1});
    let serve = names().into_iter().map(|name| {
        let manager = manager.clone();
        let client = client.clone();
        let body = body.clone();
        async move {
            if start {
                manager.start(&name).await.unwrap();
            }
            let lease = manager.ensure_ready(&name, Duration::from_secs(120)).await.unwrap();
            let answer = client.post(format!("{}/v1/chat/completions", lease.base_url())).json(&body).send().await;
            assert!(answer.unwrap().status().is_success());
        }
    });
    futures::future::join_all(serve).await;
    (opened, began.elapsed(), manager)
}

async fn boot_with_adoption() {
    llamactl_tests::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    {
        let manager = open_manager(dir.path(), config.clone()).await;
        for name in names() {
            manager.create(name.parse().unwrap(), llama_options()).await.unwrap();
        }
        manager.shutdown().await;
    }
    // Baseline: a fresh manager starting the 10 instances cold (models loaded from scratch).
    let (_, cold, manager) = serve_all(dir.path(), &config, true).await;
    manager.shutdown().await;
    // Leave them stopped, as a killed manager would find them... running: start them in a
    // separate manager process and kill it.
    start_and_kill(dir.path(), &config);
    let (opened, adopted, manager) = serve_all(dir.path(), &config, false).await;
    let taken_over = names()
        .iter()
        .filter(|n| manager.get(n).unwrap().state.runtime.last_reason == Some(llamactl_core::TransitionReason::Adopted))
        .count();
    manager.shutdown().await;
    println!("== boot with {INSTANCES} llama-server backends left by a manager killed with SIGKILL");
    println!(
        "instances taken over: {taken_over} of {INSTANCES}; Manager::open (checks, probes, takeover) {:.0} ms",
        opened.as_secs_f64() * 1e3
    );
    println!(
        "open to all serving (ms): adopted {:.0}   cold start of the same instances {:.0}   ratio {:.3}   [target: adopted < 1000]",
        adopted.as_secs_f64() * 1e3,
        cold.as_secs_f64() * 1e3,
        adopted.as_secs_f64() / cold.as_secs_f64()
    );
}

/// Sends a chat completion every 20 ms until `stop`; returns (sent at, succeeded) per request.
async fn probe(url: String, key: Option<&'static str>, stop: Arc<AtomicBool>) -> Vec<(Instant, bool)> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1});
    let mut results = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let mut request = client.post(&url).json(&body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let at = Instant::now();
        let ok = request.send().await.is_ok_and(|r| r.status().is_success());
        results.push((at, ok));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    results
}

async fn server_restart() {
    llamactl_tests::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut config = server_config(dir.path());
    config.server.port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    config.instances.shutdown_policy = ShutdownPolicy::Keep;
    let server = SpawnedServer::start(dir.path(), &config);
    let options = json!({
        "backend_type": "llama_cpp",
        "backend_options": {"model": tiny_gguf(), "ctx_size": 256, "gpu_layers": 0, "threads": 1},
    });
    create_instance(&server.base, "m", &options).await;
    let started = server.manage(reqwest::Method::POST, "/api/v1/instances/m/start").send().await.unwrap();
    assert!(started.status().is_success());
    let mut port = None;
    for _ in 0..600 {
        let info: serde_json::Value =
            server.manage(reqwest::Method::GET, "/api/v1/instances/m").send().await.unwrap().json().await.unwrap();
        if info["status"] == "running" {
            port = info["port"].as_u64();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let backend = format!("http://127.0.0.1:{}/v1/chat/completions", port.unwrap());
    let through = format!("{}/v1/chat/completions", server.base);

    let stop = Arc::new(AtomicBool::new(false));
    let proxied = tokio::spawn(probe(through, Some(MANAGEMENT_KEY), stop.clone()));
    let direct = tokio::spawn(probe(backend, None, stop.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed_at = Instant::now();
    server.kill_hard();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let restarted_at = Instant::now();
    let again = SpawnedServer::start(dir.path(), &config);
    let up_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let proxied = proxied.await.unwrap();
    let direct = direct.await.unwrap();
    let failed: Vec<&(Instant, bool)> = proxied.iter().filter(|(_, ok)| !ok).collect();
    let failed_after = proxied.iter().filter(|(at, ok)| !ok && *at > up_at).count();
    let outage = match (failed.first(), proxied.iter().find(|(at, ok)| *ok && *at > killed_at)) {
        (Some((first, _)), Some((back, _))) => back.duration_since(*first),
        _ => Duration::ZERO,
    };
    let info: serde_json::Value =
        again.manage(reqwest::Method::GET, "/api/v1/instances/m").send().await.unwrap().json().await.unwrap();
    println!(
        "== llamactl-server killed with SIGKILL and started again (policy keep; kill -9 always leads to adoption)"
    );
    println!(
        "server start after the kill: {:.0} ms   instance after restart: {} ({})",
        up_at.duration_since(restarted_at).as_secs_f64() * 1e3,
        info["status"],
        info["last_reason"]["kind"]
    );
    println!(
        "through the proxy: {} requests, {} failed (all while no server listened; {} after it was back); outage {:.0} ms",
        proxied.len(),
        failed.len(),
        failed_after,
        outage.as_secs_f64() * 1e3
    );
    println!(
        "straight to the backend meanwhile: {} requests, {} failed",
        direct.len(),
        direct.iter().filter(|(_, ok)| !ok).count()
    );
    // Leave nothing behind: stop the instance, then the server.
    again.manage(reqwest::Method::POST, "/api/v1/instances/m/stop").send().await.unwrap();
    assert!(again.terminate());
}

#[tokio::main]
async fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-')).unwrap_or_default();
    if "boot".contains(filter.as_str()) {
        boot_with_adoption().await;
    }
    if "server".contains(filter.as_str()) {
        server_restart().await;
    }
}
