//! The dashboard in a real Chromium, measured with the browser's Performance API. Prints
//! figures; asserts nothing about time.
//!
//! - first load: the bytes the browser transferred for a cold load of the instances page
//!   (the document and every resource it fetched; target < 200 KB)
//! - 1,000 instances: the time from navigation to the table's first full render (the page's
//!   `instances-rendered` mark; target < 500 ms), and from a status change on the server (the
//!   transition's time in the instance's event log) to the changed row in the page (a
//!   `MutationObserver` on the row's status; target < 100 ms), over several changes
//!
//! Run: `scripts/bench.sh dashboard` (`LLAMACTL_BENCH_ITERATIONS` status changes, default 10).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use llamactl_tests::browser::Browser;
use llamactl_tests::server::{SpawnedServer, create_instance, get_json, server_config};
use llamactl_tests::test_backend;
use reqwest::Method;
use serde_json::json;

const INSTANCES: usize = 1_000;

fn iterations() -> usize {
    std::env::var("LLAMACTL_BENCH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(10).max(1)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Bytes the page transferred so far: its document and every resource.
const TRANSFERRED: &str = "performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))\
     .reduce((sum, e) => sum + (e.transferSize || 0), 0)";
/// Bytes of the same, decoded.
const DECODED: &str = "performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))\
     .reduce((sum, e) => sum + (e.decodedBodySize || 0), 0)";

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = server_config(dir.path());
    config.auth.require_management_auth = false;
    config.auth.require_inference_auth = false;
    let server = SpawnedServer::start(dir.path(), &config);
    let base = server.base.clone();

    // First load, with no instance: what any new user's browser fetches.
    let browser = Browser::start().await;
    browser.client.goto(&format!("{base}/#/instances")).await.unwrap();
    browser.find("instances-empty").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let transferred = browser.eval(TRANSFERRED).await.as_f64().unwrap();
    let decoded = browser.eval(DECODED).await.as_f64().unwrap();
    let files = browser.eval("performance.getEntriesByType('resource').length").await;
    browser.close().await;
    println!("== first load of the instances page (cold cache)");
    println!(
        "transferred {:.1} KB ({files} files after the document; {:.1} KB decoded); target < 200 KB",
        transferred / 1000.0,
        decoded / 1000.0
    );

    // 1,000 instances that never start, and one real process that changes status.
    let options = json!({"backend_type": "custom", "backend_options": {"command": test_backend(),
        "args": ["--host", "{host}", "--port", "{port}"]}});
    for i in 0..INSTANCES {
        create_instance(&base, &format!("bench-{i:04}"), &options).await;
    }
    let mut renders = Vec::new();
    for _ in 0..3 {
        let browser = Browser::start().await;
        browser.client.goto(&format!("{base}/#/instances")).await.unwrap();
        browser.wait_true("performance.getEntriesByName('instances-rendered').length > 0").await;
        let rendered = browser.eval("performance.getEntriesByName('instances-rendered')[0].startTime").await;
        let rows = browser.eval("document.querySelectorAll('[data-test=\"instance-row\"]').length").await;
        assert_eq!(rows, json!(INSTANCES), "every instance has its row");
        renders.push(rendered.as_f64().unwrap());
        browser.close().await;
    }
    println!("== {INSTANCES} instances");
    println!(
        "navigation to the table's first full render: median {:.0} ms of 3 cold loads ({renders:?}); target < 500 ms",
        median(&mut renders.clone())
    );

    // Status changes of one instance, from the server's transition to the row's new text.
    let browser = Browser::start().await;
    browser.client.goto(&format!("{base}/#/instances")).await.unwrap();
    browser.wait_true("performance.getEntriesByName('instances-rendered').length > 0").await;
    let name = "bench-0500";
    let install = format!(
        "(() => {{ window.__changes = []; const cell = document.querySelector('[data-test=\"instance-row\"][data-name=\"{name}\"] [data-test=\"instance-status\"]'); \
          new MutationObserver(() => window.__changes.push([cell.textContent, performance.timeOrigin + performance.now()])) \
            .observe(cell, {{childList: true, characterData: true, subtree: true, attributes: true}}); return true; }})()"
    );
    browser.eval(&install).await;
    let mut lags = Vec::new();
    for round in 0..iterations() {
        let (action, wanted) = if round % 2 == 0 { ("start", "running") } else { ("stop", "stopped") };
        let answer = server.manage(Method::POST, &format!("/api/v1/instances/{name}/{action}")).send().await.unwrap();
        assert!(answer.status().is_success());
        let seen = format!("window.__changes.some(c => c[0].includes('{wanted}'))");
        browser.wait_true(&seen).await;
        let shown =
            browser.eval(&format!("window.__changes.find(c => c[0].includes('{wanted}'))[1]")).await.as_f64().unwrap();
        let events = get_json(&base, &format!("/api/v1/instances/{name}/events")).await;
        let at = events
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|e| e["to"] == wanted)
            .and_then(|e| e["at"].as_str())
            .map(|at| chrono::DateTime::parse_from_rfc3339(at).unwrap().timestamp_micros() as f64 / 1000.0)
            .expect("the transition is in the event log");
        lags.push(shown - at);
        browser.eval("(() => { window.__changes.length = 0; return true; })()").await;
    }
    browser.close().await;
    let mut sorted = lags.clone();
    println!(
        "status change on the server to the changed row: median {:.1} ms, max {:.1} ms over {} changes; target < 100 ms",
        median(&mut sorted),
        lags.iter().copied().fold(f64::MIN, f64::max),
        lags.len()
    );
    assert!(server.terminate());
}
