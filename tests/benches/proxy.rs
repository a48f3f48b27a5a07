//! Proxy benchmarks: the same requests sent to a backend directly and through llamactl-server,
//! in one run, against the fixed-response test backend and against real llama-server. Prints
//! figures; asserts nothing about time.
//!
//! - requests/s and latency at concurrency 1, 16 and 64, direct, through nginx (a generic
//!   reverse proxy with a keep-alive upstream, fixed-response backend only; see
//!   `llamactl_tests::nginx`) and through llamactl, in interleaved rounds
//!   (`LLAMACTL_BENCH_ROUNDS`, default 5, sharing `LLAMACTL_BENCH_SECONDS`); each proxy's
//!   proxied/direct ratio and llamactl's throughput over nginx's (medians over the rounds)
//! - the CPU time llamactl-server (and nginx) spends per proxied request (`/proc/<pid>/stat`)
//! - added p50 and p99 latency at concurrency 1
//! - streaming time to first byte, direct and through the proxy; with llama-server, the time to
//!   the headers and to the first SSE `data:` line (`LLAMACTL_BENCH_STREAMS` requests each,
//!   default 300)
//! - cold start: the first request to a stopped instance, against the backend's own
//!   spawn-to-ready time
//! - key verification with 10 and with 100,000 inference keys stored
//!
//! - soak (only when asked: `scripts/bench.sh proxy soak`): 60 s at concurrency 256 through the
//!   proxy, failures counted, throughput and p99 against direct, the server's memory over time
//!
//! Run: `scripts/bench.sh proxy` (`LLAMACTL_BENCH_SECONDS` per measurement, default 3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use llamactl_core::db::{NewApiKey, PermissionMode};
use llamactl_core::{ApiKeyStore, SqliteDatabase};
use llamactl_server::auth::{Authenticator, keys};
use llamactl_tests::nginx::Nginx;
use llamactl_tests::server::{MANAGEMENT_KEY, SpawnedServer, create_instance, get_json, server_config};
use llamactl_tests::{cpu_time, percentile, resident_mib, test_backend, tiny_gguf};
use serde_json::{Value, json};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(256).build(connector)
}

fn seconds() -> Duration {
    Duration::from_secs(std::env::var("LLAMACTL_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3))
}

#[derive(Debug, Clone)]
struct Target {
    url: String,
    key: Option<String>,
    body: Bytes,
}

fn request(target: &Target) -> Request<Full<Bytes>> {
    let mut builder = Request::post(&target.url).header("content-type", "application/json");
    if let Some(key) = &target.key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    builder.body(Full::new(target.body.clone())).unwrap()
}

/// What one load run measured.
#[derive(Debug)]
struct Run {
    /// Requests answered (after the warm-up).
    requests: usize,
    /// Requests that got no answer (a connection the server closed under them).
    failed: usize,
    /// Their latencies, sorted.
    latencies: Vec<Duration>,
    /// Requests per second.
    rps: f64,
    /// CPU time the watched processes used meanwhile.
    cpu: Duration,
}

/// Sends requests from `concurrency` tasks for `duration` after a warm-up, counting the CPU time
/// the processes `watched` use meanwhile.
async fn load(client: &HttpClient, target: &Target, concurrency: usize, duration: Duration, watched: &[u32]) -> Run {
    // Warm the connection pool.
    for _ in 0..concurrency.min(8) {
        let response = client.request(request(target)).await.unwrap();
        assert!(response.status().is_success(), "warm-up answered {}", response.status());
        response.into_body().collect().await.unwrap();
    }
    let cpu_before = cpu_time(watched);
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, target) = (client.clone(), target.clone());
            tokio::spawn(async move {
                let (mut latencies, mut failed) = (Vec::new(), 0);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    // llama-server itself closes some connections under high concurrency:
                    // counted and shown, not fatal to the benchmark.
                    let Ok(response) = client.request(request(&target)).await else {
                        failed += 1;
                        continue;
                    };
                    assert!(response.status().is_success(), "answered {}", response.status());
                    if response.into_body().collect().await.is_err() {
                        failed += 1;
                        continue;
                    }
                    latencies.push(sent.elapsed());
                }
                (latencies, failed)
            })
        })
        .collect();
    let (mut all, mut failed) = (Vec::new(), 0);
    for task in tasks {
        let (latencies, lost) = task.await.unwrap();
        all.extend(latencies);
        failed += lost;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_time(watched).saturating_sub(cpu_before);
    all.sort();
    Run { requests: all.len(), failed, rps: all.len() as f64 / elapsed, latencies: all, cpu }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Median time to the first body byte of a streamed answer, over `rounds` sequential requests.
async fn time_to_first_byte(client: &HttpClient, target: &Target, rounds: usize) -> Duration {
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let sent = Instant::now();
        let response = client.request(request(target)).await.unwrap();
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert!(first.is_data());
        samples.push(sent.elapsed());
        body.collect().await.unwrap();
    }
    samples.sort();
    percentile(&samples, 0.5)
}

/// Times of one streamed answer: to its headers, and to its first complete SSE `data:` line.
async fn stream_timing(client: &HttpClient, target: &Target) -> (Duration, Duration) {
    // llama-server closes connections that idled 5 s: a pooled one may be closed under us.
    let mut attempts = 0;
    let (sent, response) = loop {
        let sent = Instant::now();
        match client.request(request(target)).await {
            Ok(response) => break (sent, response),
            Err(_) if attempts < 2 => attempts += 1,
            Err(error) => panic!("streamed request failed: {error}"),
        }
    };
    assert!(response.status().is_success(), "answered {}", response.status());
    let headers = sent.elapsed();
    let mut body = response.into_body();
    let mut seen = Vec::new();
    let first_line = loop {
        let frame = body.frame().await.expect("the stream ended before a data line").unwrap();
        if let Ok(data) = frame.into_data() {
            seen.extend_from_slice(&data);
        }
        let complete = seen.split(|b| *b == b'\n').rev().skip(1).any(|line| line.starts_with(b"data:"));
        if complete {
            break sent.elapsed();
        }
    };
    body.collect().await.unwrap();
    (headers, first_line)
}

/// Streamed requests `count` times to each target, alternately; prints the medians of the time
/// to headers and to the first SSE `data:` line, and what the proxy adds to them.
async fn streaming(client: &HttpClient, direct: &Target, proxied: &Target, count: usize) {
    let (mut direct_headers, mut direct_lines, mut proxy_headers, mut proxy_lines) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..count {
        // Alternate which goes first, so neither always follows the other.
        for proxy_side in if i % 2 == 0 { [false, true] } else { [true, false] } {
            let (headers, line) = stream_timing(client, if proxy_side { proxied } else { direct }).await;
            if proxy_side {
                proxy_headers.push(headers);
                proxy_lines.push(line);
            } else {
                direct_headers.push(headers);
                direct_lines.push(line);
            }
        }
    }
    for samples in [&mut direct_headers, &mut direct_lines, &mut proxy_headers, &mut proxy_lines] {
        samples.sort();
    }
    let med = |samples: &[Duration]| micros(percentile(samples, 0.5));
    println!(
        "streaming, {count} requests each, alternately: time to headers direct {:.0} us, proxy {:.0} us, added {:.0} us; \
         to the first data line direct {:.0} us, proxy {:.0} us, added {:.0} us   [target: < 200 us added]",
        med(&direct_headers),
        med(&proxy_headers),
        med(&proxy_headers) - med(&direct_headers),
        med(&direct_lines),
        med(&proxy_lines),
        med(&proxy_lines) - med(&direct_lines),
    );
}

/// One side of a comparison: where its requests go, and whose CPU time is counted.
#[derive(Debug, Clone)]
struct Side {
    name: &'static str,
    target: Target,
    pids: Vec<u32>,
}

/// What one side measured at one concurrency, over every round.
#[derive(Debug, Default)]
struct Tally {
    rps: Vec<f64>,
    latencies: Vec<Duration>,
    requests: usize,
    failed: usize,
    cpu: Duration,
}

fn rounds() -> usize {
    std::env::var("LLAMACTL_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5).max(1)
}

/// Loads every side in turn, `rounds()` times at each concurrency (each run a share of
/// `seconds()`), and prints each side's throughput and latency; for the proxies (every side after
/// the first, `sides[0]` being the backend itself) the median over the rounds of their
/// requests/s to the direct run's of the same round, their CPU time per request, and, for the last
/// proxy against each earlier one, the median of their throughputs' ratio.
async fn compare(label: &str, client: &HttpClient, sides: &[Side], levels: &[usize]) {
    let rounds = rounds();
    let each = (seconds() / rounds as u32).max(Duration::from_millis(200));
    let names: Vec<&str> = sides.iter().map(|s| s.name).collect();
    println!(
        "== {label}: {rounds} rounds of {} at each concurrency, {:.1} s each",
        names.join(" / "),
        each.as_secs_f64()
    );
    let mut added = Vec::new();
    for &concurrency in levels {
        let mut tallies: Vec<Tally> = sides.iter().map(|_| Tally::default()).collect();
        for _ in 0..rounds {
            for (side, tally) in sides.iter().zip(&mut tallies) {
                let run = load(client, &side.target, concurrency, each, &side.pids).await;
                tally.rps.push(run.rps);
                tally.latencies.extend(run.latencies);
                tally.requests += run.requests;
                tally.failed += run.failed;
                tally.cpu += run.cpu;
            }
        }
        for tally in &mut tallies {
            tally.latencies.sort();
        }
        let direct = &tallies[0];
        for (i, (side, tally)) in sides.iter().zip(&tallies).enumerate() {
            let lead = if i == 0 { format!("concurrency {concurrency:>3}:") } else { String::new() };
            let mut line = format!(
                "{lead:<17}{:<9}{:>8.0} req/s p50 {:>7.0} us p99 {:>7.0} us",
                side.name,
                median(&tally.rps),
                micros(percentile(&tally.latencies, 0.5)),
                micros(percentile(&tally.latencies, 0.99)),
            );
            if tally.failed > 0 {
                line.push_str(&format!(" | {} without an answer", tally.failed));
            }
            if i > 0 {
                let ratios: Vec<f64> = tally.rps.iter().zip(&direct.rps).map(|(p, d)| p / d).collect();
                line.push_str(&format!(" | proxied/direct {:.2}", median(&ratios)));
            }
            if !side.pids.is_empty() && tally.requests > 0 {
                let per_request = micros(tally.cpu) / tally.requests as f64;
                line.push_str(&format!(" | {per_request:.1} us CPU per request"));
                if concurrency == 64 && side.name == "llamactl" {
                    line.push_str("   [target: < 20 us]");
                }
            }
            println!("{line}");
        }
        let last = sides.len() - 1;
        for (i, side) in sides.iter().enumerate().take(last).skip(1) {
            let ratios: Vec<f64> = tallies[last].rps.iter().zip(&tallies[i].rps).map(|(a, b)| a / b).collect();
            println!("{:<17}{} / {}: {:.2}   [target: >= 0.9]", "", sides[last].name, side.name, median(&ratios));
        }
        if concurrency == 1 {
            for (side, tally) in sides.iter().zip(&tallies).skip(1) {
                added.push((
                    side.name,
                    micros(percentile(&tally.latencies, 0.5)) - micros(percentile(&direct.latencies, 0.5)),
                    micros(percentile(&tally.latencies, 0.99)) - micros(percentile(&direct.latencies, 0.99)),
                ));
            }
        }
    }
    for (name, p50, p99) in added {
        println!(
            "added latency at concurrency 1 via {name}: p50 {p50:.0} us, p99 {p99:.0} us   [target: p50 < 150 us]"
        );
    }
}

async fn spawn_to_ready(program: &str, args: &[String], port: u16) -> Duration {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let probe = llamactl_core::readiness::ReadinessProbe::new();
    let uri = format!("http://127.0.0.1:{port}/health").parse().unwrap();
    while !probe.check(&uri, Duration::from_millis(500)).await {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    child.kill().await.unwrap();
    elapsed
}

async fn cold_start(
    server: &SpawnedServer,
    client: &HttpClient,
    proxied: &Target,
    name: &str,
    rounds: usize,
) -> Duration {
    let mut samples = Vec::new();
    for _ in 0..rounds {
        let stop = llamactl_tests::server::http()
            .post(format!("{}/api/v1/instances/{name}/stop", server.base))
            .bearer_auth(MANAGEMENT_KEY)
            .send()
            .await
            .unwrap();
        assert!(stop.status().is_success());
        let sent = Instant::now();
        let response = client.request(request(proxied)).await.unwrap();
        assert!(response.status().is_success());
        response.into_body().collect().await.unwrap();
        samples.push(sent.elapsed());
    }
    samples.sort();
    percentile(&samples, 0.5)
}

async fn key_verification() {
    println!("== key verification (in process)");
    for count in [10usize, 100_000] {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(SqliteDatabase::open(dir.path().join("keys.db")).await.unwrap());
        let mut secrets = Vec::new();
        // Bulk insert through the store's own API, one transaction per key: slow, so keys
        // beyond the first 100 are inserted in one transaction with SQL.
        for i in 0..count.min(100) {
            let key = keys::generate();
            db.create_api_key(&NewApiKey {
                name: format!("k{i}"),
                user_id: "bench".into(),
                lookup_id: key.lookup_id,
                sha256: key.sha256,
                permission_mode: PermissionMode::AllowAll,
                expires_at: None,
                rights: vec![],
            })
            .await
            .unwrap();
            secrets.push(key.secret);
        }
        if count > 100 {
            use sqlx::Connection;
            let mut conn =
                sqlx::SqliteConnection::connect(&format!("sqlite://{}", dir.path().join("keys.db").display()))
                    .await
                    .unwrap();
            let mut tx = conn.begin().await.unwrap();
            for i in 100..count {
                let key = keys::generate();
                let id: i64 = sqlx::query_scalar("INSERT INTO api_keys (key_hash, name, user_id, permission_mode, created_at, updated_at) VALUES (?, ?, 'bench', 'allow_all', 1, 1) RETURNING id")
                    .bind(format!("sha256:{}", key.sha256))
                    .bind(format!("k{i}"))
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                sqlx::query("INSERT INTO api_key_tokens (api_key_id, lookup_id, sha256) VALUES (?, ?, ?)")
                    .bind(id)
                    .bind(&key.lookup_id)
                    .bind(&key.sha256)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
        }
        let auth = Authenticator::new(&[], true, true, db.clone());
        let rounds = 2000;
        let started = Instant::now();
        for i in 0..rounds {
            auth.invalidate();
            auth.authenticate(&secrets[i % secrets.len()]).await.unwrap();
        }
        let uncached = started.elapsed() / rounds as u32;
        let started = Instant::now();
        for i in 0..rounds * 10 {
            auth.authenticate(&secrets[i % secrets.len()]).await.unwrap();
        }
        let cached = started.elapsed() / (rounds * 10) as u32;
        println!(
            "{count:>7} keys stored: {:>6.1} us per verification from the database, {:>5.2} us from the cache",
            micros(uncached),
            micros(cached)
        );
    }
}

#[tokio::main]
async fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-')).unwrap_or_default();
    let client = client();
    let dir = tempfile::tempdir().unwrap();
    let mut config = server_config(dir.path());
    config.server.log_format = llamactl_server::config::LogFormat::Plain;
    let server = SpawnedServer::start(dir.path(), &config);
    let key: Value = llamactl_tests::server::http()
        .post(format!("{}/api/v1/auth/keys", server.base))
        .bearer_auth(MANAGEMENT_KEY)
        .json(&json!({"name": "bench", "permission_mode": "allow_all"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = key["key"].as_str().unwrap().to_owned();

    if "fixed".contains(filter.as_str()) {
        let (proxied, direct) = fixed_instance(&server, &client, &secret, "fixed").await;
        let backend_port: u16 =
            direct.url.trim_start_matches("http://127.0.0.1:").split('/').next().unwrap().parse().unwrap();
        // nginx in front of the same backend, as the yardstick for a generic reverse proxy.
        let nginx = Nginx::start(backend_port);
        let mut sides = vec![Side { name: "direct", target: direct.clone(), pids: vec![] }];
        if let Some(nginx) = &nginx {
            let url = direct.url.replace(&format!(":{backend_port}/"), &format!(":{}/", nginx.port));
            sides.push(Side { name: "nginx", target: Target { url, ..direct.clone() }, pids: nginx.pids() });
        }
        sides.push(Side { name: "llamactl", target: proxied.clone(), pids: vec![server.child.id()] });
        compare("fixed-response test backend", &client, &sides, &[1, 16, 64]).await;
        drop(nginx);

        let stream_body = Bytes::from(
            json!({"model": "fixed", "messages": [{"role": "user", "content": "hi"}], "stream": true}).to_string(),
        );
        let direct_ttfb =
            time_to_first_byte(&client, &Target { body: stream_body.clone(), ..direct.clone() }, 200).await;
        let proxy_ttfb = time_to_first_byte(&client, &Target { body: stream_body, ..proxied.clone() }, 200).await;
        println!(
            "streaming time to first byte: direct {:.0} us, proxy {:.0} us, added {:.0} us   [target: < 1000 us]",
            micros(direct_ttfb),
            micros(proxy_ttfb),
            micros(proxy_ttfb) - micros(direct_ttfb)
        );

        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let args: Vec<String> = ["--host", "127.0.0.1", "--port", &free.to_string(), "--ready-after-ms", "50"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut bare = Vec::new();
        for _ in 0..10 {
            bare.push(spawn_to_ready(&test_backend(), &args, free).await);
        }
        bare.sort();
        let cold = cold_start(&server, &client, &proxied, "fixed", 10).await;
        let bare = percentile(&bare, 0.5);
        println!(
            "cold start (first request to a stopped instance): {:.1} ms; the backend's own spawn-to-ready {:.1} ms; added {:.1} ms   [target: < 50 ms]",
            cold.as_secs_f64() * 1e3,
            bare.as_secs_f64() * 1e3,
            (cold.as_secs_f64() - bare.as_secs_f64()) * 1e3
        );
    }

    if "llama-server".contains(filter.as_str()) {
        let options = json!({"backend_type": "llama_cpp", "backend_options": {"model": tiny_gguf(), "ctx_size": 2048,
            "gpu_layers": 0, "parallel": 4, "threads": 1, "no_webui": true}, "idle_timeout": 0});
        create_instance(&server.base, "llama", &options).await;
        let body = Bytes::from(json!({"model": "llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 0}).to_string());
        let proxied = Target {
            url: format!("{}/v1/chat/completions", server.base),
            key: Some(secret.clone()),
            body: body.clone(),
        };
        let response = client.request(request(&proxied)).await.unwrap();
        response.into_body().collect().await.unwrap();
        let info = get_json(&server.base, "/api/v1/instances/llama").await;
        let port = info["port"].as_u64().unwrap();
        let direct = Target { url: format!("http://127.0.0.1:{port}/v1/chat/completions"), key: None, body };
        let sides = [
            Side { name: "direct", target: direct.clone(), pids: vec![] },
            Side { name: "llamactl", target: proxied.clone(), pids: vec![server.child.id()] },
        ];
        compare("llama-server, tiny model, 4 tokens", &client, &sides, &[1, 16, 64]).await;
        let stream_body = Bytes::from(
            json!({"model": "llama", "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 4, "temperature": 0, "stream": true})
            .to_string(),
        );
        let count = std::env::var("LLAMACTL_BENCH_STREAMS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
        streaming(
            &client,
            &Target { body: stream_body.clone(), ..direct },
            &Target { body: stream_body, ..proxied },
            count,
        )
        .await;
    }

    if "keys".contains(filter.as_str()) {
        key_verification().await;
    }
    if filter == "soak" {
        soak(&server, &client, &secret).await;
    }
    server.terminate();
}

/// Sends requests from `concurrency` tasks for `duration`, counting failures instead of
/// stopping at the first; returns (answered, failed, sorted latencies of the answered).
async fn load_counting(
    client: &HttpClient,
    target: &Target,
    concurrency: usize,
    duration: Duration,
) -> (usize, usize, Vec<Duration>) {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, target) = (client.clone(), target.clone());
            tokio::spawn(async move {
                let (mut latencies, mut failed) = (Vec::new(), 0);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let ok = match client.request(request(&target)).await {
                        Ok(response) => {
                            let success = response.status().is_success();
                            response.into_body().collect().await.is_ok() && success
                        }
                        Err(_) => false,
                    };
                    if ok {
                        latencies.push(sent.elapsed());
                    } else {
                        failed += 1;
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    let (mut all, mut failed) = (Vec::new(), 0);
    for task in tasks {
        let (latencies, f) = task.await.unwrap();
        all.extend(latencies);
        failed += f;
    }
    all.sort();
    (all.len(), failed, all)
}

/// An instance `name` of the fixed-response test backend, started by a first request through
/// the proxy; returns the chat completion targets through the proxy and straight to it.
async fn fixed_instance(server: &SpawnedServer, client: &HttpClient, secret: &str, name: &str) -> (Target, Target) {
    let options = json!({"backend_type": "custom", "backend_options": {"command": test_backend(),
        "args": ["--host", "{host}", "--port", "{port}", "--ready-after-ms", "50"]}, "idle_timeout": 0});
    create_instance(&server.base, name, &options).await;
    let body = Bytes::from(json!({"model": name, "messages": [{"role": "user", "content": "hi"}]}).to_string());
    let proxied = Target {
        url: format!("{}/v1/chat/completions", server.base),
        key: Some(secret.to_owned()),
        body: body.clone(),
    };
    // The first request starts it; then its port is known.
    let response = client.request(request(&proxied)).await.unwrap();
    response.into_body().collect().await.unwrap();
    let info = get_json(&server.base, &format!("/api/v1/instances/{name}")).await;
    let port = info["port"].as_u64().unwrap();
    let direct = Target { url: format!("http://127.0.0.1:{port}/v1/chat/completions"), key: None, body };
    (proxied, direct)
}

/// Sustained load: LLAMACTL_BENCH_SOAK_SECONDS (default 60) at concurrency 256 through the
/// proxy to the fixed-response backend, the server's memory sampled every second; then the
/// same load straight to the backend for a third of the time, as the baseline.
async fn soak(server: &SpawnedServer, client: &HttpClient, secret: &str) {
    const CONCURRENCY: usize = 256;
    let seconds: u64 = std::env::var("LLAMACTL_BENCH_SOAK_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let (proxied, direct) = fixed_instance(server, client, secret, "soak").await;
    let pid = server.child.id();
    let sampling = tokio::spawn(async move {
        let mut samples = Vec::new();
        for _ in 0..seconds {
            tokio::time::sleep(Duration::from_secs(1)).await;
            samples.push(resident_mib(pid));
        }
        samples
    });
    let began = Instant::now();
    let (answered, failed, latencies) =
        load_counting(client, &proxied, CONCURRENCY, Duration::from_secs(seconds)).await;
    let proxy_rps = answered as f64 / began.elapsed().as_secs_f64();
    let samples = sampling.await.unwrap();
    let began = Instant::now();
    let (direct_answered, direct_failed, direct_latencies) =
        load_counting(client, &direct, CONCURRENCY, Duration::from_secs(seconds.div_ceil(3))).await;
    let direct_rps = direct_answered as f64 / began.elapsed().as_secs_f64();
    // Warm-up: the first tenth of the run (at least 1 s).
    let warm = samples.get((samples.len() / 10).max(1).min(samples.len().saturating_sub(1))).copied().unwrap_or(0.0);
    let end = samples.last().copied().unwrap_or(0.0);
    let peak = samples.iter().copied().fold(0.0, f64::max);
    println!("== soak: {seconds} s at concurrency {CONCURRENCY} through the proxy to the fixed-response backend");
    println!(
        "requests: {answered} answered, {failed} failed   [target: 0 failed]; direct baseline: {direct_answered} answered, {direct_failed} failed"
    );
    println!(
        "throughput: proxy {proxy_rps:.0} req/s, direct {direct_rps:.0} req/s, ratio {:.3}; p99 proxy {:.1} ms, direct {:.1} ms",
        proxy_rps / direct_rps,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        percentile(&direct_latencies, 0.99).as_secs_f64() * 1e3,
    );
    let series: Vec<String> = samples.iter().step_by(5).map(|m| format!("{m:.0}")).collect();
    println!("server memory every 5 s (MiB): {}", series.join(" "));
    println!(
        "server memory: after warm-up {warm:.1} MiB, at the end {end:.1} MiB, peak {peak:.1} MiB; growth {:+.1} %   [target: < 10 %]",
        (end - warm) / warm * 100.0
    );
}
