//! Instances declared in the configuration file, with templates, reloaded with a plan: the
//! real server binary and real llama-server instances on the tiny model. Three instances from
//! one template; an edit of one's context size and of another's description; a dry run; a
//! reload by SIGHUP while a stream runs on the instance that restarts; broken files; a removed
//! instance; the API refusing to change a declared one; a restart on the same file.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use llamactl_server::config::Config;
use llamactl_tests::server::{MANAGEMENT_KEY, SpawnedServer, get_json, server_binary, server_config};
use llamactl_tests::{http, process_alive, tiny_gguf};
use serde_json::{Value, json};

/// The test's configuration with `definitions` and the `tiny` template, written as block YAML
/// to `<dir>/llamactl.yaml`; returns the file and its text.
fn write_config(dir: &Path, definitions: Value, templates: Option<Value>) -> (PathBuf, String) {
    let mut config: Config = server_config(dir);
    config.templates = serde_json::from_value(templates.unwrap_or_else(|| {
        json!({"tiny": {
            "backend_type": "llama_cpp",
            "backend_options": {"model": tiny_gguf(), "ctx_size": 2048, "gpu_layers": 0, "parallel": 1, "threads": 1, "no_webui": true},
            "environment": {"HF_HUB_OFFLINE": "1"},
        }})
    }))
    .unwrap();
    config.instances.definitions = serde_json::from_value(definitions).unwrap();
    let text = serde_norway::to_string(&config).unwrap();
    let file = dir.join("llamactl.yaml");
    std::fs::write(&file, &text).unwrap();
    (file, text)
}

fn three(a_ctx: u32, b_description: &str) -> Value {
    json!({
        "a": {"extends": ["tiny"], "backend_options": {"ctx_size": a_ctx}},
        "b": {"extends": ["tiny"], "description": b_description},
        "c": {"extends": "tiny"},
    })
}

async fn pid(base: &str, name: &str) -> i64 {
    get_json(base, &format!("/api/v1/instances/{name}")).await["pid"].as_i64().unwrap_or_else(|| panic!("{name} runs"))
}

async fn start(server: &SpawnedServer, name: &str) {
    let started =
        server.manage(reqwest::Method::POST, &format!("/api/v1/instances/{name}/start")).send().await.unwrap();
    assert_eq!(started.status(), 200, "start {name}");
    wait_for(&server.base, name, |i| i["status"] == "running").await;
}

async fn wait_for(base: &str, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let instance = get_json(base, &format!("/api/v1/instances/{name}")).await;
        if done(&instance) {
            return instance;
        }
        assert!(Instant::now() < deadline, "{name}: {instance}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn reload(server: &SpawnedServer, dry_run: bool) -> (u16, Value) {
    let path = if dry_run { "/api/v1/config/reload?dry_run=true" } else { "/api/v1/config/reload" };
    let response = server.manage(reqwest::Method::POST, path).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn actions(report: &Value) -> Vec<(String, String)> {
    report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["action"].as_str().unwrap().to_owned()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[tokio::test]
async fn declared_instances_are_reconciled_and_reloaded_with_a_plan() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = write_config(dir.path(), three(2048, "second"), None);
    let server = SpawnedServer::start_with_file(&server_binary(), &file, std::process::Stdio::inherit());
    let base = server.base.clone();

    // Created at boot from the file, marked with it.
    let boot = get_json(&base, "/api/v1/config/reload").await;
    assert_eq!((boot["trigger"].as_str(), boot["outcome"].as_str()), (Some("boot"), Some("applied")), "{boot}");
    assert_eq!(actions(&boot), pairs(&[("a", "create"), ("b", "create"), ("c", "create")]));
    let a = get_json(&base, "/api/v1/instances/a?effective=true").await;
    assert_eq!(a["source"], file.display().to_string());
    assert_eq!(a["options"]["backend_options"]["threads"], 1, "merged from the template: {a}");
    assert_eq!(a["origins"]["backend_options.threads"], "tiny");
    assert_eq!(a["origins"]["backend_options.ctx_size"], "instance");
    for name in ["a", "b", "c"] {
        start(&server, name).await;
    }
    let pids = [pid(&base, "a").await, pid(&base, "b").await, pid(&base, "c").await];

    // Read-only over the API.
    let mut options = a["options"].clone();
    options["description"] = json!("changed over the API");
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE] {
        let refused = server.manage(method.clone(), "/api/v1/instances/a").json(&options).send().await.unwrap();
        assert_eq!(refused.status(), 409, "{method}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "declared", "{body}");
        assert!(body["details"].as_str().unwrap().contains(&file.display().to_string()), "{body}");
    }

    // One instance's context size, another's description: the plan, and nothing changed.
    write_config(dir.path(), three(4096, "the second one"), None);
    let (status, plan) = reload(&server, true).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["outcome"], "planned");
    assert_eq!(actions(&plan), pairs(&[("a", "update_restart"), ("b", "update_no_restart"), ("c", "unchanged")]));
    assert_eq!(plan["instances"][0]["changes"], json!(["backend_options.ctx_size"]));
    assert_eq!(plan["instances"][1]["changes"], json!(["description"]));
    assert_eq!(get_json(&base, "/api/v1/instances/a").await["options"]["backend_options"]["ctx_size"], 2048);
    assert_eq!([pid(&base, "a").await, pid(&base, "b").await, pid(&base, "c").await], pids, "a dry run");

    // Applied by SIGHUP while a stream runs on `a`: the stream ends whole, then `a` restarts.
    // The tiny model answers in milliseconds, so the client holds the stream open by reading
    // nothing for a while: with 50 token probabilities per chunk the answer is megabytes, more
    // than the sockets buffer, and the proxy waits for the client.
    let response = http()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(MANAGEMENT_KEY)
        .json(&json!({"model": "a", "stream": true, "max_tokens": 1500, "ignore_eos": true, "n_probs": 50,
            "messages": [{"role": "user", "content": "Count."}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut text = String::from_utf8(stream.next().await.unwrap().unwrap().to_vec()).unwrap();
    server.hang_up();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = get_json(&base, "/api/v1/instances/a").await;
    assert_eq!((during["pid"].as_i64(), during["in_flight"].as_u64()), (Some(pids[0]), Some(1)), "draining: {during}");
    while let Some(chunk) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let stream_ended = chrono::Utc::now();
    assert!(
        text.trim_end().ends_with("data: [DONE]"),
        "the stream ended whole: ...{}",
        &text[text.len().saturating_sub(300)..]
    );
    let restarted = wait_for(&base, "a", |i| i["status"] == "running" && i["pid"].as_i64() != Some(pids[0])).await;
    assert_eq!(restarted["options"]["backend_options"]["ctx_size"], 4096);
    let events = get_json(&base, "/api/v1/instances/a/events").await;
    let stopping = events.as_array().unwrap().iter().rev().find(|e| e["to"] == "stopping").unwrap();
    let stopped_at: chrono::DateTime<chrono::Utc> = serde_json::from_value(stopping["at"].clone()).unwrap();
    assert!(
        stopped_at >= stream_ended - chrono::Duration::milliseconds(50),
        "stopped {stopped_at}, stream ended {stream_ended}"
    );
    let signalled = get_json(&base, "/api/v1/config/reload").await;
    assert_eq!((signalled["trigger"].as_str(), signalled["outcome"].as_str()), (Some("signal"), Some("applied")));
    assert_eq!(pid(&base, "b").await, pids[1], "a description needs no restart");
    assert_eq!(pid(&base, "c").await, pids[2]);
    assert_eq!(get_json(&base, "/api/v1/instances/b").await["options"]["description"], "the second one");
    let pids = [pid(&base, "a").await, pids[1], pids[2]];

    // A broken file changes nothing and says where.
    let (_, good) = write_config(dir.path(), three(4096, "the second one"), None);
    let broken = good.replacen("ctx_size: 4096", "ctx_size: big", 1);
    let line = broken.lines().position(|l| l.contains("ctx_size: big")).unwrap() + 1;
    std::fs::write(&file, &broken).unwrap();
    let (status, refused) = reload(&server, false).await;
    assert_eq!(status, 400, "{refused}");
    let details = refused["details"].as_str().unwrap();
    assert!(
        details.contains(&format!("{}:{line}: instances.definitions.a.backend_options.ctx_size", file.display())),
        "{details}"
    );
    std::fs::write(&file, "server: [unclosed\n").unwrap();
    let (status, refused) = reload(&server, false).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["details"].as_str().unwrap().contains("llamactl.yaml"), "{refused}");
    let cycle = json!({"tiny": {"extends": ["loop"], "backend_type": "llama_cpp"}, "loop": {"extends": ["tiny"]}});
    write_config(dir.path(), three(4096, "the second one"), Some(cycle));
    let (status, refused) = reload(&server, true).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["details"].as_str().unwrap().contains("a -> tiny -> loop -> tiny"), "{refused}");
    assert_eq!([pid(&base, "a").await, pid(&base, "b").await, pid(&base, "c").await], pids, "nothing changed");

    // A removed instance is stopped and deleted.
    let mut two = three(4096, "the second one");
    two.as_object_mut().unwrap().remove("c");
    write_config(dir.path(), two, None);
    let (status, applied) = reload(&server, false).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(actions(&applied), pairs(&[("a", "unchanged"), ("b", "unchanged"), ("c", "delete")]));
    let gone = server.manage(reqwest::Method::GET, "/api/v1/instances/c").send().await.unwrap();
    assert_eq!(gone.status(), 404);
    assert!(!process_alive(i32::try_from(pids[2]).unwrap()), "c's llama-server is stopped");

    // Reloads are counted.
    let metrics = server.manage(reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    let count = |outcome: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("llamactl_config_reloads_total{{outcome=\"{outcome}\"}}")))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
    };
    assert_eq!((count("applied"), count("failed"), count("planned")), (Some(3), Some(3), Some(1)), "{metrics}");

    // A restart on the same file changes nothing.
    let ids = (
        get_json(&base, "/api/v1/instances/a").await["id"].clone(),
        get_json(&base, "/api/v1/instances/b").await["id"].clone(),
    );
    assert!(server.terminate());
    let again = SpawnedServer::start_with_file(&server_binary(), &file, std::process::Stdio::inherit());
    let boot = get_json(&again.base, "/api/v1/config/reload").await;
    assert_eq!(actions(&boot), pairs(&[("a", "unchanged"), ("b", "unchanged")]), "{boot}");
    let after = (
        get_json(&again.base, "/api/v1/instances/a").await["id"].clone(),
        get_json(&again.base, "/api/v1/instances/b").await["id"].clone(),
    );
    assert_eq!(after, ids);
    assert!(again.terminate());
}

/// The test backend as a template: any instance extending it runs a real process.
fn backend_template() -> Value {
    json!({"base": {
        "backend_type": "custom",
        "backend_options": {"command": llamactl_tests::test_backend(), "args": ["--host", "{host}", "--port", "{port}"]},
        "environment": {"RUST_BACKTRACE": "0"},
    }})
}

#[tokio::test]
async fn api_instances_extend_templates_and_a_reload_leaves_them_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = write_config(
        dir.path(),
        json!({"d": {"extends": ["base"], "description": "declared"}}),
        Some(backend_template()),
    );
    let server = SpawnedServer::start_with_file(&server_binary(), &file, std::process::Stdio::inherit());
    let base = server.base.clone();
    let cli = llamactl_tests::cli::Llamactl::new(&base, Some(MANAGEMENT_KEY));

    // The CLI shows where a declared instance's options come from.
    let shown = cli.run(&["instance", "show", "d", "--effective"]).await.ok();
    assert!(shown.contains(&file.display().to_string()), "{shown}");
    assert!(shown.contains("declared"), "the description: {shown}");
    assert!(
        shown.lines().any(|l| l.trim_start().starts_with("backend_type") && l.trim_end().ends_with("base")),
        "{shown}"
    );
    assert!(
        shown.lines().any(|l| l.trim_start().starts_with("description") && l.trim_end().ends_with("instance")),
        "{shown}"
    );

    // An API instance takes a template's values; `declared_in` and unknown templates are refused.
    let create = |name: &str, body: Value| {
        server.manage(reqwest::Method::POST, &format!("/api/v1/instances/{name}")).json(&body).send()
    };
    let made = create("mine", json!({"extends": ["base"], "description": "mine"})).await.unwrap();
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    assert_eq!(
        (made["source"].as_str(), made["options"]["backend_type"].as_str()),
        (Some("api"), Some("custom")),
        "{made}"
    );
    assert_eq!(made["options"]["extends"], json!(["base"]));
    let refused = create("other", json!({"extends": ["nope"]})).await.unwrap();
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["field"], "extends", "{refused}");
    assert!(refused["details"].as_str().unwrap().contains("unknown template `nope` (other -> nope)"), "{refused}");
    let refused = create("other", json!({"extends": ["base"], "declared_in": "/x.yaml"})).await.unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(refused.json::<Value>().await.unwrap()["field"], "declared_in");

    // A new description restarts nothing; a new environment restarts it.
    start(&server, "mine").await;
    let first = pid(&base, "mine").await;
    let mut options = made["options"].clone();
    options["description"] = json!("still mine");
    let updated = server.manage(reqwest::Method::PUT, "/api/v1/instances/mine").json(&options).send().await.unwrap();
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!((updated["status"].as_str(), updated["pid"].as_i64()), (Some("running"), Some(first)), "{updated}");
    options["environment"]["EXTRA"] = json!("1");
    let updated = server.manage(reqwest::Method::PUT, "/api/v1/instances/mine").json(&options).send().await.unwrap();
    assert_eq!(updated.status(), 200);
    let restarted = wait_for(&base, "mine", |i| i["status"] == "running" && i["pid"].as_i64() != Some(first)).await;
    let second = restarted["pid"].as_i64().unwrap();

    // The CLI plans and reloads; the API's instance is not in the plan and keeps running.
    let plan = cli.run(&["config", "plan"]).await.ok();
    assert!(plan.lines().any(|l| l.starts_with('d') && l.contains("unchanged")), "{plan}");
    assert!(!plan.contains("mine"), "{plan}");
    write_config(
        dir.path(),
        json!({"d": {"extends": ["base"], "description": "declared, edited"}}),
        Some(backend_template()),
    );
    let reloaded = cli.run(&["config", "reload"]).await.ok();
    assert!(
        reloaded.lines().any(|l| l.starts_with('d') && l.contains("update no restart") && l.contains("description")),
        "{reloaded}"
    );
    assert_eq!(get_json(&base, "/api/v1/instances/d").await["options"]["description"], "declared, edited");
    assert_eq!(pid(&base, "mine").await, second);
    let (_, text) =
        write_config(dir.path(), json!({"d": {"extends": ["base"], "idle_timeout": "soon"}}), Some(backend_template()));
    let line = text.lines().position(|l| l.contains("idle_timeout: soon")).unwrap() + 1;
    let error = cli.run(&["config", "plan"]).await.error(1);
    assert!(error.contains(&format!("llamactl.yaml:{line}: instances.definitions.d.idle_timeout")), "{error}");
    assert!(server.terminate());
}

#[tokio::test]
async fn a_watched_file_reloads_by_itself_once_it_is_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let watched = |description: &str| {
        let (file, text) = write_config(
            dir.path(),
            json!({"d": {"extends": ["base"], "description": description}}),
            Some(backend_template()),
        );
        assert!(text.contains("watch: false"), "{text}");
        std::fs::write(
            &file,
            text.replace("watch: false", "watch: true").replace("watch_debounce_ms: 500", "watch_debounce_ms: 1000"),
        )
        .unwrap();
        file
    };
    let file = watched("first");
    let server = SpawnedServer::start_with_file(&server_binary(), &file, std::process::Stdio::inherit());
    let base = server.base.clone();
    start(&server, "d").await;
    let running = pid(&base, "d").await;

    // Saved in several writes (each save here writes twice): one reload, a second after the last.
    for description in ["second", "third", "fourth"] {
        watched(description);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let changed = wait_for(&base, "d", |i| i["options"]["description"] == "fourth").await;
    assert_eq!(changed["pid"].as_i64(), Some(running), "a description restarts nothing");
    let last = get_json(&base, "/api/v1/config/reload").await;
    assert_eq!((last["trigger"].as_str(), last["outcome"].as_str()), (Some("watch"), Some("applied")), "{last}");
    let metrics = server.manage(reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    let applied =
        metrics.lines().find(|l| l.starts_with("llamactl_config_reloads_total{outcome=\"applied\"}")).unwrap();
    assert!(applied.ends_with(" 2"), "the boot and one watched reload: {applied}");

    // An invalid save is refused and changes nothing; the next good one is taken.
    std::fs::write(&file, "instances: [broken\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let last = get_json(&base, "/api/v1/config/reload").await;
        if last["outcome"] == "failed" {
            assert!(last["error"].as_str().unwrap().contains("llamactl.yaml"), "{last}");
            break;
        }
        assert!(Instant::now() < deadline, "{last}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get_json(&base, "/api/v1/instances/d").await["options"]["description"], "fourth");
    watched("fifth");
    wait_for(&base, "d", |i| i["options"]["description"] == "fifth").await;
    assert!(server.terminate());
}

#[tokio::test]
async fn the_system_page_checks_and_applies_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = write_config(dir.path(), json!({"d": {"extends": ["base"]}}), Some(backend_template()));
    let server = SpawnedServer::start_with_file(&server_binary(), &file, std::process::Stdio::inherit());
    let browser = llamactl_tests::browser::signed_in(&server.base).await;
    browser.click("nav-system").await;
    let summary = browser.wait_text("[data-test=\"reload-summary\"]", |t| t.contains("boot")).await;
    assert!(summary.contains("applied") && summary.contains("llamactl.yaml"), "{summary}");

    // A new instance in the file: checked (nothing changes), then applied.
    write_config(
        dir.path(),
        json!({"d": {"extends": ["base"]}, "e": {"extends": ["base"], "description": "new"}}),
        Some(backend_template()),
    );
    browser.click("reload-check").await;
    browser.wait_text("[data-test=\"reload-outcome\"]", |t| t == "planned").await;
    browser.find_css("[data-test=\"reload-line\"][data-name=\"e\"][data-action=\"create\"]").await;
    let missing = server.manage(reqwest::Method::GET, "/api/v1/instances/e").send().await.unwrap();
    assert_eq!(missing.status(), 404, "a check changes nothing");
    browser.click("reload-apply").await;
    browser.wait_text("[data-test=\"reload-outcome\"]", |t| t == "applied").await;
    assert_eq!(get_json(&server.base, "/api/v1/instances/e").await["options"]["description"], "new");

    // A reload from elsewhere (SIGHUP) shows without a reload of the page; so does its error.
    std::fs::write(&file, "templates: [broken\n").unwrap();
    server.hang_up();
    let error = browser.wait_text("[data-test=\"reload-error\"]", |t| !t.is_empty()).await;
    assert!(error.contains("llamactl.yaml"), "{error}");
    browser.close().await;
    assert!(server.terminate());
}

#[tokio::test]
async fn the_port_range_and_the_limits_change_without_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    // An idle timeout makes them evictable (0, the default, pins an instance).
    let definitions =
        json!({"d": {"extends": ["base"], "idle_timeout": 60}, "e": {"extends": ["base"], "idle_timeout": 60}});
    let (file, first) = write_config(dir.path(), definitions.clone(), Some(backend_template()));
    let server = SpawnedServer::start_with_file(&server_binary(), &file, std::process::Stdio::inherit());
    let base = server.base.clone();
    start(&server, "d").await;

    // A new port block, one running instance at most, and a setting that needs a restart.
    let ports = llamactl_tests::port_block();
    let mut config: Config = serde_norway::from_str(&first).unwrap();
    config.instances.port_range = [*ports.start(), *ports.end()];
    config.instances.max_running_instances = 1;
    config.server.max_body_bytes = 1024 * 1024;
    std::fs::write(&file, serde_norway::to_string(&config).unwrap()).unwrap();
    let (status, plan) = reload(&server, false).await;
    assert_eq!(status, 200, "{plan}");
    let effect =
        |key: &str| plan["settings"].as_array().unwrap().iter().find(|s| s["key"] == key).map(|s| s["effect"].clone());
    assert_eq!(effect("instances.port_range"), Some(json!("applied_live")), "{plan}");
    assert_eq!(effect("instances.max_running_instances"), Some(json!("applied_live")), "{plan}");
    assert_eq!(effect("server.max_body_bytes"), Some(json!("needs_server_restart")), "{plan}");
    let in_force = get_json(&base, "/api/v1/config").await;
    assert_eq!(in_force["instances"]["port_range"], json!([ports.start(), ports.end()]));
    assert_eq!(in_force["server"]["max_body_bytes"], 64 * 1024 * 1024, "not in force before a restart");

    // `e` starts within the new range, and under the new limit `d` (idle) makes room.
    start(&server, "e").await;
    let port = get_json(&base, "/api/v1/instances/e").await["port"].as_u64().unwrap();
    assert!(ports.contains(&u16::try_from(port).unwrap()), "port {port} in {ports:?}");
    let d = wait_for(&base, "d", |i| i["status"] == "stopped").await;
    assert_eq!(d["last_reason"]["kind"], "evicted", "{d}");
    assert!(server.terminate());
}
