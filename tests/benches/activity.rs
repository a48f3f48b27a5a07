//! The cost of recording request activity. Prints figures; asserts nothing about time.
//!
//! - proxy throughput against the fixed-response backend at concurrency 64, through a server
//!   recording activity and through one that does not (`activity.enabled: false`), in
//!   interleaved rounds; the median ratio of their requests/s and each one's CPU per request
//! - sustained recording: the same load for `LLAMACTL_BENCH_SECONDS` × 2, then the records
//!   written against the requests answered, and the drops counted
//! - the store alone: 100,000 records written in the recorder's batches into a fresh SQLite file,
//!   records/s, and the file's bytes per 100,000 records
//!
//! Run: `scripts/bench.sh activity` (`scripts/bench.sh activity store`: the store only;
//! `LLAMACTL_BENCH_SECONDS` per measurement, default 3;
//! `LLAMACTL_BENCH_ROUNDS` interleaved rounds, default 5).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use llamactl_core::db::{ActivityOutcome, ActivityRecord, ActivityStore};
use llamactl_core::{Database, SqliteDatabase};
use llamactl_tests::server::{MANAGEMENT_KEY, SpawnedServer, create_instance, get_json, server_config};
use llamactl_tests::{cpu_time, test_backend};
use serde_json::json;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

const CONCURRENCY: usize = 64;

fn seconds() -> Duration {
    Duration::from_secs(std::env::var("LLAMACTL_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3))
}

fn rounds() -> u32 {
    std::env::var("LLAMACTL_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5).max(1)
}

fn request(base: &str, body: &Bytes) -> Request<Full<Bytes>> {
    Request::post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {MANAGEMENT_KEY}"))
        .body(Full::new(body.clone()))
        .unwrap()
}

/// Requests answered and their rate, and the server's CPU time meanwhile.
async fn load(client: &HttpClient, server: &SpawnedServer, body: &Bytes, duration: Duration) -> (usize, f64, Duration) {
    let pid = [server.child.id()];
    let cpu_before = cpu_time(&pid);
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, base, body) = (client.clone(), server.base.clone(), body.clone());
            tokio::spawn(async move {
                let mut answered = 0;
                while Instant::now() < deadline {
                    let response = client.request(request(&base, &body)).await.unwrap();
                    assert!(response.status().is_success(), "answered {}", response.status());
                    response.into_body().collect().await.unwrap();
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    let mut answered = 0;
    for task in tasks {
        answered += task.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    (answered, answered as f64 / elapsed, cpu_time(&pid).saturating_sub(cpu_before))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn server(recording: bool) -> (SpawnedServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = server_config(dir.path());
    config.server.log_format = llamactl_server::config::LogFormat::Plain;
    config.activity.enabled = recording;
    config.activity.max_rows = 10_000_000;
    let server = SpawnedServer::start(dir.path(), &config);
    let options = json!({"backend_type": "custom", "backend_options": {"command": test_backend(),
        "args": ["--host", "{host}", "--port", "{port}", "--ready-after-ms", "50"]}, "idle_timeout": 0});
    create_instance(&server.base, "fixed", &options).await;
    (server, dir)
}

/// A series of the Prometheus text (0 if absent).
fn series(text: &str, name: &str) -> f64 {
    text.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0)
}

async fn recorded(base: &str) -> u64 {
    let stats = get_json(base, "/api/v1/activity/stats?group_by=instance").await;
    stats["groups"].as_array().unwrap().iter().map(|g| g["requests"].as_u64().unwrap()).sum()
}

async fn proxy_cost(client: &HttpClient, body: &Bytes) {
    let (on, _on_dir) = server(true).await;
    let (off, _off_dir) = server(false).await;
    for server in [&on, &off] {
        // The first request starts the instance.
        let response = client.request(request(&server.base, body)).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    let each = seconds() / rounds();
    let (mut ratios, mut rps_on, mut rps_off) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cpu_on, mut cpu_off, mut n_on, mut n_off) = (Duration::ZERO, Duration::ZERO, 0, 0);
    for _ in 0..rounds() {
        let (answered_off, rate_off, cpu) = load(client, &off, body, each).await;
        (n_off, cpu_off) = (n_off + answered_off, cpu_off + cpu);
        let (answered_on, rate_on, cpu) = load(client, &on, body, each).await;
        (n_on, cpu_on) = (n_on + answered_on, cpu_on + cpu);
        ratios.push(rate_on / rate_off);
        rps_on.push(rate_on);
        rps_off.push(rate_off);
    }
    println!("== proxy at concurrency {CONCURRENCY}, {} rounds of {:.1} s each", rounds(), each.as_secs_f64());
    let per = |cpu: Duration, n: usize| cpu.as_secs_f64() * 1e6 / n as f64;
    println!("recording off  {:>8.0} req/s | {:.1} us CPU per request", median(&mut rps_off), per(cpu_off, n_off));
    println!("recording on   {:>8.0} req/s | {:.1} us CPU per request", median(&mut rps_on), per(cpu_on, n_on));
    let ratio = median(&mut ratios);
    println!("on / off: {ratio:.3} (cost {:.1} %)   [target: cost <= 5 %]", (1.0 - ratio) * 100.0);

    // Sustained: every answered request recorded, none dropped?
    let before = recorded(&on.base).await;
    let duration = seconds() * 2;
    let (answered, rate, _) = load(client, &on, body, duration).await;
    let mut written = 0;
    for _ in 0..100 {
        written = recorded(&on.base).await - before;
        if written >= answered as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = llamactl_tests::server::http()
        .get(format!("{}/metrics", on.base))
        .bearer_auth(MANAGEMENT_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    println!(
        "sustained {:.0} s: {answered} requests ({rate:.0}/s), {written} records written, {} dropped",
        duration.as_secs_f64(),
        series(&metrics, "llamactl_activity_dropped_total")
    );
    on.terminate();
    off.terminate();
}

fn sample(id: i64) -> ActivityRecord {
    let mut record = ActivityRecord::new(id, chrono::Utc::now(), "/v1/chat/completions");
    record.instance = Some(format!("instance-{}", id % 20));
    record.model = record.instance.clone();
    record.status = 200;
    record.key_id = Some(id % 5);
    record.key_name = Some(format!("key-{}", id % 5));
    record.client = Some("127.0.0.1".into());
    record.duration_ms = 812.5;
    record.ttfb_ms = Some(41.2);
    record.streamed = id % 2 == 0;
    record.prompt_tokens = Some(250);
    record.completion_tokens = Some(120);
    record.cached_tokens = Some(200);
    record.prompt_tps = Some(1450.0);
    record.generation_tps = Some(38.5);
    record.outcome = ActivityOutcome::Completed;
    record
}

async fn store_figures() {
    const RECORDS: i64 = 100_000;
    const BATCH: i64 = 1024;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llamactl.db");
    let db = SqliteDatabase::open(&path).await.unwrap();
    let empty = file_bytes(&path);
    let started = Instant::now();
    let mut id = 1;
    while id <= RECORDS {
        let batch: Vec<ActivityRecord> = (id..(id + BATCH).min(RECORDS + 1)).map(sample).collect();
        db.record_activity(&batch).await.unwrap();
        id += BATCH;
    }
    let took = started.elapsed();
    let stats_started = Instant::now();
    let stats = db.activity_stats(None, llamactl_core::db::ActivityGroupBy::Instance).await.unwrap();
    let stats_took = stats_started.elapsed();
    let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let windowed_started = Instant::now();
    db.activity_stats(Some(hour_ago), llamactl_core::db::ActivityGroupBy::Instance).await.unwrap();
    let windowed_took = windowed_started.elapsed();
    db.close().await;
    println!("== the store: {RECORDS} records in batches of {BATCH}");
    println!("written in {:.2} s: {:.0} records/s", took.as_secs_f64(), RECORDS as f64 / took.as_secs_f64());
    println!(
        "database file: {:.1} MB per 100,000 records ({} groups summarised in {:.0} ms)",
        (file_bytes(&path) - empty) as f64 / 1e6 * (100_000.0 / RECORDS as f64),
        stats.len(),
        stats_took.as_secs_f64() * 1000.0
    );
    println!(
        "statistics of the last hour (all {RECORDS} records in it): {:.0} ms",
        windowed_took.as_secs_f64() * 1000.0
    );
}

/// The database with its write-ahead log.
fn file_bytes(path: &std::path::Path) -> u64 {
    let wal = path.with_extension("db-wal");
    [path.to_path_buf(), wal].iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
}

#[tokio::main]
async fn main() {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(256).build(connector);
    let body = Bytes::from(json!({"model": "fixed", "messages": [{"role": "user", "content": "hi"}]}).to_string());
    // `scripts/bench.sh activity store`: the store's figures only.
    if !std::env::args().skip(1).any(|a| a == "store") {
        proxy_cost(&client, &body).await;
    }
    store_figures().await;
}
