//! Writes a screenshot of each dashboard page into the folder given as the first argument,
//! against a real server (the `llamactl-server` built next to this program) with a real
//! llama-server instance, a stopped one, a failed one, some requests and a key.
//!
//! Run through `scripts/screenshots.sh`, which provisions llama-server and Chromium and builds
//! both programs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use llamactl_tests::browser::{Browser, signed_in};
use llamactl_tests::server::{MANAGEMENT_KEY, SpawnedServer, create_instance, create_key, server_config};
use llamactl_tests::{http, tiny_gguf};
use reqwest::Method;
use serde_json::json;

/// The pages shot: file name, hash route, and what to wait for.
const PAGES: &[(&str, &str, &str)] = &[
    ("overview", "#/overview", "[data-test=\"overview-status\"]"),
    ("instances", "#/instances", "[data-test=\"instance-row\"]"),
    ("instance", "#/instances/tiny", "[data-test=\"log-line\"]"),
    ("create", "#/create", "[data-field=\"name\"]"),
    ("activity", "#/activity", "[data-test=\"activity-row\"]"),
    ("keys", "#/keys", "[data-test=\"key-row\"]"),
    ("system", "#/system", "[data-test=\"system-problems\"]"),
];

async fn shoot(browser: &Browser, out: &Path, name: &str) {
    tokio::time::sleep(Duration::from_millis(600)).await;
    let png = browser.client.screenshot().await.unwrap();
    let file = out.join(format!("{name}.png"));
    std::fs::write(&file, png).unwrap();
    println!("{}", file.display());
}

#[tokio::main]
async fn main() {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "docs/screenshots".into()));
    std::fs::create_dir_all(&out).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = server_config(dir.path());
    let server_program = std::env::current_exe().unwrap().with_file_name("llamactl-server");
    let server = SpawnedServer::start_program(
        &server_program,
        dir.path(),
        &serde_json::to_value(&config).unwrap(),
        Stdio::null(),
    );
    let base = server.base.clone();
    let llama = |group: &str| {
        json!({"backend_type": "llama_cpp", "backend_options": {"model": tiny_gguf(), "ctx_size": 512},
               "group": group, "on_demand_start": true, "idle_timeout": "30m"})
    };
    for (name, options) in [
        ("tiny", llama("chat")),
        ("tiny-spare", llama("chat")),
        (
            "broken",
            json!({"backend_type": "custom", "backend_options": {"command": "/bin/false", "args": ["{port}"]},
                          "auto_restart": false}),
        ),
    ] {
        create_instance(&base, name, &options).await;
    }
    let _ = server.manage(Method::POST, "/api/v1/instances/broken/start").send().await;
    let secret = create_key(&base, "notebook").await;
    for (i, stream) in [false, true, false, true, false].into_iter().enumerate() {
        let answer = http()
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(&secret)
            .json(&json!({"model": "tiny", "stream": stream, "max_tokens": 12 + i * 4,
                          "messages": [{"role": "user", "content": "Tell me about llamas."}]}))
            .send()
            .await
            .unwrap();
        let _ = answer.bytes().await;
    }

    let browser = signed_in(&base).await;
    for (name, route, ready) in PAGES {
        browser.client.goto(&format!("{base}/{route}")).await.unwrap();
        browser.find_css(ready).await;
        shoot(&browser, &out, name).await;
    }
    browser.client.goto(&format!("{base}/#/playground")).await.unwrap();
    browser
        .wait_true("[...document.querySelectorAll('[data-test=\"pg-model\"] option')].some(o => o.value === 'tiny')")
        .await;
    browser
        .eval("(() => { const s = document.querySelector('[data-test=\"pg-model\"]'); s.value = 'tiny'; s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()")
        .await;
    browser.fill("[data-test=\"pg-input\"]", "Tell me about llamas.").await;
    browser.click("pg-send").await;
    browser.wait_text("[data-test=\"pg-tps\"]", |t| !t.trim().is_empty() && t != "—").await;
    shoot(&browser, &out, "playground").await;
    browser.click("theme-toggle").await;
    browser.client.goto(&format!("{base}/#/instances/tiny")).await.unwrap();
    browser.find("log-line").await;
    shoot(&browser, &out, "instance-dark").await;
    browser.close().await;

    let phone = Browser::start_sized(390, 844).await;
    phone.client.goto(&format!("{base}/")).await.unwrap();
    phone.fill("[data-test=\"signin-key\"]", MANAGEMENT_KEY).await;
    phone.click("signin-submit").await;
    phone.client.goto(&format!("{base}/#/instances")).await.unwrap();
    phone.find("instance-row").await;
    shoot(&phone, &out, "instances-phone").await;
    phone.close().await;
    assert!(server.terminate());
}
