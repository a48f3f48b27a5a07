//! Live heap per idle instance in the library, counted by dhat's allocator (live bytes, not
//! RSS: the allocator's caching does not blur it). Baseline: the same instances as loaded
//! from the database (`Database::load_all`), the data an instance cannot do without.
//!
//! `scripts/bench.sh memory` (LLAMACTL_BENCH_INSTANCES, default 10,000). With
//! LLAMACTL_BENCH_DHAT_FILE=path, dhat's profile of the reopened manager is written there
//! (view it with dh_view.html) to see which allocation sites hold the bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use llamactl_core::{Database, InstanceName, InstanceOptions, Manager, ManagerConfig, SqliteDatabase};
use serde_json::json;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn count() -> usize {
    std::env::var("LLAMACTL_BENCH_INSTANCES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

fn live() -> (u64, u64) {
    let stats = dhat::HeapStats::get();
    (stats.curr_bytes as u64, stats.curr_blocks as u64)
}

fn per(bytes: u64, total: usize) -> f64 {
    bytes as f64 / total as f64
}

fn config(dir: &std::path::Path) -> ManagerConfig {
    ManagerConfig { logs_dir: Some(dir.join("logs")), ..ManagerConfig::default() }
}

#[tokio::main]
async fn main() {
    let total = count();
    let profiler = match std::env::var("LLAMACTL_BENCH_DHAT_FILE") {
        Ok(file) => dhat::Profiler::builder().file_name(file).build(),
        Err(_) => dhat::Profiler::builder().testing().build(),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llamactl.db");
    let options = InstanceOptions::from_json_value(&json!({
        "backend_type": "llama_cpp",
        "backend_options": {"model": "/models/tiny.gguf", "ctx_size": 512, "n_gpu_layers": 0},
        "on_demand_start": true,
        "idle_timeout": 5
    }))
    .unwrap();

    // Created through the manager, as the API does.
    let db = Arc::new(SqliteDatabase::open(&path).await.unwrap());
    let manager = Manager::open(config(dir.path()), db.clone()).await.unwrap();
    let (empty, _) = live();
    for i in 0..total {
        let name: InstanceName = format!("bench-{i:05}").parse().unwrap();
        manager.create(name, options.clone()).await.unwrap();
    }
    let (created, created_blocks) = live();
    manager.shutdown().await;
    db.close().await; // the file's lock, for the baseline's open below
    drop((manager, db));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    // The baseline: the rows alone.
    let db = Arc::new(SqliteDatabase::open(&path).await.unwrap());
    let (db_only, _) = live();
    let mut rows = db.load_all().await.unwrap();
    // Without the list's growth room: the rows themselves.
    rows.shrink_to_fit();
    let (with_rows, rows_blocks) = live();
    assert_eq!(rows.len(), total);
    drop(rows);

    let (before_open, _) = live();
    let manager = Manager::open(config(dir.path()), db).await.unwrap();
    let (opened, opened_blocks) = live();
    assert_eq!(manager.len(), total);

    let rows_per = per(with_rows - db_only, total);
    let created_per = per(created - empty, total);
    let opened_per = per(opened - before_open, total);
    println!("== live heap per idle instance, {total} instances (dhat's counting allocator)");
    println!(
        "stored rows alone (load_all):     {rows_per:7.0} B   {:.1} blocks   [baseline]",
        (rows_blocks as f64) / total as f64
    );
    println!(
        "manager after creating them:      {created_per:7.0} B   {:.1} blocks   ratio {:.1}",
        (created_blocks as f64) / total as f64,
        created_per / rows_per
    );
    println!(
        "manager after opening with them:  {opened_per:7.0} B   {:.1} blocks   ratio {:.1}",
        (opened_blocks as f64) / total as f64,
        opened_per / rows_per
    );
    println!("live heap of the reopened manager with {total}: {:.1} MiB", (opened as f64) / (1024.0 * 1024.0));
    manager.shutdown().await;
    drop(profiler);
}
