//! llama.cpp router mode with a real `llama-server` router: three tiny models in a folder and
//! one preset model (`org/tiny:Q8`, aliases `fast`, `quick`), `models_max` 2. Models are
//! listed, loaded and unloaded through llamactl's API, the Go paths and the router-compatible
//! API; chats reach them by `instance/model`, bare name, alias and `org/name:tag` id; a stream
//! in flight is never evicted, a pinned model stays, idle models unload, a killed child shows
//! as failed and recovers, and every change is an event.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use llamactl_tests::cli::Llamactl;
use llamactl_tests::router::{
    child_pid, model_file, models_folder, router_options, sub_model, sub_models, wait_sub_model,
};
use llamactl_tests::server::{MANAGEMENT_KEY, TestServer, create_instance, get_json};
use llamactl_tests::{assert_chat_completion, http};
use serde_json::{Value, json};

const LOAD: Duration = Duration::from_secs(60);

fn status_is(status: &'static str) -> impl Fn(&Value) -> bool {
    move |m: &Value| m["status"] == status
}

/// Subscribes to the server-sent events at `path` (the server has subscribed when this
/// returns), then collects in the background the data of those whose block contains `wanted`
/// (`""`: every one).
async fn follow_events(base: &str, path: &str, wanted: &'static str) -> Arc<Mutex<Vec<Value>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let mut response =
        reqwest::Client::new().get(format!("{base}{path}")).bearer_auth(MANAGEMENT_KEY).send().await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    tokio::spawn(async move {
        let mut text = String::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let event: String = text.drain(..end + 2).collect();
                if event.contains(wanted)
                    && let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: "))
                {
                    sink.lock().unwrap().push(serde_json::from_str(data).unwrap());
                }
            }
        }
    });
    seen
}

/// A small chat completion to `model`, with the management key.
async fn chat(base: &str, model: Option<&str>) -> (u16, Value) {
    let body = json!({"model": model, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8});
    let response = http()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(MANAGEMENT_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn post(base: &str, path: &str, body: Option<Value>) -> (u16, Value, Option<String>) {
    let mut request = http().post(format!("{base}{path}")).bearer_auth(MANAGEMENT_KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), retry)
}

#[tokio::test]
async fn sub_models_are_listed_loaded_and_reached_by_every_name() {
    let folder = models_folder();
    let server = TestServer::start(|_| {}).await;
    let base = server.base.clone();
    let events = follow_events(&base, "/api/v1/events", "event: model").await;
    let router_events = follow_events(&base, "/models/sse", "").await;
    create_instance(&base, "r", &router_options(folder.path(), 2, json!({}))).await;

    // Stopped, never run: a router instance with no models seen yet.
    let list = sub_models(&base, "r").await;
    assert_eq!((list["running"].clone(), list["models_max"].clone()), (json!(false), json!(2)), "{list}");

    // `instance/model` starts the instance and loads the model.
    let (status, body) = chat(&base, Some("r/alpha")).await;
    assert_chat_completion(status, &body);
    let alpha = sub_model(&base, "r", "alpha").await;
    assert_eq!(
        (alpha["status"].clone(), alpha["reason"]["kind"].clone()),
        (json!("loaded"), json!("ready")),
        "{alpha}"
    );
    assert_eq!(alpha["in_flight"], 0);
    let preset = sub_model(&base, "r", "org/tiny:Q8").await;
    assert_eq!(
        (preset["aliases"].clone(), preset["source"].clone()),
        (json!(["fast", "quick"]), json!("preset")),
        "{preset}"
    );

    // A bare name unique across instances, then the preset's own id (with '/' and ':'): the
    // third model evicts the least recently used one (alpha).
    let (status, body) = chat(&base, Some("beta")).await;
    assert_chat_completion(status, &body);
    let (status, body) = chat(&base, Some("org/tiny:Q8")).await;
    assert_chat_completion(status, &body);
    let alpha = sub_model(&base, "r", "alpha").await;
    assert_eq!(alpha["status"], "unloaded", "{alpha}");
    assert_eq!(alpha["reason"], json!({"kind": "evicted", "by": "org/tiny:Q8"}));
    // An alias reaches the same model (already loaded: nothing else moves).
    let (status, body) = chat(&base, Some("fast")).await;
    assert_chat_completion(status, &body);
    assert_eq!(sub_model(&base, "r", "beta").await["status"], "loaded");
    assert_eq!(sub_model(&base, "r", "org/tiny:Q8").await["status"], "loaded");

    // /v1/models lists the instance and each model with its status.
    let listed = get_json(&base, "/v1/models").await;
    let entry = |id: &str| listed["data"].as_array().unwrap().iter().find(|m| m["id"] == id).cloned();
    assert_eq!(entry("r").map(|m| m["status"].clone()), Some(json!("running")), "{listed}");
    assert_eq!(entry("r/beta").map(|m| m["model_status"].clone()), Some(json!("loaded")), "{listed}");
    assert_eq!(entry("r/alpha").map(|m| m["model_status"].clone()), Some(json!("unloaded")), "{listed}");

    // The router-compatible API: the same models, in the router's shape.
    let compat = get_json(&base, "/models").await;
    let compat_entry = |id: &str| compat["data"].as_array().unwrap().iter().find(|m| m["id"] == id).cloned().unwrap();
    assert_eq!(compat_entry("r/beta")["status"]["value"], "loaded", "{compat}");
    assert_eq!(compat_entry("r")["status"]["value"], "loaded", "{compat}");
    assert_eq!(compat_entry("r/org/tiny:Q8")["aliases"], json!(["fast", "quick"]));
    let (status, body, _) = post(&base, "/models/unload", Some(json!({"model": "r/beta"}))).await;
    assert_eq!((status, body.clone()), (200, json!({"success": true})), "{body}");
    let beta = sub_model(&base, "r", "beta").await;
    assert_eq!((beta["status"].clone(), beta["reason"]["kind"].clone()), (json!("unloaded"), json!("user_unload")));
    let (status, body, _) = post(&base, "/models/load", Some(json!({"model": "r/alpha"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sub_model(&base, "r", "alpha").await["status"], "loaded");

    // llamactl's API and the Go llamactl's paths.
    let (status, body, _) = post(&base, "/api/v1/instances/r/models/org%2Ftiny%3AQ8/unload", None).await;
    assert_eq!((status, body["status"].clone()), (200, json!("unloaded")), "{body}");
    let (status, body, _) = post(&base, "/api/v1/instances/r/models/beta/load", None).await;
    assert_eq!((status, body["status"].clone()), (200, json!("loaded")), "{body}");
    let (status, body, _) = post(&base, "/api/v1/llama-cpp/r/models/beta/unload", None).await;
    assert_eq!((status, body), (200, json!({"success": true})));
    let raw = get_json(&base, "/api/v1/llama-cpp/r/models").await;
    let raw_beta = raw["data"].as_array().unwrap().iter().find(|m| m["id"] == "beta").cloned().unwrap();
    assert_eq!(raw_beta["status"]["value"], "unloaded", "the router's own list: {raw}");
    let (status, body, _) = post(&base, "/api/v1/instances/r/models/nope/load", None).await;
    assert_eq!((status, body["error"].clone()), (404, json!("model_not_found")), "{body}");

    // The command line: the same models, a load by alias (an id with '/' and ':' behind it).
    let cli = Llamactl::new(&base, Some(MANAGEMENT_KEY));
    let loaded = cli.run(&["instance", "load", "r", "quick"]).await.ok();
    assert!(loaded.contains("r/org/tiny:Q8: loaded"), "{loaded}");
    let table = cli.run(&["instance", "models", "r"]).await.ok();
    assert!(table.contains("org/tiny:Q8 (fast, quick)") && table.contains("at most 2 loaded"), "{table}");
    let json_list = cli.run(&["instance", "models", "r", "-o", "json"]).await.ok();
    let json_list: Value = serde_json::from_str(&json_list).unwrap();
    assert_eq!(json_list["items"].as_array().map(Vec::len), Some(4), "{json_list}");
    let unloaded = cli.run(&["instance", "unload", "r", "org/tiny:Q8"]).await.ok();
    assert!(unloaded.contains("unloaded (user unload)"), "{unloaded}");
    let refused = cli.run(&["instance", "load", "r", "nope"]).await.error(4);
    assert!(refused.contains("no model \"nope\""), "{refused}");

    // An instance named like a model makes the bare name ambiguous: a 400 naming both.
    create_instance(
        &base,
        "beta",
        &json!({"backend_type": "llama_cpp", "backend_options": {"model": "/nowhere.gguf"}}),
    )
    .await;
    let (status, body) = chat(&base, Some("beta")).await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"beta\" or \"r/beta\"") || message.contains("beta or r/beta"), "{message}");

    // Every change was an event: alpha's load, its eviction, the unload asked for.
    let seen = events.lock().unwrap().clone();
    let has = |model: &str, to: &str, kind: &str| {
        seen.iter().any(|e| e["instance"] == "r" && e["model"] == model && e["to"] == to && e["reason"]["kind"] == kind)
    };
    assert!(has("alpha", "loaded", "ready"), "{seen:#?}");
    assert!(has("alpha", "unloaded", "evicted"), "{seen:#?}");
    assert!(has("beta", "unloaded", "user_unload"), "{seen:#?}");
    // The router-compatible stream said it in llama-server's words.
    let compat_seen = router_events.lock().unwrap().clone();
    let loaded = json!({"model": "r/alpha", "event": "status_change", "data": {"status": "loaded"}});
    assert!(compat_seen.contains(&loaded), "{compat_seen:#?}");
    assert!(compat_seen.iter().any(|e| e["model"] == "r" && e["data"]["status"] == "loaded"), "{compat_seen:#?}");
    // ... and is in the instance's events log, oldest first.
    let logged = get_json(&base, "/api/v1/instances/r/models/events?limit=1000").await;
    let logged = logged.as_array().unwrap();
    let position =
        |model: &str, kind: &str| logged.iter().position(|e| e["model"] == model && e["reason"]["kind"] == kind);
    let (ready, evicted) = (position("alpha", "ready"), position("alpha", "evicted"));
    assert!(ready.is_some() && evicted.is_some() && ready < evicted, "{logged:#?}");
    assert_eq!(logged[evicted.unwrap()]["reason"]["by"], "org/tiny:Q8");
    server.stop().await;
}

#[tokio::test]
async fn a_stream_in_flight_is_never_evicted_and_a_pinned_model_stays() {
    let folder = models_folder();
    let server = TestServer::start(|_| {}).await;
    let base = server.base.clone();
    create_instance(&base, "r", &router_options(folder.path(), 2, json!({"sub_models": {"gamma": {"pinned": true}}})))
        .await;
    for model in ["r/alpha", "r/beta"] {
        let (status, body) = chat(&base, Some(model)).await;
        assert_chat_completion(status, &body);
    }
    // A long answer (every token with its 400 most likely alternatives, ~60 MB, more than the
    // sockets on its way hold) read one chunk at a time: it stays in flight while the client
    // does not read.
    let body = json!({"model": "r/alpha", "prompt": "Hello", "max_tokens": 2000, "ignore_eos": true,
        "stream": true, "n_probs": 400});
    let mut stream =
        http().post(format!("{base}/v1/completions")).bearer_auth(MANAGEMENT_KEY).json(&body).send().await.unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let mut received = String::from_utf8_lossy(&stream.chunk().await.unwrap().unwrap()).into_owned();
    assert_eq!(sub_model(&base, "r", "alpha").await["in_flight"], 1, "the stream is not in flight");

    // alpha is the least recently used, but busy: gamma's load evicts beta.
    let (status, body, _) = post(&base, "/api/v1/instances/r/models/gamma/load", None).await;
    assert_eq!((status, body["status"].clone()), (200, json!("loaded")), "{body}");
    let beta = sub_model(&base, "r", "beta").await;
    assert_eq!(beta["reason"], json!({"kind": "evicted", "by": "gamma"}), "{beta}");
    assert_eq!(sub_model(&base, "r", "alpha").await["status"], "loaded");

    // Now alpha is busy and gamma pinned: no room, said with Retry-After, through every way in.
    let (status, body, retry) = post(&base, "/api/v1/instances/r/models/beta/load", None).await;
    assert_eq!((status, body["error"].clone()), (503, json!("no_room")), "{body}");
    assert!(retry.is_some(), "no Retry-After");
    let (status, body) = chat(&base, Some("r/beta")).await;
    assert_eq!(status, 503, "{body}");
    // An unload asked for while the stream runs is refused too.
    let (status, body, _) = post(&base, "/api/v1/instances/r/models/alpha/unload", None).await;
    assert_eq!((status, body["error"].clone()), (409, json!("model_busy")), "{body}");

    // The stream completes.
    while let Some(chunk) = stream.chunk().await.unwrap() {
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        received.trim_end().ends_with("data: [DONE]"),
        "the stream did not complete: ...{}",
        &received[received.len().saturating_sub(200)..]
    );
    wait_sub_model(&base, "r", "alpha", LOAD, |m| m["in_flight"] == 0).await;

    // Idle again, alpha goes for beta; the pinned gamma stays.
    let (status, body) = chat(&base, Some("r/beta")).await;
    assert_chat_completion(status, &body);
    assert_eq!(sub_model(&base, "r", "alpha").await["reason"], json!({"kind": "evicted", "by": "beta"}));
    let gamma = sub_model(&base, "r", "gamma").await;
    assert_eq!((gamma["status"].clone(), gamma["pinned"].clone()), (json!("loaded"), json!(true)), "{gamma}");
    server.stop().await;
}

#[tokio::test]
async fn idle_models_unload_and_a_killed_child_fails_then_recovers() {
    let folder = models_folder();
    let server = TestServer::start(|_| {}).await;
    let base = server.base.clone();
    let sub = json!({"sub_models": {"*": {"idle_timeout": "2s"}, "beta": {"pinned": true}}});
    create_instance(&base, "r", &router_options(folder.path(), 3, sub)).await;
    for model in ["r/alpha", "r/beta"] {
        let (status, body) = chat(&base, Some(model)).await;
        assert_chat_completion(status, &body);
    }
    let alpha = wait_sub_model(&base, "r", "alpha", Duration::from_secs(15), status_is("unloaded")).await;
    assert_eq!(alpha["reason"]["kind"], "idle_timeout", "{alpha}");
    assert_eq!(alpha["idle_timeout_seconds"], 2);
    // beta, pinned, stays loaded past its idle time.
    let beta = sub_model(&base, "r", "beta").await;
    assert_eq!((beta["status"].clone(), beta["pinned"].clone()), (json!("loaded"), json!(true)), "{beta}");

    // A child killed outright is a failure with its reason, not an unload.
    let pid = child_pid(&model_file(folder.path(), "beta")).expect("beta's child process");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    let failed = wait_sub_model(&base, "r", "beta", Duration::from_secs(10), status_is("failed")).await;
    assert_eq!(failed["reason"]["kind"], "crashed", "{failed}");
    assert!(failed["reason"]["exit_code"].as_i64().is_some_and(|c| c != 0), "{failed}");
    let compat = get_json(&base, "/models").await;
    let entry = compat["data"].as_array().unwrap().iter().find(|m| m["id"] == "r/beta").cloned().unwrap();
    assert_eq!((entry["status"]["value"].clone(), entry["status"]["failed"].clone()), (json!("failed"), json!(true)));

    // It recovers: a request loads it again once its short backoff has passed.
    let mut answer = chat(&base, Some("r/beta")).await;
    for _ in 0..20 {
        if answer.0 != 503 {
            break;
        }
        assert_eq!(answer.1["error"]["code"], "model_failed", "{}", answer.1);
        tokio::time::sleep(Duration::from_millis(500)).await;
        answer = chat(&base, Some("r/beta")).await;
    }
    assert_chat_completion(answer.0, &answer.1);
    assert_eq!(sub_model(&base, "r", "beta").await["status"], "loaded");

    // Stopping the instance takes its models with it.
    let response = server.manage(reqwest::Method::POST, "/api/v1/instances/r/stop").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let list = sub_models(&base, "r").await;
    assert_eq!(list["running"], false);
    assert!(list["items"].as_array().unwrap().iter().all(|m| m["status"] == "unloaded"), "{list}");
    server.stop().await;
}

#[tokio::test]
async fn new_presets_and_sub_models_take_effect_without_a_restart() {
    let folder = models_folder();
    let server = TestServer::start(|_| {}).await;
    let base = server.base.clone();
    let mut options = router_options(folder.path(), 2, json!({}));
    create_instance(&base, "r", &options).await;
    let (status, body) = chat(&base, Some("r/alpha")).await;
    assert_chat_completion(status, &body);
    let child = child_pid(&model_file(folder.path(), "alpha")).expect("alpha's child process");
    let router_pid = get_json(&base, "/api/v1/instances/r").await["pid"].clone();

    // A new preset section and a pin: stored, in effect, and nothing restarted.
    let preset = format!(
        "{}\n[extra]\nmodel = {}\n",
        options["preset_ini"].as_str().unwrap(),
        model_file(folder.path(), "gamma").display()
    );
    options["preset_ini"] = json!(preset);
    options["sub_models"] = json!({"alpha": {"pinned": true}});
    let replaced = server.manage(reqwest::Method::PUT, "/api/v1/instances/r").json(&options).send().await.unwrap();
    assert_eq!(replaced.status().as_u16(), 200);
    let extra = wait_sub_model(&base, "r", "extra", Duration::from_secs(10), |m| !m.is_null()).await;
    assert_eq!((extra["status"].clone(), extra["source"].clone()), (json!("unloaded"), json!("preset")), "{extra}");
    let alpha = sub_model(&base, "r", "alpha").await;
    assert_eq!((alpha["status"].clone(), alpha["pinned"].clone()), (json!("loaded"), json!(true)), "{alpha}");
    assert_eq!(child_pid(&model_file(folder.path(), "alpha")), Some(child), "alpha's process was not replaced");
    assert_eq!(get_json(&base, "/api/v1/instances/r").await["pid"], router_pid, "the router was not restarted");
    let (status, body) = chat(&base, Some("extra")).await;
    assert_chat_completion(status, &body);

    // A change of the router's own flags restarts it, as any other change does.
    options["backend_options"]["ctx_size"] = json!(1024);
    let replaced = server.manage(reqwest::Method::PUT, "/api/v1/instances/r").json(&options).send().await.unwrap();
    assert_eq!(replaced.status().as_u16(), 200);
    let restarted = get_json(&base, "/api/v1/instances/r").await;
    assert_ne!(restarted["pid"], router_pid, "{restarted}");
    server.stop().await;
}
