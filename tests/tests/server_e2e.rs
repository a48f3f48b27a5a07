//! The real llamactl-server binary with real backends: llama-server and mlx_lm.server behind the
//! OpenAI-compatible endpoint, the official `openai` Python client, restarts on the same data,
//! graceful shutdown, legacy imports, and schemathesis fuzzing the API from its own document.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use futures::StreamExt;
use llamactl_tests::server::{MANAGEMENT_KEY, SpawnedServer, create_instance, http, server_config};
use llamactl_tests::{assert_chat_completion, assert_chat_stream, test_backend, tiny_gguf, tiny_hf_model};
use reqwest::Method;
use serde_json::{Value, json};

fn client_python() -> String {
    std::env::var("LLAMACTL_TEST_CLIENT_PYTHON")
        .expect("LLAMACTL_TEST_CLIENT_PYTHON is not set: run scripts/backends/provision.sh (scripts/test.sh does)")
}

fn llama(idle: &str) -> Value {
    json!({"backend_type": "llama_cpp",
        "backend_options": {"model": tiny_gguf(), "ctx_size": 512, "gpu_layers": 0, "parallel": 1, "threads": 2, "no_webui": true},
        "idle_timeout": idle})
}

async fn get_json(server: &SpawnedServer, path: &str) -> Value {
    llamactl_tests::server::get_json(&server.base, path).await
}

async fn wait_status(server: &SpawnedServer, name: &str, status: &str, timeout: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let body = get_json(server, &format!("/api/v1/instances/{name}")).await;
        if body["status"] == status {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{name} did not become {status}: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn chat(base: &str, key: &str, model: &str, stream: bool) -> reqwest::Response {
    let body =
        json!({"model": model, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 6, "stream": stream});
    http().post(format!("{base}/v1/chat/completions")).bearer_auth(key).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn llama_server_on_demand_through_the_proxy_idle_stop_eviction_and_restart_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = server_config(dir.path());
    config.instances.max_running_instances = 1;
    let server = SpawnedServer::start(dir.path(), &config);
    create_instance(&server.base, "tiny", &llama("3s")).await;
    create_instance(&server.base, "other", &llama("10m")).await;

    // On demand, plain and streamed; the first request waits for the cold start.
    let response = chat(&server.base, MANAGEMENT_KEY, "tiny", false).await;
    let status = response.status().as_u16();
    assert_chat_completion(status, &response.json().await.unwrap());
    let response = chat(&server.base, MANAGEMENT_KEY, "tiny", true).await;
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let status = response.status().as_u16();
    assert_chat_stream(status, &response.text().await.unwrap());
    let models: Value = http()
        .get(format!("{}/v1/models", server.base))
        .bearer_auth(MANAGEMENT_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["other", "tiny"]);

    // Logs follow: the recent lines first (llama-server's own output), then live ones.
    let logs = server.manage(Method::GET, "/api/v1/instances/tiny/logs?lines=200&follow=true").send().await.unwrap();
    let mut stream = logs.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("starting:") {
        seen.push_str(&String::from_utf8_lossy(
            &tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap().unwrap(),
        ));
    }
    assert!(seen.contains("llama") || seen.contains("server"), "{seen}");

    // Idle stop after three quiet seconds, seen live in the followed log.
    let stopped = wait_status(&server, "tiny", "stopped", Duration::from_secs(15)).await;
    assert_eq!(stopped["last_reason"]["kind"], "idle_timeout");
    while !seen.contains("idle_timeout") {
        seen.push_str(&String::from_utf8_lossy(
            &tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap().unwrap(),
        ));
    }

    // With max_running_instances 1, using "other" evicts "tiny" (idle, unpinned) and vice versa.
    assert_eq!(chat(&server.base, MANAGEMENT_KEY, "tiny", false).await.status().as_u16(), 200);
    assert_eq!(chat(&server.base, MANAGEMENT_KEY, "other", false).await.status().as_u16(), 200);
    let evicted = get_json(&server, "/api/v1/instances/tiny").await;
    assert_eq!(evicted["status"], "stopped");
    assert_eq!(evicted["last_reason"], json!({"kind": "evicted", "by": "other"}));

    // A key survives a restart of the server on the same data, and so do the instances:
    // "other" was running, so it runs again.
    let key: Value = server
        .manage(Method::POST, "/api/v1/auth/keys")
        .json(&json!({"name": "e2e", "permission_mode": "allow_all"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = key["key"].as_str().unwrap().to_owned();
    assert!(server.terminate(), "clean exit on SIGTERM");
    let server = SpawnedServer::start(dir.path(), &config);
    let list = get_json(&server, "/api/v1/instances").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    wait_status(&server, "other", "running", Duration::from_secs(30)).await;
    let response = chat(&server.base, &secret, "other", false).await;
    let status = response.status().as_u16();
    assert_chat_completion(status, &response.json().await.unwrap());
    let events = get_json(&server, "/api/v1/instances/other/events").await;
    let kinds: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["reason"]["kind"].as_str().unwrap()).collect();
    assert!(kinds.ends_with(&["shutdown", "shutdown", "boot", "ready"]), "{kinds:?}");
    assert!(server.terminate());
}

#[tokio::test]
async fn mlx_lm_server_through_the_proxy_gets_the_model_path_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = server_config(dir.path());
    config.backends.mlx.command = Some(llamactl_tests::mlx_server().display().to_string());
    let server = SpawnedServer::start(dir.path(), &config);
    let hf_cache = dir.path().join("hf-cache");
    std::fs::create_dir_all(&hf_cache).unwrap();
    let options = json!({"backend_type": "mlx_lm", "backend_options": {"model": tiny_hf_model(), "max_tokens": 6},
        "environment": {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": hf_cache}});
    create_instance(&server.base, "mlx", &options).await;
    // Clients ask for "mlx"; mlx_lm.server only answers to its model path: the proxy rewrites it.
    let response = chat(&server.base, MANAGEMENT_KEY, "mlx", false).await;
    let status = response.status().as_u16();
    assert_chat_completion(status, &response.json().await.unwrap());
    let response = chat(&server.base, MANAGEMENT_KEY, "mlx", true).await;
    let status = response.status().as_u16();
    assert_chat_stream(status, &response.text().await.unwrap());
    assert!(server.terminate());
}

#[tokio::test]
async fn the_official_openai_python_client_works_against_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let server = SpawnedServer::start(dir.path(), &server_config(dir.path()));
    create_instance(&server.base, "tiny", &llama("10m")).await;
    let key: Value = server
        .manage(Method::POST, "/api/v1/auth/keys")
        .json(&json!({"name": "python", "permission_mode": "allow_all"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/openai_client.py");
    let base = server.base.clone();
    let secret = key["key"].as_str().unwrap().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(client_python()).args([script, &base, &secret, "tiny"]).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "openai client failed:\n{stdout}\n{stderr}");
    for check in ["models ok", "chat ok", "stream ok", "completion ok", "unknown model ok: 404", "wrong key ok: 401"] {
        assert!(stdout.contains(check), "{check} missing in:\n{stdout}");
    }
    assert!(server.terminate());
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_stops_and_records_everything() {
    let dir = tempfile::tempdir().unwrap();
    let server = SpawnedServer::start(dir.path(), &server_config(dir.path()));
    let options = json!({"backend_type": "custom", "backend_options": {"command": test_backend(),
        "args": ["--host", "{host}", "--port", "{port}", "--response-delay-ms", "1500"]}});
    create_instance(&server.base, "slow", &options).await;
    server.manage(Method::POST, "/api/v1/instances/slow/start").send().await.unwrap();
    wait_status(&server, "slow", "running", Duration::from_secs(10)).await;
    let pid = get_json(&server, "/api/v1/instances/slow").await["pid"].as_i64().unwrap();

    let base = server.base.clone();
    let in_flight = tokio::spawn(async move { chat(&base, MANAGEMENT_KEY, "slow", false).await.status().as_u16() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let exited = tokio::task::spawn_blocking(move || server.terminate());
    assert_eq!(in_flight.await.unwrap(), 200, "the request in flight completed");
    assert!(exited.await.unwrap(), "clean exit");
    assert!(!llamactl_tests::process_alive(i32::try_from(pid).unwrap()), "the backend was stopped");
    let db = llamactl_core::SqliteDatabase::open(dir.path().join("llamactl.db")).await.unwrap();
    let stored = llamactl_core::Database::get(&db, "slow").await.unwrap().unwrap();
    assert_eq!(stored.runtime.status, llamactl_core::InstanceStatus::Stopped);
    assert_eq!(stored.runtime.last_reason, Some(llamactl_core::TransitionReason::Shutdown));
    assert_eq!(stored.runtime.desired_state, llamactl_core::DesiredState::Running, "comes back on the next start");
}

#[tokio::test]
async fn legacy_json_instance_files_are_imported_once_at_the_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let instances = dir.path().join("instances");
    std::fs::create_dir_all(&instances).unwrap();
    let file = json!({"name": "old", "status": "stopped", "created": 1_700_000_000,
        "options": {"backend_type": "llama_cpp", "backend_options": {"m": "/models/old.gguf", "c": 2048, "ngl": 0}, "idle_timeout": 5}});
    std::fs::write(instances.join("old.json"), file.to_string()).unwrap();
    let config = server_config(dir.path());
    let server = SpawnedServer::start(dir.path(), &config);
    assert!(server.banner.iter().any(|l| l.contains("imported:") && l.contains("old")), "{:?}", server.banner);
    let old = get_json(&server, "/api/v1/instances/old").await;
    assert_eq!(old["created"], 1_700_000_000);
    assert_eq!(old["options"]["backend_options"]["ctx_size"], 2048);
    assert_eq!(old["options"]["idle_timeout"], 5);
    assert!(!instances.join("old.json").exists(), "the original was archived");
    assert!(server.terminate());
    // The second start imports nothing.
    let server = SpawnedServer::start(dir.path(), &config);
    assert!(!server.banner.iter().any(|l| l.contains("imported:")));
    assert!(server.terminate());

    // A broken file stops the start, names the file, and changes nothing.
    let broken_dir = tempfile::tempdir().unwrap();
    let broken_instances = broken_dir.path().join("instances");
    std::fs::create_dir_all(&broken_instances).unwrap();
    std::fs::write(broken_instances.join("bad.json"), "{\"name\": \"bad\", \"options\": {\"backend_type\": 3}}")
        .unwrap();
    let config_file = broken_dir.path().join("llamactl.yaml");
    std::fs::write(&config_file, serde_json::to_string(&server_config(broken_dir.path())).unwrap()).unwrap();
    let output =
        Command::new(llamactl_tests::server::server_binary()).arg("--config").arg(&config_file).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.json") && stderr.contains("backend_type"), "{stderr}");
    assert!(broken_instances.join("bad.json").exists(), "the original is untouched");
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_schema_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let server = SpawnedServer::start(dir.path(), &server_config(dir.path()));
    let python = client_python();
    let url = format!("{}/api/v1/openapi.json", server.base);
    // Schemathesis keeps a cache in `.schemathesis/` of its working folder: not in the checkout.
    let work = dir.path().to_path_buf();
    let examples = std::env::var("LLAMACTL_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".into());
    let seed = std::env::var("LLAMACTL_SCHEMATHESIS_SEED").unwrap_or_else(|_| "7".into());
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .current_dir(work)
            .args(["-m", "schemathesis.cli", "run", &url])
            .args(["--header", &format!("Authorization: Bearer {MANAGEMENT_KEY}")])
            // Every check except "valid input is accepted": semantic validation (a model for vLLM, a
            // command line that parses) is stricter than a JSON Schema can say.
            .args(["--checks", "all", "--exclude-checks", "positive_data_acceptance"])
            // Streams that never end by design.
            .args(["--exclude-path", "/api/v1/events", "--exclude-path", "/api/v1/instances/{name}/logs"])
            // A quick pass in the suite; LLAMACTL_SCHEMATHESIS_EXAMPLES (and _SEED) for a long one.
            .args(["--max-examples", &examples, "--seed", &seed, "--request-timeout", "20", "--no-color"])
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
    assert!(server.terminate());
}
