//! Request activity with real backends: every proxied request is recorded with the tokens the
//! client received, refusals and failures with their status and error, hang-ups and API
//! cancellations as cancelled; the metrics agree with the records; waiting requests show in
//! `/api/v1/inflight`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::StreamExt;
use llamactl_tests::server::{MANAGEMENT_KEY, TestServer, create_instance, http};
use llamactl_tests::{mlx_server, test_backend, tiny_gguf, tiny_hf_model};
use serde_json::{Value, json};

fn backend(args: &[&str]) -> Value {
    let mut all = vec!["--host", "{host}", "--port", "{port}"];
    all.extend_from_slice(args);
    json!({"backend_type": "custom", "backend_options": {"command": test_backend(), "args": all},
        "environment": {"RUST_BACKTRACE": "0"}})
}

/// The newest records, waiting until there are at least `count` matching `query`.
async fn records(server: &TestServer, query: &str, count: usize) -> Vec<Value> {
    for _ in 0..200 {
        let page: Value = server
            .manage(reqwest::Method::GET, &format!("/api/v1/activity?{query}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap().clone();
        if items.len() >= count {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {count} records for {query}");
}

/// The record of request `id`, once written.
async fn record_of(server: &TestServer, id: i64) -> Value {
    for _ in 0..200 {
        let items = records(server, &format!("before_id={}&limit=1", id + 1), 0).await;
        if let Some(found) = items.into_iter().find(|r| r["id"] == id) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no record of request {id}");
}

async fn metrics_text(server: &TestServer) -> String {
    server.manage(reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap()
}

/// The value of the series `name{labels}` in a Prometheus text (0 if absent).
fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .find(|line| labels.iter().all(|(k, v)| line.contains(&format!("{k}=\"{v}\""))))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

async fn post(server: &TestServer, path: &str, body: &Value) -> reqwest::Response {
    http().post(format!("{}{path}", server.base)).bearer_auth(MANAGEMENT_KEY).json(body).send().await.unwrap()
}

/// A chat request to `model` sent from a task of its own (it may wait for a start).
fn chat_in_background(server: &TestServer, model: &str) -> tokio::task::JoinHandle<reqwest::Response> {
    let (base, body) = (server.base.clone(), json!({"model": model}));
    tokio::spawn(async move {
        http().post(format!("{base}/v1/chat/completions")).bearer_auth(MANAGEMENT_KEY).json(&body).send().await.unwrap()
    })
}

fn sse_usage(text: &str) -> Value {
    text.lines()
        .rev()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|v| v["usage"].is_object())
        .map(|v| v["usage"].clone())
        .unwrap_or(Value::Null)
}

/// Chat through `model` twice (whole and streamed); the records carry the usage the client got.
async fn usage_is_recorded_as_received(server: &TestServer, model: &str) {
    let whole = post(
        server,
        "/v1/chat/completions",
        &json!({"model": model, "max_tokens": 6, "temperature": 0,
        "messages": [{"role": "user", "content": "Hello there"}]}),
    )
    .await;
    assert_eq!(whole.status(), 200);
    let whole: Value = whole.json().await.unwrap();
    let streamed = post(
        server,
        "/v1/chat/completions",
        &json!({"model": model, "max_tokens": 6, "stream": true,
        "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "Hello again"}]}),
    )
    .await;
    assert_eq!(streamed.status(), 200);
    let streamed_usage = sse_usage(&streamed.text().await.unwrap());
    let items = records(server, &format!("instance={model}"), 2).await;
    let (stream_record, whole_record) = (&items[0], &items[1]);
    assert_eq!(whole_record["streamed"], false);
    assert_eq!(whole_record["outcome"], "completed");
    assert_eq!(whole_record["status"], 200);
    assert_eq!(whole_record["key_name"], "management");
    assert_eq!(whole_record["prompt_tokens"], whole["usage"]["prompt_tokens"], "{whole_record}");
    assert_eq!(whole_record["completion_tokens"], whole["usage"]["completion_tokens"]);
    assert!(whole_record["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(whole_record["ttfb_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(stream_record["streamed"], true);
    assert_eq!(stream_record["outcome"], "completed");
    assert!(streamed_usage.is_object(), "the backend sent usage in its stream");
    assert_eq!(stream_record["prompt_tokens"], streamed_usage["prompt_tokens"], "{stream_record}");
    assert_eq!(stream_record["completion_tokens"], streamed_usage["completion_tokens"]);
    assert!(stream_record["generation_tps"].as_f64().unwrap() > 0.0);

    // The metrics count the same tokens as the records.
    let text = metrics_text(server).await;
    let sum = |field: &str| items.iter().map(|r| r[field].as_u64().unwrap_or(0)).sum::<u64>() as f64;
    for (kind, field) in [("prompt", "prompt_tokens"), ("completion", "completion_tokens")] {
        let counted = series(&text, "llamactl_tokens_total", &[("instance", model), ("kind", kind)]);
        assert_eq!(counted, sum(field), "{kind} tokens of {model} in /metrics");
    }
    let answered = series(&text, "llamactl_proxy_requests_total", &[("instance", model), ("status", "200")]);
    assert_eq!(answered, items.len() as f64);
}

#[tokio::test]
async fn llama_server_usage_is_recorded_as_the_client_received_it() {
    let server = TestServer::start(|_| {}).await;
    create_instance(
        &server.base,
        "tiny",
        &json!({"backend_type": "llama_cpp", "backend_options": {
        "model": tiny_gguf(), "ctx_size": 512, "gpu_layers": 0, "parallel": 1, "threads": 2, "no_webui": true}}),
    )
    .await;
    usage_is_recorded_as_received(&server, "tiny").await;
    // llama.cpp's timings give the prompt speed too.
    let items = records(&server, "instance=tiny", 2).await;
    assert!(items[1]["prompt_tps"].as_f64().is_some(), "{}", items[1]);
}

#[tokio::test]
async fn mlx_lm_usage_is_recorded_as_the_client_received_it() {
    let server = TestServer::start(|config| {
        config.backends.mlx.command = Some(mlx_server().display().to_string());
    })
    .await;
    let hf_cache = server.dir.path().join("hf-cache");
    std::fs::create_dir_all(&hf_cache).unwrap();
    create_instance(
        &server.base,
        "mlx",
        &json!({"backend_type": "mlx_lm",
        "backend_options": {"model": tiny_hf_model(), "max_tokens": 6},
        "environment": {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": hf_cache}}),
    )
    .await;
    usage_is_recorded_as_received(&server, "mlx").await;
}

#[tokio::test]
async fn refusals_and_failures_are_recorded_with_status_and_error() {
    let server = TestServer::start(|config| {
        config.instances.on_demand_queue_size = 1;
    })
    .await;
    create_instance(&server.base, "slow", &backend(&["--ready-after-ms", "1500"])).await;
    create_instance(&server.base, "dying", &backend(&["--stream-chunks", "50", "--stream-interval-ms", "20"])).await;

    // A wrong key: 401, no key name.
    let refused = http()
        .post(format!("{}/v1/chat/completions", server.base))
        .bearer_auth("sk-wrong")
        .json(&json!({"model": "slow"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let items = records(&server, "status=401", 1).await;
    assert_eq!((items[0]["outcome"].as_str(), items[0]["key_name"].as_str()), (Some("error"), None));
    assert!(items[0]["error"].as_str().unwrap().contains("key"), "{}", items[0]);
    assert_eq!(items[0]["client"], "127.0.0.1");

    // The queue of one: the first request waits for the start, the second is refused.
    let first = chat_in_background(&server, "slow");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = post(&server, "/v1/chat/completions", &json!({"model": "slow"})).await;
    assert_eq!(second.status(), 503);
    assert_eq!(first.await.unwrap().status(), 200);
    let full = records(&server, "status=503&instance=slow", 1).await;
    assert!(full[0]["error"].as_str().unwrap().starts_with("queue_full"), "{}", full[0]);
    let waited = records(&server, "status=200&instance=slow", 1).await;
    assert!(waited[0]["queue_ms"].as_f64().unwrap() > 500.0, "the wait is recorded: {}", waited[0]);

    // A backend that dies in the middle of its stream.
    let started = server.manage(reqwest::Method::POST, "/api/v1/instances/dying/start").send().await.unwrap();
    assert_eq!(started.status(), 200);
    let pid = started.json::<Value>().await.unwrap()["pid"].as_i64();
    let mut stream =
        post(&server, "/v1/chat/completions", &json!({"model": "dying", "stream": true})).await.bytes_stream();
    stream.next().await.unwrap().unwrap();
    let pid = match pid {
        Some(pid) => pid,
        None => server
            .manage(reqwest::Method::GET, "/api/v1/instances/dying")
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["pid"]
            .as_i64()
            .unwrap(),
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    while let Some(Ok(_)) = stream.next().await {}
    let broken = records(&server, "instance=dying", 1).await;
    assert_eq!(broken[0]["outcome"], "error", "{}", broken[0]);
    assert!(broken[0]["error"].as_str().unwrap().contains("broke off"), "{}", broken[0]);
}

#[tokio::test]
async fn hang_ups_and_api_cancellations_are_recorded_as_cancelled() {
    let server = TestServer::start(|_| {}).await;
    create_instance(&server.base, "talker", &backend(&["--stream-chunks", "200", "--stream-interval-ms", "20"])).await;
    create_instance(&server.base, "sleepy", &backend(&["--ready-after-ms", "2000"])).await;

    // A client that hangs up mid-stream.
    let mut stream =
        post(&server, "/v1/chat/completions", &json!({"model": "talker", "stream": true})).await.bytes_stream();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    let hung_up = records(&server, "instance=talker", 1).await;
    assert_eq!(hung_up[0]["outcome"], "cancelled", "{}", hung_up[0]);
    assert_eq!(hung_up[0]["streamed"], true);

    // A stream cancelled through the API ends for the client and for the backend.
    let response = post(&server, "/v1/chat/completions", &json!({"model": "talker", "stream": true})).await;
    let mut stream = response.bytes_stream();
    stream.next().await.unwrap().unwrap();
    let inflight: Value =
        server.manage(reqwest::Method::GET, "/api/v1/inflight").send().await.unwrap().json().await.unwrap();
    let streaming = inflight.as_array().unwrap().iter().find(|r| r["instance"] == "talker").unwrap().clone();
    assert_eq!(streaming["state"], "streaming");
    assert!(streaming["bytes_sent"].as_u64().unwrap() > 0);
    let id = streaming["id"].as_i64().unwrap();
    let cancelled =
        server.manage(reqwest::Method::POST, &format!("/api/v1/inflight/{id}/cancel")).send().await.unwrap();
    assert_eq!(cancelled.status(), 204);
    let ended =
        tokio::time::timeout(Duration::from_secs(5), async { while let Some(Ok(_)) = stream.next().await {} }).await;
    assert!(ended.is_ok(), "the client's stream ended");
    let record = record_of(&server, id).await;
    assert_eq!(record["outcome"], "cancelled", "{record}");
    let mut cut = false;
    for _ in 0..100 {
        let logs = server
            .manage(reqwest::Method::GET, "/api/v1/instances/talker/logs")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if logs.matches("cut by the client").count() >= 2 {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cut, "the backend saw both streams cut");
    let gone = server.manage(reqwest::Method::POST, &format!("/api/v1/inflight/{id}/cancel")).send().await.unwrap();
    assert_eq!(gone.status(), 404, "no longer in flight");

    // A request waiting for a cold start is listed as queued with its place, and can be cancelled.
    let waiting = chat_in_background(&server, "sleepy");
    let mut queued = None;
    for _ in 0..100 {
        let inflight: Value =
            server.manage(reqwest::Method::GET, "/api/v1/inflight").send().await.unwrap().json().await.unwrap();
        queued =
            inflight.as_array().unwrap().iter().find(|r| r["instance"] == "sleepy" && r["state"] == "queued").cloned();
        if queued.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let queued = queued.expect("the waiting request is listed as queued");
    assert_eq!(queued["position"], 1);
    assert_eq!(queued["key_name"], "management");
    assert!(["starting", "stopped"].contains(&queued["instance_status"].as_str().unwrap()), "{queued}");
    let id = queued["id"].as_i64().unwrap();
    let cancelled =
        server.manage(reqwest::Method::POST, &format!("/api/v1/inflight/{id}/cancel")).send().await.unwrap();
    assert_eq!(cancelled.status(), 204);
    let answer = waiting.await.unwrap();
    assert_eq!(answer.status(), 503);
    let record = record_of(&server, id).await;
    assert_eq!((record["outcome"].as_str(), record["status"].as_u64()), (Some("cancelled"), Some(503)), "{record}");
}

#[tokio::test]
async fn two_keys_are_counted_apart_and_activity_reaches_the_event_stream() {
    let server = TestServer::start(|_| {}).await;
    create_instance(&server.base, "shared", &backend(&[])).await;
    let mut events = server.manage(reqwest::Method::GET, "/api/v1/events").send().await.unwrap().bytes_stream();
    let mut secrets = Vec::new();
    for name in ["alice", "bob"] {
        let created: Value = server
            .manage(reqwest::Method::POST, "/api/v1/auth/keys")
            .json(&json!({"name": name, "permission_mode": "allow_all"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        secrets.push(created["key_secret"].as_str().unwrap().to_owned());
    }
    for (secret, times) in secrets.iter().zip([3, 1]) {
        for _ in 0..times {
            let response = http()
                .post(format!("{}/v1/chat/completions", server.base))
                .bearer_auth(secret)
                .json(&json!({"model": "shared", "messages": []}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    }
    records(&server, "instance=shared", 4).await;
    let stats: Value = server
        .manage(reqwest::Method::GET, "/api/v1/activity/stats?group_by=key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let of = |name: &str| stats["groups"].as_array().unwrap().iter().find(|g| g["group"] == name).unwrap().clone();
    assert_eq!((of("alice")["requests"].as_u64(), of("bob")["requests"].as_u64()), (Some(3), Some(1)));
    assert_eq!(of("alice")["prompt_tokens"], 3, "the test backend reports one prompt token per answer");
    let by_key = records(&server, "key=bob", 1).await;
    assert_eq!(by_key.len(), 1);
    let text = metrics_text(&server).await;
    assert_eq!(series(&text, "llamactl_key_requests_total", &[("key", "alice")]), 3.0);
    assert_eq!(series(&text, "llamactl_key_tokens_total", &[("key", "bob"), ("kind", "completion")]), 1.0);
    let bad = server.manage(reqwest::Method::GET, "/api/v1/activity/stats?group_by=path").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("group_by"));

    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(chunk)) = events.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.matches("event: activity").count() >= 4 {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "four activity events: {seen}");
    assert!(seen.contains("\"key_name\":\"alice\""));
}

#[tokio::test]
async fn records_are_kept_across_a_restart_and_pruned_by_count() {
    let server = TestServer::start(|config| config.activity.max_rows = 3).await;
    create_instance(&server.base, "keep", &backend(&[])).await;
    for _ in 0..2 {
        assert_eq!(post(&server, "/v1/chat/completions", &json!({"model": "keep"})).await.status(), 200);
    }
    let before = records(&server, "instance=keep", 2).await;
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |config| config.activity.max_rows = 3).await;
    for _ in 0..3 {
        assert_eq!(post(&server, "/v1/chat/completions", &json!({"model": "keep"})).await.status(), 200);
    }
    let after = records(&server, "instance=keep", 5).await;
    assert!(after[0]["id"].as_i64() > before[0]["id"].as_i64(), "ids continue after a restart");
    // Pruning runs at start and every minute: the 5 records are pruned to 3 on the next start.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |config| config.activity.max_rows = 3).await;
    let mut kept = Vec::new();
    for _ in 0..100 {
        let page: Value =
            server.manage(reqwest::Method::GET, "/api/v1/activity").send().await.unwrap().json().await.unwrap();
        kept = page["items"].as_array().unwrap().clone();
        if kept.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(kept.len(), 3, "pruned to the newest 3");
    assert_eq!(kept[0]["id"], after[0]["id"]);
}
