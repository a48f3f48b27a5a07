//! Readiness benchmarks. Prints figures; asserts nothing about time.
//!
//! 1. Readiness detection lag: from the moment the backend's readiness endpoint first answers
//!    (seen by an independent poller probing every millisecond) to the moment the manager
//!    reports `running`.
//! 2. Start overhead: the manager's start-to-ready minus the bare backend's spawn-to-ready
//!    (same command line, polled every millisecond), measured alternately in the same run.
//!    Also for a custom backend on Python's `http.server` with HTTP/1.1 keep-alive, which
//!    writes headers and body apart: on a reused connection each reply would wait for a
//!    delayed ACK (about 40 ms).
//! 3. The same for a container (the test backend in a locally built image): the manager's
//!    start-to-ready against creating and starting the same container straight through the
//!    Engine API.
//!
//! Run: `scripts/bench.sh readiness` (or, with the backends' env sourced,
//! `cargo bench -p llamactl-tests --bench readiness`). `LLAMACTL_BENCH_ITERATIONS` sets the
//! number of rounds (default 20).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use llamactl_core::backend::{Listen, build_command};
use llamactl_core::readiness::{ReadinessProbe, Uri};
use llamactl_core::{InstanceOptions, InstanceStatus, Manager};
use llamactl_tests::{TestManager, llama_options, test_backend_options, wait_status};
use tokio::time::Instant;

/// Probes `port` every millisecond until it answers 200; returns when it did.
async fn first_answer(port: u16, path: &str) -> Instant {
    let probe = ReadinessProbe::new();
    let uri: Uri = format!("http://127.0.0.1:{port}{path}").parse().unwrap();
    loop {
        if probe.check(&uri, Duration::from_millis(500)).await {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

struct Round {
    lag_ms: f64,
    managed_ms: f64,
    bare_ms: f64,
}

async fn managed_round(m: &Manager, name: &str) -> (f64, f64) {
    let t0 = Instant::now();
    let started = m.start(name).await.unwrap();
    let port = started.state.runtime.port.unwrap();
    let poller = tokio::spawn(async move { first_answer(port, "/health").await });
    let mut state = m.subscribe(name).unwrap();
    state.wait_for(|s| s.runtime.status == InstanceStatus::Running).await.unwrap();
    let running = Instant::now();
    let first = poller.await.unwrap();
    m.stop(name).await.unwrap();
    let lag = running.saturating_duration_since(first).as_secs_f64() * 1e3
        - first.saturating_duration_since(running).as_secs_f64() * 1e3;
    (lag, (running - t0).as_secs_f64() * 1e3)
}

async fn bare_round(options: &InstanceOptions, settings: &llamactl_core::backend::BackendsSettings, port: u16) -> f64 {
    let listen = Listen { host: "127.0.0.1".into(), port };
    let command = build_command("bare", options, settings, &listen).unwrap();
    let t0 = Instant::now();
    let mut child = tokio::process::Command::new(&command.program)
        .args(&command.args)
        .envs(&command.environment)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let ready = first_answer(port, "/health").await;
    child.kill().await.unwrap();
    (ready - t0).as_secs_f64() * 1e3
}

/// Creates and starts the container the manager would run, under another name and on
/// `port`, straight through the Engine API; returns the time to its first answer.
async fn bare_container_round(
    m: &Manager,
    options: &InstanceOptions,
    backends: &llamactl_core::backend::BackendsSettings,
    port: u16,
) -> f64 {
    use llamactl_core::docker::spec::{ContainerNetwork, create_body};
    let listen = Listen { host: "127.0.0.1".into(), port };
    let launch =
        llamactl_core::runtime::Launch { name: "bench-bare", options, listen: &listen, backends, output: None };
    let mut spec = m.docker().container_spec(launch).unwrap();
    spec.name = format!("{}-bare", spec.name);
    spec.labels.clear();
    spec.network = ContainerNetwork::Publish { host_ip: "127.0.0.1".into(), host_port: port, container_port: port };
    let docker = llamactl_tests::docker_images::docker().await;
    let t0 = Instant::now();
    let create = bollard::query_parameters::CreateContainerOptionsBuilder::default().name(&spec.name).build();
    let created = docker.create_container(Some(create), create_body(&spec)).await.unwrap();
    docker.start_container(&created.id, None).await.unwrap();
    let ready = first_answer(port, "/health").await;
    let remove = bollard::query_parameters::RemoveContainerOptionsBuilder::default().force(true).build();
    docker.remove_container(&created.id, Some(remove)).await.unwrap();
    (ready - t0).as_secs_f64() * 1e3
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

async fn bench(label: &str, options: InstanceOptions, iterations: usize) {
    let t = TestManager::new(|_| {}).await;
    let m = &t.manager;
    m.create("bench".parse().unwrap(), options.clone()).await.unwrap();
    // Warm up (page cache, first spawn).
    m.start("bench").await.unwrap();
    wait_status(m, "bench", InstanceStatus::Running, Duration::from_secs(60)).await;
    m.stop("bench").await.unwrap();
    let bare_port = *t.config.port_range.end();

    let in_container = t.config.docker.wanted(&options);
    let mut rounds = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let (lag_ms, managed_ms) = managed_round(m, "bench").await;
        let bare_ms = if in_container {
            bare_container_round(m, &options, &t.config.backends, bare_port).await
        } else {
            bare_round(&options, &t.config.backends, bare_port).await
        };
        rounds.push(Round { lag_ms, managed_ms, bare_ms });
    }
    let lag: Vec<f64> = rounds.iter().map(|r| r.lag_ms).collect();
    let managed: Vec<f64> = rounds.iter().map(|r| r.managed_ms).collect();
    let bare: Vec<f64> = rounds.iter().map(|r| r.bare_ms).collect();
    let overhead: Vec<f64> = rounds.iter().map(|r| r.managed_ms - r.bare_ms).collect();
    println!("== {label}: {iterations} rounds, readiness interval {:?}", t.config.readiness_interval);
    println!(
        "readiness detection lag (ms): median {:.1}  p90 {:.1}  max {:.1}   [target: median < 30]",
        percentile(&lag, 0.5),
        percentile(&lag, 0.9),
        percentile(&lag, 1.0)
    );
    println!(
        "start-to-ready (ms): managed median {:.1}  bare median {:.1}  ratio {:.2}",
        percentile(&managed, 0.5),
        percentile(&bare, 0.5),
        percentile(&managed, 0.5) / percentile(&bare, 0.5)
    );
    println!(
        "start overhead, managed minus bare (ms): median {:.1}  p90 {:.1}   [target: < 50]",
        percentile(&overhead, 0.5),
        percentile(&overhead, 0.9)
    );
    m.shutdown().await;
}

#[tokio::main]
async fn main() {
    let iterations = std::env::var("LLAMACTL_BENCH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    // `cargo bench` passes `--bench`; a filter argument selects a part.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-')).unwrap_or_default();
    if "llama-server".contains(filter.as_str()) {
        bench("llama-server (tiny GGUF)", llama_options(), iterations).await;
    }
    if "test-backend".contains(filter.as_str()) {
        bench("test backend (ready after 50 ms)", test_backend_options(&["--ready-after-ms", "50"]), iterations).await;
    }
    if "python-keepalive".contains(filter.as_str()) {
        let options = llamactl_tests::keepalive_backend_options(&["--ready-after-ms", "50"]);
        bench("Python http.server, HTTP/1.1 keep-alive (ready after 50 ms)", options, iterations).await;
    }
    if "container".contains(filter.as_str()) {
        let image =
            llamactl_tests::docker_images::test_backend_image(&llamactl_tests::docker_images::docker().await).await;
        let options = llamactl_tests::options(serde_json::json!({
            "backend_type": "custom",
            "backend_options": {
                "command": "/usr/local/bin/llamactl-test-backend",
                "args": ["--host", "{host}", "--port", "{port}", "--ready-after-ms", "50"],
            },
            "docker_enabled": true,
            "docker": {"image": image},
        }));
        bench("test backend in a container (ready after 50 ms)", options, iterations).await;
    }
}
