//! Management scale: the real server (release build) on a real SQLite file.
//!
//! 1. Resident memory of an idle server with no instances.
//! 2. 10,000 instances created over the REST API by 64 concurrent clients: creates per second,
//!    against the same creates straight through `SqliteDatabase` (the store alone, no HTTP, no
//!    manager) and against plain SQLite inserts with one commit each (the baseline: what one
//!    fsync per write allows on this disk).
//! 3. `GET /api/v1/instances` with 10,000 instances: p50 / p99 over 50 calls, from sending
//!    the request to the last byte of the answer.
//! 4. Resident memory at 10,000 instances.
//! 5. Boot: SIGTERM, then start again on the same data; time from spawn to the API answering,
//!    against the boot of an empty data folder measured in the same run.
//!
//! Prints figures; asserts nothing about time. Run: `scripts/bench.sh scale`.
//! LLAMACTL_BENCH_INSTANCES changes the count (default 10,000).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use llamactl_core::db::{Database, SqliteDatabase};
use llamactl_core::{InstanceName, InstanceOptions};
use llamactl_tests::server::{MANAGEMENT_KEY, SpawnedServer, http, server_config};
use llamactl_tests::{percentile, resident_mib};
use serde_json::json;

const CLIENTS: usize = 64;

fn count() -> usize {
    std::env::var("LLAMACTL_BENCH_INSTANCES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

fn options() -> serde_json::Value {
    json!({
        "backend_type": "llama_cpp",
        "backend_options": {"model": "/models/tiny.gguf", "ctx_size": 512, "n_gpu_layers": 0},
        "on_demand_start": true,
        "idle_timeout": 5
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Starts the server on `dir` and returns it with the time from spawn to `/health` answering.
async fn boot(dir: &std::path::Path, config: &llamactl_server::config::Config) -> (SpawnedServer, Duration) {
    let began = Instant::now();
    let server = SpawnedServer::start(dir, config);
    let health = format!("{}/health", server.base);
    while !http().get(&health).send().await.is_ok_and(|r| r.status().is_success()) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (server, began.elapsed())
}

async fn create_all(base: &str, total: usize) -> Duration {
    let next = Arc::new(AtomicUsize::new(0));
    let client = http();
    let began = Instant::now();
    let workers = (0..CLIENTS).map(|_| {
        let next = next.clone();
        let client = client.clone();
        let base = base.to_owned();
        async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total {
                    break;
                }
                let response = client
                    .post(format!("{base}/api/v1/instances/bench-{i:05}"))
                    .bearer_auth(MANAGEMENT_KEY)
                    .json(&options())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), 201, "{}", response.text().await.unwrap());
            }
        }
    });
    futures::future::join_all(workers).await;
    began.elapsed()
}

/// The store alone: the same rows created concurrently through `SqliteDatabase` (group
/// commit) in a fresh SQLite file.
async fn store_alone(total: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(SqliteDatabase::open(&dir.path().join("baseline.db")).await.unwrap());
    let options: InstanceOptions = InstanceOptions::from_json_value(&options()).unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let workers = (0..CLIENTS).map(|_| {
        let next = next.clone();
        let db = db.clone();
        let options = options.clone();
        tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total {
                    break;
                }
                let name: InstanceName = format!("bench-{i:05}").parse().unwrap();
                db.create(&name, &options).await.unwrap();
            }
        })
    });
    for worker in futures::future::join_all(workers).await {
        worker.unwrap();
    }
    began.elapsed()
}

/// What one commit per write allows on this disk: the same JSON inserted by 64 tasks through
/// one SQLite connection (WAL, `synchronous=FULL`), each insert its own transaction.
async fn commit_per_write(total: usize) -> Duration {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
    let dir = tempfile::tempdir().unwrap();
    let connect = SqliteConnectOptions::new()
        .filename(dir.path().join("plain.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(connect).await.unwrap();
    sqlx::query("CREATE TABLE instances (name TEXT PRIMARY KEY, options_json TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let json = options().to_string();
    let next = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let workers = (0..CLIENTS).map(|_| {
        let (next, pool, json) = (next.clone(), pool.clone(), json.clone());
        tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total {
                    break;
                }
                sqlx::query("INSERT INTO instances (name, options_json) VALUES (?, ?)")
                    .bind(format!("bench-{i:05}"))
                    .bind(&json)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        })
    });
    for worker in futures::future::join_all(workers).await {
        worker.unwrap();
    }
    began.elapsed()
}

/// `GET /api/v1/instances` 50 times: the time from sending to the answer's last byte, sorted.
async fn list_times(server: &SpawnedServer, total: usize) -> Vec<Duration> {
    let mut lists = Vec::new();
    for _ in 0..50 {
        let began = Instant::now();
        let response = server.manage(reqwest::Method::GET, "/api/v1/instances").send().await.unwrap();
        let bytes = response.bytes().await.unwrap();
        // Until the whole answer is in; reading it is the client's business.
        lists.push(began.elapsed());
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body.as_array().unwrap().len(), total);
    }
    lists.sort();
    lists
}

#[tokio::main]
async fn main() {
    llamactl_tests::install_tls_provider();
    let total = count();
    let dir = tempfile::tempdir().unwrap();
    let config = server_config(dir.path());
    let (server, empty_boot) = boot(dir.path(), &config).await;
    let pid = server.child.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = resident_mib(pid);

    let created = create_all(&server.base, total).await;
    let store = store_alone(total).await;
    let plain = commit_per_write(total).await;

    let lists = list_times(&server, total).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let full_rss = resident_mib(pid);
    assert!(server.terminate());

    let (server, full_boot) = boot(dir.path(), &config).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reboot_rss = resident_mib(server.child.id());
    let reboot_lists = list_times(&server, total).await;
    let after_lists_rss = resident_mib(server.child.id());
    assert!(server.terminate());

    println!("== management scale: {total} instances, real server (release), SQLite file");
    let rate = |d: Duration| total as f64 / d.as_secs_f64();
    println!(
        "create over the API ({CLIENTS} clients): {:.0}/s ({:.2} s)   store alone: {:.0}/s   one commit per write (baseline): {:.0}/s   API / baseline {:.2}   [target >= 2000/s]",
        rate(created),
        created.as_secs_f64(),
        rate(store),
        rate(plain),
        rate(created) / rate(plain),
    );
    println!(
        "list all: p50 {:.1} ms   p99 {:.1} ms (after the creates); p50 {:.1} ms   p99 {:.1} ms (after a restart)   [target p50 < 20 ms]",
        ms(percentile(&lists, 0.5)),
        ms(percentile(&lists, 0.99)),
        ms(percentile(&reboot_lists, 0.5)),
        ms(percentile(&reboot_lists, 0.99))
    );
    println!(
        "boot to API answering: with {total} instances {:.0} ms   empty {:.0} ms   [target < 1000 ms]",
        ms(full_boot),
        ms(empty_boot)
    );
    println!(
        "resident memory: idle empty {idle_rss:.1} MiB   after creating {total} {full_rss:.1} MiB   after boot with {total} {reboot_rss:.1} MiB, then after 50 listings {after_lists_rss:.1} MiB   [target < 60 MB = 57.2 MiB]"
    );
}
