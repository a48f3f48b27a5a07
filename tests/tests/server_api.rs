//! The REST API and the proxy of llamactl-server, in process, against the fault-injection
//! test backend.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::StreamExt;
use llamactl_tests::server::{MANAGEMENT_KEY, TestServer, create_instance, http};
use llamactl_tests::test_backend;
use reqwest::Method;
use serde_json::{Value, json};

/// Options of a test-backend instance, as API JSON.
fn backend(args: &[&str]) -> Value {
    let mut all = vec!["--host", "{host}", "--port", "{port}"];
    all.extend_from_slice(args);
    json!({"backend_type": "custom", "backend_options": {"command": test_backend(), "args": all}, "environment": {"RUST_BACKTRACE": "0"}})
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn wait_status(server: &TestServer, name: &str, status: &str) -> Value {
    for _ in 0..1000 {
        let (_, body) =
            json_of(server.manage(Method::GET, &format!("/api/v1/instances/{name}")).send().await.unwrap()).await;
        if body["status"] == status {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{name} did not become {status}");
}

#[tokio::test]
async fn instances_are_created_read_replaced_and_deleted() {
    let server = TestServer::start(|_| {}).await;
    let created = create_instance(&server.base, "crud", &backend(&[])).await;
    assert_eq!(created["name"], "crud");
    assert_eq!(created["status"], "stopped");
    assert_eq!(created["ready"], false);
    assert!(created["id"].as_i64().unwrap() > 0);
    assert_eq!(created["options"]["backend_type"], "custom");

    let (status, list) = json_of(server.manage(Method::GET, "/api/v1/instances").send().await.unwrap()).await;
    assert_eq!((status, list.as_array().unwrap().len()), (200, 1));

    let mut replaced = backend(&["--ready-after-ms", "10"]);
    replaced["idle_timeout"] = json!("45s");
    let (status, body) =
        json_of(server.manage(Method::PUT, "/api/v1/instances/crud").json(&replaced).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["options"]["idle_timeout"], "45s");

    let deleted = server.manage(Method::DELETE, "/api/v1/instances/crud").send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let (status, body) = json_of(server.manage(Method::GET, "/api/v1/instances/crud").send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn concurrent_creates_over_the_api_stop_at_max_instances() {
    let server = TestServer::start(|config| config.instances.max_instances = 3).await;
    let creates =
        (0..12).map(|i| server.manage(Method::POST, &format!("/api/v1/instances/m{i}")).json(&backend(&[])).send());
    let mut statuses = Vec::new();
    for response in futures::future::join_all(creates).await {
        let (status, body) = json_of(response.unwrap()).await;
        if status != 201 {
            assert_eq!((status, body["error"].as_str()), (409, Some("max_instances")), "{body}");
            assert!(body["details"].as_str().unwrap().contains("max_instances (3) reached"), "{body}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 3, "{statuses:?}");
    let (_, list) = json_of(server.manage(Method::GET, "/api/v1/instances").send().await.unwrap()).await;
    assert_eq!(list.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_listing_of_many_pages_is_one_json_array_in_name_order() {
    let server = TestServer::start(|_| {}).await;
    let list = || async {
        let response = server.manage(Method::GET, "/api/v1/instances").send().await.unwrap();
        assert_eq!(response.headers()["content-type"], "application/json");
        let text = response.text().await.unwrap();
        let names: Vec<String> = serde_json::from_str::<Vec<Value>>(&text)
            .unwrap_or_else(|e| panic!("not a JSON array ({e}): {text}"))
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect();
        names
    };
    assert!(list().await.is_empty());
    // The body is written 128 instances at a time: exactly two pages, then one more.
    let create = |i: usize| {
        let server = &server;
        async move {
            let path = format!("/api/v1/instances/p{i:03}");
            let response = server.manage(Method::POST, &path).json(&backend(&[])).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 201);
        }
    };
    futures::future::join_all((0..256).map(create)).await;
    let names = list().await;
    assert_eq!(names, (0..256).map(|i| format!("p{i:03}")).collect::<Vec<_>>());
    create(256).await;
    let names = list().await;
    assert_eq!((names.len(), names.last().map(String::as_str)), (257, Some("p256")));
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_naming_the_field() {
    let server = TestServer::start(|c| c.server.max_body_bytes = 64 * 1024).await;
    let post =
        |name: &str, body: Value| server.manage(Method::POST, &format!("/api/v1/instances/{name}")).json(&body).send();
    let cases = [
        (
            "ok-name",
            json!({"backend_type": "llama_cpp", "backend_options": {"ctx_size": "big"}}),
            400,
            "backend_options.ctx_size",
        ),
        ("ok-name", json!({"backend_type": "vllm"}), 400, "backend_options.model"),
        (
            "ok-name",
            json!({"backend_type": "vllm", "backend_options": {"model": "m"}, "auto_restrat": true}),
            400,
            "auto_restrat",
        ),
        ("bad name!", json!({"backend_type": "vllm", "backend_options": {"model": "m"}}), 400, "name:"),
        ("ok-name", json!([1, 2]), 400, "options"),
    ];
    for (name, body, status, field) in cases {
        let (got, answer) = json_of(post(name, body.clone()).await.unwrap()).await;
        assert_eq!(got, status, "{name} {body}: {answer}");
        assert!(answer["details"].as_str().unwrap().contains(field), "{answer} should name {field}");
    }
    let not_json = server.manage(Method::POST, "/api/v1/instances/x").body("{nope").send().await.unwrap();
    assert_eq!(not_json.status().as_u16(), 400);
    let huge = json!({"backend_type": "vllm", "backend_options": {"model": "m".repeat(100_000)}});
    assert_eq!(post("huge", huge).await.unwrap().status().as_u16(), 413);
    // Nothing of the failures was stored; a duplicate is a conflict.
    create_instance(&server.base, "dup", &backend(&[])).await;
    let (status, body) = json_of(post("dup", backend(&[])).await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("conflict")));
    let (_, list) = json_of(server.manage(Method::GET, "/api/v1/instances").send().await.unwrap()).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn lifecycle_over_rest_with_status_events_and_logs() {
    let server = TestServer::start(|_| {}).await;
    create_instance(&server.base, "life", &backend(&["--ready-after-ms", "200", "--log-lines", "3"])).await;
    let events = http().get(format!("{}/api/v1/events", server.base)).bearer_auth(MANAGEMENT_KEY).send().await.unwrap();
    let mut sse = events.bytes_stream();

    let (status, started) =
        json_of(server.manage(Method::POST, "/api/v1/instances/life/start").send().await.unwrap()).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["status"], "starting", "not ready yet");
    let running = wait_status(&server, "life", "running").await;
    assert_eq!(running["ready"], true);
    assert!(running["port"].as_u64().is_some());

    // The SSE stream saw both transitions.
    let mut seen = String::new();
    while !(seen.contains("\"to\":\"starting\"") && seen.contains("\"to\":\"running\"")) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), sse.next()).await.unwrap().unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: status"), "{seen}");

    let logs = server.manage(Method::GET, "/api/v1/instances/life/logs?lines=50").send().await.unwrap();
    assert_eq!(logs.headers()["content-type"], "text/plain; charset=utf-8");
    let text = logs.text().await.unwrap();
    assert!(text.contains("log line 2") && text.contains("starting:"), "{text}");

    let (_, stopped) = json_of(server.manage(Method::POST, "/api/v1/instances/life/stop").send().await.unwrap()).await;
    assert_eq!(stopped["status"], "stopped");
    assert_eq!(stopped["last_reason"]["kind"], "user_stop");
    let (_, history) = json_of(server.manage(Method::GET, "/api/v1/instances/life/events").send().await.unwrap()).await;
    let kinds: Vec<&str> = history.as_array().unwrap().iter().map(|e| e["reason"]["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["user_start", "ready", "user_stop", "user_stop"]);
    let (_, page) = json_of(
        server
            .manage(Method::GET, &format!("/api/v1/instances/life/events?after_id={}&limit=1", history[1]["id"]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["id"], history[2]["id"]);
}

#[tokio::test]
async fn log_follow_starts_with_recent_lines_and_continues_live() {
    let server = TestServer::start(|_| {}).await;
    create_instance(&server.base, "follow", &backend(&["--log-lines", "5"])).await;
    server.manage(Method::POST, "/api/v1/instances/follow/start").send().await.unwrap();
    wait_status(&server, "follow", "running").await;
    let response =
        server.manage(Method::GET, "/api/v1/instances/follow/logs?lines=3&follow=true").send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let mut seen = String::new();
    while seen.matches("data: ").count() < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    // A new line (the stop) arrives live.
    server.manage(Method::POST, "/api/v1/instances/follow/stop").send().await.unwrap();
    while !seen.contains("running -> stopping") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: manager"), "{seen}");
}

#[tokio::test]
async fn the_openai_endpoint_starts_on_demand_and_rewrites_only_the_model() {
    let server = TestServer::start(|_| {}).await;
    let mut options = backend(&["--ready-after-ms", "300"]);
    options["backend_options"]["request_model"] = json!("backend-model-name");
    create_instance(&server.base, "chat", &options).await;

    // A body with odd formatting, big numbers and a nested "model": only the top-level model changes.
    let body = "{\"z\": 1.10000000000000001, \"model\":  \"chat\", \"nested\": {\"model\": \"keep\"}, \"n\": 123456789012345678901234567890}";
    let response = http()
        .post(format!("{}/v1/echo?api_key={MANAGEMENT_KEY}&keep=1", server.base))
        .header("x-api-key", MANAGEMENT_KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let (status, echoed) = json_of(response).await;
    assert_eq!(status, 200, "{echoed}");
    assert_eq!(
        echoed["body"],
        "{\"z\": 1.10000000000000001, \"model\":  \"backend-model-name\", \"nested\": {\"model\": \"keep\"}, \"n\": 123456789012345678901234567890}"
    );
    // None of the manager's credentials reached the backend.
    assert_eq!(echoed["query"], "keep=1");
    let headers = echoed["headers"].as_object().unwrap();
    assert!(!headers.contains_key("authorization") && !headers.contains_key("x-api-key"), "{headers:?}");

    // A regular chat completion, plain and streamed.
    let request = json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]});
    let (status, answer) = json_of(
        http()
            .post(format!("{}/v1/chat/completions", server.base))
            .bearer_auth(MANAGEMENT_KEY)
            .json(&request)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["model"], "backend-model-name");
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let response = http()
        .post(format!("{}/v1/chat/completions", server.base))
        .bearer_auth(MANAGEMENT_KEY)
        .json(&streamed)
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert_eq!(text.matches("data: ").count(), 5, "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));

    // /v1/models lists it.
    let (_, models) =
        json_of(http().get(format!("{}/v1/models", server.base)).bearer_auth(MANAGEMENT_KEY).send().await.unwrap())
            .await;
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "chat");

    // Unknown models and bodies without one are answered in the OpenAI form.
    let (status, error) = json_of(
        http()
            .post(format!("{}/v1/chat/completions", server.base))
            .bearer_auth(MANAGEMENT_KEY)
            .json(&json!({"model": "nope"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error["error"]["code"].as_str()), (404, Some("model_not_found")));
    let (status, error) = json_of(
        http()
            .post(format!("{}/v1/chat/completions", server.base))
            .bearer_auth(MANAGEMENT_KEY)
            .json(&json!({"prompt": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error["error"]["type"].as_str()), (400, Some("invalid_request_error")));
}

#[tokio::test]
async fn a_full_cold_start_queue_and_a_missed_deadline_answer_503_with_retry_after() {
    let server = TestServer::start(|c| {
        c.instances.on_demand_queue_size = 2;
        c.instances.on_demand_start_timeout = 1;
    })
    .await;
    create_instance(&server.base, "slow", &backend(&["--ready-after-ms", "2500"])).await;
    let request = json!({"model": "slow", "messages": []});
    let send = || {
        http().post(format!("{}/v1/chat/completions", server.base)).bearer_auth(MANAGEMENT_KEY).json(&request).send()
    };
    let answers = futures::future::join_all((0..5).map(|_| send())).await;
    let mut statuses: Vec<u16> = Vec::new();
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status().as_u16(), 503);
        assert!(answer.headers().get("retry-after").is_some(), "every 503 says when to retry");
        let body: Value = answer.json().await.unwrap();
        statuses.push(if body["error"]["code"] == "queue_full" { 1 } else { 0 });
    }
    assert_eq!(statuses.iter().sum::<u16>(), 3, "two waited (and timed out), three found the queue full");
    // The instance went on starting for later requests.
    wait_status(&server, "slow", "running").await;
    assert_eq!(send().await.unwrap().status().as_u16(), 200);
}

#[tokio::test]
async fn inference_keys_are_shown_once_scoped_per_instance_and_revocable() {
    let server = TestServer::start(|_| {}).await;
    create_instance(&server.base, "allowed", &backend(&[])).await;
    create_instance(&server.base, "other", &backend(&[])).await;
    let (_, allowed) = json_of(server.manage(Method::GET, "/api/v1/instances/allowed").send().await.unwrap()).await;
    let request = json!({
        "name": "scoped", "permission_mode": "per_instance",
        "instance_permissions": [{"instance_id": allowed["id"], "can_infer": true, "can_start": true}]
    });
    let (status, created) =
        json_of(server.manage(Method::POST, "/api/v1/auth/keys").json(&request).send().await.unwrap()).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("llamactl-") && secret.len() == 73);
    let id = created["id"].as_i64().unwrap();

    let (_, listed) = json_of(server.manage(Method::GET, "/api/v1/auth/keys").send().await.unwrap()).await;
    assert!(!listed.to_string().contains(&secret), "the secret is never shown again");
    let (_, rights) =
        json_of(server.manage(Method::GET, &format!("/api/v1/auth/keys/{id}/permissions")).send().await.unwrap()).await;
    assert_eq!(rights[0]["instance_name"], "allowed");
    assert_eq!((rights[0]["can_infer"].as_bool(), rights[0]["can_evict"].as_bool()), (Some(true), Some(false)));

    let chat = |model: &str, key: &str| {
        http()
            .post(format!("{}/v1/chat/completions", server.base))
            .bearer_auth(key)
            .json(&json!({"model": model}))
            .send()
    };
    assert_eq!(chat("allowed", &secret).await.unwrap().status().as_u16(), 200, "starts it on demand");
    assert_eq!(chat("other", &secret).await.unwrap().status().as_u16(), 403);
    // An inference key cannot manage.
    let manage = http().get(format!("{}/api/v1/instances", server.base)).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(manage.status().as_u16(), 403);
    // /v1/models shows only what the key may use.
    let (_, models) =
        json_of(http().get(format!("{}/v1/models", server.base)).bearer_auth(&secret).send().await.unwrap()).await;
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["allowed"]);

    assert_eq!(
        server.manage(Method::DELETE, &format!("/api/v1/auth/keys/{id}")).send().await.unwrap().status().as_u16(),
        204
    );
    assert_eq!(chat("allowed", &secret).await.unwrap().status().as_u16(), 401);

    // Keys without the right to start cannot wake a stopped instance.
    let no_start = json!({"name": "nostart", "permission_mode": "per_instance",
        "instance_permissions": [{"instance_name": "other", "can_infer": true}]});
    let (_, created) =
        json_of(server.manage(Method::POST, "/api/v1/auth/keys").json(&no_start).send().await.unwrap()).await;
    let (status, error) = json_of(chat("other", created["key"].as_str().unwrap()).await.unwrap()).await;
    assert_eq!(status, 403, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("may not start"));

    let bad = json!({"name": "", "permission_mode": "allow_all"});
    let (status, error) =
        json_of(server.manage(Method::POST, "/api/v1/auth/keys").json(&bad).send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(error["details"].as_str().unwrap().starts_with("name:"));
    let past = json!({"name": "old", "permission_mode": "allow_all", "expires_at": 1});
    assert_eq!(
        server.manage(Method::POST, "/api/v1/auth/keys").json(&past).send().await.unwrap().status().as_u16(),
        400
    );
}

#[tokio::test]
async fn metrics_count_instances_requests_and_transitions() {
    let server = TestServer::start(|_| {}).await;
    create_instance(&server.base, "metered", &backend(&[])).await;
    let request = json!({"model": "metered", "messages": []});
    for _ in 0..3 {
        let response = http()
            .post(format!("{}/v1/chat/completions", server.base))
            .bearer_auth(MANAGEMENT_KEY)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.bytes().await.unwrap();
    }
    let mut text = String::new();
    for _ in 0..100 {
        text = server.manage(Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
        if text.contains("llamactl_proxy_requests_total{instance=\"metered\",status=\"200\"} 3") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(text.contains("llamactl_instances{status=\"running\"} 1"), "{text}");
    assert!(text.contains("llamactl_proxy_requests_total{instance=\"metered\",status=\"200\"} 3"), "{text}");
    assert!(text.contains("llamactl_transitions_total{to=\"starting\",reason=\"on_demand\"}"), "{text}");
    assert!(text.contains("llamactl_cold_start_wait_seconds"), "{text}");
    assert_eq!(http().get(format!("{}/metrics", server.base)).send().await.unwrap().status().as_u16(), 401);
}

#[tokio::test]
async fn health_ready_version_config_and_docs() {
    let server = TestServer::start(|c| c.auth.management_keys = vec!["secret-one".into()]).await;
    let get = |path: &str| http().get(format!("{}{path}", server.base)).send();
    assert_eq!(get("/health").await.unwrap().status().as_u16(), 200);
    let (status, ready) = json_of(get("/ready").await.unwrap()).await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));
    assert_eq!(get("/api/v1/openapi.json").await.unwrap().status().as_u16(), 200);
    let docs = get("/swagger-ui/").await.unwrap();
    assert_eq!(docs.status().as_u16(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"), "the docs page is served from the binary");
    let config = http()
        .get(format!("{}/api/v1/config", server.base))
        .bearer_auth("secret-one")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!config.contains("secret-one"), "secrets are removed: {config}");
    let version = http().get(format!("{}/api/v1/version", server.base)).bearer_auth("secret-one").send().await.unwrap();
    assert!(version.text().await.unwrap().starts_with("llamactl-server "));
    let (status, body) = json_of(get("/no/such/route").await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn parse_command_imports_a_pasted_command_line() {
    let server = TestServer::start(|_| {}).await;
    let (status, parsed) = json_of(
        server
            .manage(Method::POST, "/api/v1/backends/llama-cpp/parse-command")
            .json(&json!({"command": "llama-server -m /models/q.gguf -c 4096 -ngl 0 --jinja"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{parsed}");
    assert_eq!(parsed["backend_type"], "llama_cpp");
    assert_eq!(parsed["backend_options"]["ctx_size"], 4096);
    assert_eq!(parsed["backend_options"]["gpu_layers"], 0);
    // What it returns creates an instance as it is.
    create_instance(&server.base, "pasted", &parsed).await;
    let (status, error) = json_of(
        server
            .manage(Method::POST, "/api/v1/backends/vllm/parse-command")
            .json(&json!({"command": "vllm serve 'unterminated"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert!(error["details"].as_str().unwrap().starts_with("command:"));
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_stream_cancels_the_upstream_request_and_frees_the_instance() {
    let server = TestServer::start(|_| {}).await;
    create_instance(&server.base, "streamer", &backend(&["--stream-chunks", "200", "--stream-interval-ms", "20"]))
        .await;
    let request = json!({"model": "streamer", "messages": [], "stream": true});
    let response = http()
        .post(format!("{}/v1/chat/completions", server.base))
        .bearer_auth(MANAGEMENT_KEY)
        .json(&request)
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("data: "), "chunks arrive as they come");
    let (_, busy) = json_of(server.manage(Method::GET, "/api/v1/instances/streamer").send().await.unwrap()).await;
    assert_eq!(busy["in_flight"], 1, "an open stream counts as busy");
    drop(stream);
    let mut cut = false;
    for _ in 0..500 {
        let (_, info) = json_of(server.manage(Method::GET, "/api/v1/instances/streamer").send().await.unwrap()).await;
        let logs =
            server.manage(Method::GET, "/api/v1/instances/streamer/logs").send().await.unwrap().text().await.unwrap();
        if info["in_flight"] == 0 && logs.contains("cut by the client") {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(cut, "the backend saw the stream cut and the lease was released");
}

#[tokio::test]
async fn an_on_demand_start_whose_program_is_missing_says_what_to_set() {
    let server = TestServer::start(|config| {
        config.backends.llama_cpp.command = Some("/nonexistent/llama-server".into());
    })
    .await;
    let options =
        json!({"backend_type": "llama_cpp", "on_demand_start": true, "backend_options": {"model": "/m.gguf"}});
    create_instance(&server.base, "missing", &options).await;
    let response = http()
        .post(format!("{}/v1/chat/completions", server.base))
        .bearer_auth(MANAGEMENT_KEY)
        .json(&json!({"model": "missing", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let body = response.text().await.unwrap();
    for part in ["/nonexistent/llama-server", "backends.llama-cpp.command", "LLAMACTL_LLAMACPP_COMMAND", "PATH"] {
        assert!(body.contains(part), "the on-demand answer names {part}: {body}");
    }
}

#[tokio::test]
async fn open_event_streams_end_when_the_server_stops() {
    // A grace period far longer than a stop takes: a stream that held the shutdown would show.
    let server = TestServer::start(|c| c.server.shutdown_timeout_seconds = 120).await;
    let instance = create_instance(&server.base, "quiet", &backend(&[])).await;
    assert_eq!(instance["name"], "quiet");
    let open = |path: &str| server.manage(Method::GET, path).send();
    let streams = [
        open("/api/v1/events").await.unwrap(),
        open("/api/v1/instances/quiet/logs?follow=true").await.unwrap(),
        http().get(format!("{}/models/sse", server.base)).bearer_auth(MANAGEMENT_KEY).send().await.unwrap(),
    ];
    assert!(streams.iter().all(|s| s.status().is_success()));
    let stopped = tokio::time::timeout(Duration::from_secs(60), server.stop()).await;
    assert!(stopped.is_ok(), "the server's stop waited for open event streams");
    for stream in streams {
        let ended = tokio::time::timeout(Duration::from_secs(10), stream.text()).await;
        assert!(ended.is_ok(), "a stream did not end with the server");
    }
}
