//! The `llamactl` command against a real server (in this process, real SQLite file): every
//! command's output (table snapshots, JSON as the API sends it), exit codes and bad input;
//! with a real llama-server for `start --wait`, `logs` and `logs -f`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use llamactl_tests::cli::Llamactl;
use llamactl_tests::server::{MANAGEMENT_KEY, TestServer, http};
use llamactl_tests::{test_backend, tiny_gguf};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Snapshot settings: times, ports and paths that change from run to run are replaced.
fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", "[time]");
    settings.add_filter(r#""created(_at)?": \d+"#, r#""created$1": [unix]"#);
    settings.add_filter(r"(?m)^created(_at)?: \d+", "created$1: [unix]");
    settings.add_filter(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:[port]");
    settings.add_filter(r"llamactl-server \d+\.\d+\.\d+", "llamactl-server [version]");
    settings.add_filter(r"Ports:( +)\d+-\d+", "Ports:$1[ports]");
    settings.add_filter(&regex_escape(&test_backend()), "[test-backend]");
    settings
}

fn regex_escape(text: &str) -> String {
    text.chars().flat_map(|c| if r".+*?()|[]{}^$\".contains(c) { vec!['\\', c] } else { vec![c] }).collect()
}

async fn api(server: &TestServer, method: Method, path: &str) -> Value {
    let response = server.manage(method, path).send().await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_commands_print_tables_and_the_apis_json() {
    let server = TestServer::start(|_| {}).await;
    let cli = Llamactl::new(&server.base, Some(MANAGEMENT_KEY));
    let settings = settings();
    let _guard = settings.bind_to_scope();

    assert_eq!(
        cli.run(&["instance", "list"]).await.ok(),
        "no instances (create one: llamactl instance create NAME --backend llama_cpp --model PATH)\n"
    );

    let out = cli
        .run(&[
            "instance",
            "create",
            "qwen",
            "--backend",
            "llama_cpp",
            "--model",
            "/models/qwen.gguf",
            "-O",
            "ctx_size=4096",
            "-O",
            "idle_timeout=10",
            "-O",
            "flash_attn=on",
            "-e",
            "CUDA_VISIBLE_DEVICES=0",
        ])
        .await
        .ok();
    assert_eq!(out, "instance qwen created (stopped)\n");
    let created = api(&server, Method::GET, "/api/v1/instances/qwen").await;
    assert_eq!(
        created["options"],
        json!({
            "backend_type": "llama_cpp",
            "backend_options": {"model": "/models/qwen.gguf", "ctx_size": 4096, "flash_attn": "on"},
            "idle_timeout": 10,
            "environment": {"CUDA_VISIBLE_DEVICES": "0"}
        })
    );

    // A pasted command line goes through the server's parse-command import.
    let out = cli
        .run(&[
            "instance",
            "create",
            "small",
            "--from-command",
            "llama-server -m /models/small.gguf -c 2048 -ngl 99 --jinja",
            "-o",
            "json",
        ])
        .await
        .ok();
    let small: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(small["options"]["backend_type"], "llama_cpp");
    assert_eq!(
        small["options"]["backend_options"],
        json!({"model": "/models/small.gguf", "ctx_size": 2048, "gpu_layers": 99, "jinja": true})
    );

    // A YAML file, with flags on top.
    let file = server.dir.path().join("vllm.yaml");
    std::fs::write(
        &file,
        "backend_type: vllm\nbackend_options:\n  model: org/tiny\n  max_model_len: 1024\non_demand_start: true\n",
    )
    .unwrap();
    cli.run(&["instance", "create", "vl", "-f", file.to_str().unwrap(), "-O", "tensor_parallel_size=1", "-q"])
        .await
        .ok();
    let vl = api(&server, Method::GET, "/api/v1/instances/vl").await;
    assert_eq!(vl["options"]["on_demand_start"], true);
    assert_eq!(vl["options"]["backend_options"]["tensor_parallel_size"], 1);
    assert_eq!(vl["options"]["backend_options"]["max_model_len"], 1024);

    insta::assert_snapshot!("instance_list", cli.run(&["instance", "list"]).await.ok());
    assert_eq!(cli.run(&["instance", "ls", "-q"]).await.ok(), "qwen\nsmall\nvl\n");
    insta::assert_snapshot!("instance_show", cli.run(&["instance", "show", "qwen"]).await.ok());
    assert_eq!(cli.run(&["instance", "show", "qwen", "-q"]).await.ok(), "stopped\n");

    // -o json is the API's JSON, field order and all; -o yaml the same values.
    let listed = api(&server, Method::GET, "/api/v1/instances").await;
    let out = cli.run(&["instance", "list", "-o", "json"]).await.ok();
    assert_eq!(out, format!("{}\n", serde_json::to_string_pretty(&listed).unwrap()));
    let out = cli.run(&["-o", "json", "instance", "show", "qwen"]).await.ok();
    assert_eq!(out, format!("{}\n", serde_json::to_string_pretty(&created).unwrap()));
    insta::assert_snapshot!("instance_show_json", out);
    let yaml = cli.run(&["instance", "show", "qwen", "-o", "yaml"]).await.ok();
    insta::assert_snapshot!("instance_show_yaml", yaml);

    // edit changes the current options: the rest stays.
    let out = cli.run(&["instance", "edit", "qwen", "-O", "ctx_size=8192", "--model", "/models/qwen2.gguf"]).await.ok();
    assert_eq!(out, "instance qwen updated\n");
    let edited = api(&server, Method::GET, "/api/v1/instances/qwen").await;
    assert_eq!(edited["options"]["backend_options"]["ctx_size"], 8192);
    assert_eq!(edited["options"]["backend_options"]["model"], "/models/qwen2.gguf");
    assert_eq!(edited["options"]["backend_options"]["flash_attn"], "on");
    assert_eq!(edited["options"]["environment"]["CUDA_VISIBLE_DEVICES"], "0");

    insta::assert_snapshot!("status", cli.run(&["status"]).await.ok());
    let status: Value = serde_json::from_str(&cli.run(&["status", "-o", "json"]).await.ok()).unwrap();
    assert_eq!(status["instances"], json!({"total": 3, "by_status": {"stopped": 3}}));
    assert_eq!(status["version"], format!("llamactl-server {}", env!("CARGO_PKG_VERSION")));

    insta::assert_snapshot!("models", cli.run(&["models"]).await.ok());
    assert_eq!(cli.run(&["models", "-q"]).await.ok(), "qwen\nsmall\nvl\n");

    assert_eq!(cli.run(&["instance", "rm", "vl"]).await.ok(), "instance vl deleted\n");
    assert_eq!(
        cli.run(&["instance", "delete", "vl"]).await.error(4),
        "error: cannot delete instance vl: instance vl not found"
    );
    assert_eq!(cli.run(&["instance", "list", "-q"]).await.ok(), "qwen\nsmall\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_one_clear_line_and_the_documented_exit_code() {
    let server = TestServer::start(|_| {}).await;
    let cli = Llamactl::new(&server.base, Some(MANAGEMENT_KEY));
    let llama = ["--backend", "llama_cpp", "--model", "/m.gguf"];

    // Not found: 4.
    for args in [
        &["instance", "show", "ghost"][..],
        &["instance", "start", "ghost"],
        &["instance", "stop", "ghost"],
        &["instance", "logs", "ghost"],
        &["instance", "events", "ghost"],
        &["instance", "edit", "ghost", "-O", "c=1"],
        &["key", "show", "99"],
        &["key", "delete", "99"],
    ] {
        let line = cli.run(args).await.error(4);
        assert!(line.contains("not found"), "{args:?}: {line}");
    }

    // Usage errors: 2, before anything reaches the server.
    let line = cli.run(&["instance", "create", "x", "--backend", "llama_cpp", "-O", "ctx_size"]).await.error(2);
    assert_eq!(line, "error: --option \"ctx_size\": expected KEY=VALUE");
    let line = cli.run(&["instance", "create", "x", "-O", "ctx_size=1"]).await.error(2);
    assert!(line.starts_with("error: no backend: give --backend"), "{line}");
    let line = cli.run(&["instance", "edit", "x"]).await.error(2);
    assert!(line.starts_with("error: nothing to change"), "{line}");
    let line = cli.run(&["instance", "create", "x", "-f", "/nonexistent/x.yaml"]).await.error(2);
    assert!(line.starts_with("error: cannot read /nonexistent/x.yaml"), "{line}");
    let line = cli.run(&["key", "create", "k"]).await.error(2);
    assert!(line.contains("--all, or --instance"), "{line}");
    let line = cli.run(&["key", "create", "k", "--instance", "qwen:fly"]).await.error(2);
    assert!(line.contains("unknown right \"fly\""), "{line}");
    let line = cli.run(&["key", "create", "k", "--all", "--expires", "soon"]).await.error(2);
    assert!(line.starts_with("error: --expires \"soon\""), "{line}");
    let run = cli.run(&["instance", "frobnicate"]).await.expect(2);
    assert!(run.stderr.contains("unrecognized subcommand 'frobnicate'"), "{}", run.stderr);
    assert_eq!(
        cli.run(&["--server", "localhost:8080", "instance", "ls"]).await.error(2),
        "error: --server: server URL \"localhost:8080\" must start with http:// or https://"
    );

    // A name the server would refuse, or that would become another URL: nothing is sent.
    for (name, why) in [("bad name", "character ' '"), ("..", "reserved"), ("a/b", "character '/'")] {
        let line = cli.run(&["instance", "show", name]).await.error(2);
        assert!(
            line.starts_with(&format!("error: cannot show instance {name}: invalid instance {name:?}: name: ")),
            "{line}"
        );
        assert!(line.contains(why), "{line}");
    }

    // The server refuses: 1, with its reason naming the field.
    let line = cli.run(&["instance", "create", "x", "--backend", "llama_cpp", "-O", "ctx_size=\"big\""]).await.error(1);
    assert!(line.contains("ctx_size"), "{line}");
    let line = cli.run(&["instance", "create", "x", "--backend", "llama_cp"]).await.error(1);
    assert!(line.contains("llama_cp"), "{line}");
    cli.run(&[&["instance", "create", "dup"][..], &llama].concat()).await.ok();
    let line = cli.run(&[&["instance", "create", "dup"][..], &llama].concat()).await.error(1);
    assert_eq!(line, "error: cannot create instance dup: instance dup already exists");
    let line = cli.run(&["instance", "create", "x", "--from-command", "python -m something"]).await.error(1);
    assert!(line.starts_with("error: cannot import the command line: "), "{line}");
    // Nothing half-made is left behind.
    assert_eq!(cli.run(&["instance", "ls", "-q"]).await.ok(), "dup\n");

    // Keys: none, a wrong one, an inference key on management routes.
    let line = Llamactl::new(&server.base, None).run(&["instance", "ls"]).await.error(1);
    assert!(line.ends_with("(set --api-key or LLAMACTL_API_KEY)"), "{line}");
    let line = Llamactl::new(&server.base, Some("wrong")).run(&["instance", "ls"]).await.error(1);
    assert!(line.ends_with("(set --api-key or LLAMACTL_API_KEY)"), "{line}");
    let secret = cli.run(&["key", "create", "app", "--all", "-q"]).await.ok();
    let line = Llamactl::new(&server.base, Some(secret.trim())).run(&["instance", "ls"]).await.error(1);
    assert!(line.ends_with("(this needs a management key)"), "{line}");

    // Unreachable: 3, saying what to do.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let line = Llamactl::new(&format!("http://127.0.0.1:{port}"), None).run(&["status"]).await.error(3);
    assert_eq!(
        line,
        format!(
            "error: cannot read the server's version: cannot reach http://127.0.0.1:{port}: Connection refused (os error 111) \
             (is llamactl-server running? set --server or LLAMACTL_SERVER)"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_created_listed_shown_and_deleted() {
    let server = TestServer::start(|_| {}).await;
    let cli = Llamactl::new(&server.base, Some(MANAGEMENT_KEY));
    let settings = settings();
    let _guard = settings.bind_to_scope();
    for name in ["qwen", "small"] {
        cli.run(&["instance", "create", name, "--backend", "llama_cpp", "--model", "/m.gguf", "-q"]).await.ok();
    }
    assert_eq!(cli.run(&["key", "list"]).await.ok(), "no keys (create one: llamactl key create NAME --all)\n");

    let out = cli.run(&["key", "create", "ci", "--all"]).await.ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "key 1 (ci) created; its secret is shown only this once:");
    assert!(lines[1].starts_with("llamactl-") && lines[1].len() == 73, "{out}");

    let created: Value = serde_json::from_str(
        &cli.run(&["key", "create", "app", "--instance", "qwen:infer,start", "--expires", "2099-01-01", "-o", "json"])
            .await
            .ok(),
    )
    .unwrap();
    assert_eq!(created["id"], 2);
    assert_eq!(created["permission_mode"], "per_instance");
    assert_eq!(created["expires_at"], 4_070_908_800_i64);
    let app_secret = created["key_secret"].as_str().unwrap().to_owned();

    insta::assert_snapshot!("key_list", cli.run(&["key", "list"]).await.ok());
    assert_eq!(cli.run(&["key", "ls", "-q"]).await.ok(), "1\n2\n");
    insta::assert_snapshot!("key_show", cli.run(&["key", "show", "2"]).await.ok());
    let shown: Value = serde_json::from_str(&cli.run(&["key", "show", "2", "-o", "json"]).await.ok()).unwrap();
    assert_eq!(shown["permissions"], api(&server, Method::GET, "/api/v1/auth/keys/2/permissions").await);
    assert_eq!(shown["name"], "app");

    // The key reaches only what it was given.
    let app = Llamactl::new(&server.base, Some(&app_secret));
    assert_eq!(app.run(&["models", "-q"]).await.ok(), "qwen\n");

    assert_eq!(cli.run(&["key", "rm", "2"]).await.ok(), "key 2 deleted\n");
    let line = app.run(&["models"]).await.error(1);
    assert!(line.starts_with("error: cannot list models: "), "{line}");
    assert_eq!(cli.run(&["key", "ls", "-q"]).await.ok(), "1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_comes_from_flags_then_environment_then_the_config_file() {
    let server = TestServer::start(|_| {}).await;
    let cli = Llamactl::new("http://127.0.0.1:9", None);
    let config = cli.home().join(".config/llamactl");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("cli.yaml"), format!("server: {}\napi_key: {MANAGEMENT_KEY}\n", server.base)).unwrap();

    // LLAMACTL_SERVER (port 9, nothing there) wins over the file.
    cli.run(&["instance", "ls"]).await.error(3);
    // --server wins over the environment; the key comes from the file.
    assert!(cli.run(&["--server", &server.base, "instance", "ls"]).await.ok().starts_with("no instances"));
    // Without the variable the file's server is used.
    let mut command = cli.command(&["instance", "ls"]);
    command.env_remove("LLAMACTL_SERVER");
    let output = command.output().await.unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    // A broken file names itself; an explicit file must exist.
    std::fs::write(config.join("cli.yaml"), "sever: typo\n").unwrap();
    let line = cli.run(&["instance", "ls"]).await.error(2);
    assert!(line.contains("cli.yaml") && line.contains("sever"), "{line}");
    let line = cli.run(&["--config", "/nonexistent.yaml", "instance", "ls"]).await.error(2);
    assert_eq!(line, "error: /nonexistent.yaml does not exist");
}

/// Options of a test-backend instance.
fn test_backend_instance(args: &[&str]) -> String {
    let mut all = vec!["--host", "{host}", "--port", "{port}"];
    all.extend_from_slice(args);
    json!({"backend_type": "custom", "backend_options": {"command": test_backend(), "args": all}}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_wait_reports_readiness_failure_and_timeout() {
    let server = TestServer::start(|_| {}).await;
    let cli = Llamactl::new(&server.base, Some(MANAGEMENT_KEY));
    let dir = server.dir.path();
    for (name, args) in [
        ("slow", &["--ready-after-ms", "700"][..]),
        ("broken", &["--never-ready", "--log-lines", "3", "--exit-after-ms", "300", "--exit-code", "7"]),
        ("never", &["--never-ready"]),
    ] {
        let file = dir.join(format!("{name}.json"));
        std::fs::write(&file, test_backend_instance(args)).unwrap();
        cli.run(&["instance", "create", name, "-f", file.to_str().unwrap(), "-q"]).await.ok();
    }

    let out = cli.run(&["instance", "start", "slow", "--wait"]).await.ok();
    assert!(out.starts_with("slow is running on port "), "{out}");
    let ready = api(&server, Method::GET, "/api/v1/instances/slow").await;
    assert_eq!(ready["status"], "running");
    assert!(out.contains(&format!("port {}", ready["port"])), "{out}");
    // Without --wait the answer comes at once.
    let out = cli.run(&["instance", "restart", "slow"]).await.ok();
    assert_eq!(out, "slow: starting\n");
    assert_eq!(cli.run(&["instance", "stop", "slow"]).await.ok(), "slow: stopped\n");

    let run = cli.run(&["instance", "start", "broken", "--wait"]).await.expect(1);
    let mut lines = run.stderr.lines();
    assert_eq!(lines.next().unwrap(), "last lines of its log:");
    assert_eq!(
        lines.next_back().unwrap(),
        "error: broken did not start: exited while starting (exit code 7) (see: llamactl instance logs broken)"
    );
    assert!(run.stderr.contains("  log line 2\n"), "{}", run.stderr);

    let run = cli.run(&["instance", "start", "never", "--wait", "--timeout", "1"]).await.expect(1);
    let last = run.stderr.lines().last().unwrap();
    assert_eq!(last, "error: never is not ready after 1 s (still starting) (see: llamactl instance logs never)");

    let events = cli.run(&["instance", "events", "broken"]).await.ok();
    let rows: Vec<Vec<&str>> =
        events.lines().map(|l| l.split("  ").filter(|c| !c.is_empty()).map(str::trim).collect()).collect();
    assert_eq!(rows[0], ["TIME", "FROM", "TO", "REASON", "PID", "PORT"]);
    assert_eq!(rows[1][1..4], ["stopped", "starting", "user_start"]);
    assert_eq!(rows[2][1..4], ["starting", "failed", "exited while starting (exit code 7)"]);
    assert_eq!(cli.run(&["instance", "events", "broken", "-n", "1", "-q"]).await.ok().lines().count(), 2);
    let json: Value =
        serde_json::from_str(&cli.run(&["instance", "events", "broken", "-n", "1", "-o", "json"]).await.ok()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["to"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_backend_program_is_named_with_its_config_key_variable_and_path() {
    let server = TestServer::start(|config| {
        config.backends.llama_cpp.command = Some("/nonexistent/llama-server".into());
    })
    .await;
    let cli = Llamactl::new(&server.base, Some(MANAGEMENT_KEY));
    cli.run(&["instance", "create", "missing", "--backend", "llama_cpp", "--model", "/models/q.gguf", "-q"]).await.ok();
    let run = cli.run(&["instance", "start", "missing", "--wait"]).await.expect(1);
    settings().bind(|| insta::assert_snapshot!("start_missing_program", run.stderr));
    let last = run.stderr.lines().last().unwrap();
    for part in ["backends.llama-cpp.command", "LLAMACTL_LLAMACPP_COMMAND", "PATH"] {
        assert!(last.starts_with("error: ") && last.contains(part), "{}", run.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_prints_and_exits_shows_its_lines_then_the_error_on_its_own_line() {
    let server = TestServer::start(|_| {}).await;
    let cli = Llamactl::new(&server.base, Some(MANAGEMENT_KEY));
    // Its last line has no newline.
    let options = json!({"backend_type": "custom", "backend_options": {
        "command": "/bin/sh", "args": ["-c", "echo first line; printf 'last line, no newline'; exit 3"]}});
    let file = server.dir.path().join("talker.json");
    std::fs::write(&file, options.to_string()).unwrap();
    cli.run(&["instance", "create", "talker", "-f", file.to_str().unwrap(), "-q"]).await.ok();

    // (The manager's own lines and the backend's may interleave: only their presence is checked.)
    let error = "error: talker did not start: exited while starting (exit code 3) (see: llamactl instance logs talker)";
    let run = cli.run(&["instance", "start", "talker", "--wait"]).await.expect(1);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.first(), Some(&"last lines of its log:"), "{}", run.stderr);
    assert_eq!(lines.last(), Some(&error), "{}", run.stderr);
    assert!(lines.contains(&"  first line") && lines.contains(&"  last line, no newline"), "{}", run.stderr);

    // On a terminal, with the spinner: the same lines, the error alone on the last one.
    let run = cli.run_on_terminal(100, &["instance", "start", "talker", "--wait"]).await.expect(1);
    let screen = plain(&run.stdout);
    let lines: Vec<&str> = screen.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect();
    assert!(lines.last().is_some_and(|l| l.ends_with(error)), "{screen:?}");
    assert!(lines.iter().any(|l| l.ends_with("  last line, no newline")), "{screen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_server_is_started_and_its_log_read_and_followed() {
    let server = TestServer::start(|_| {}).await;
    let cli = Llamactl::new(&server.base, Some(MANAGEMENT_KEY));
    let model = tiny_gguf();
    cli.run(&[
        "instance",
        "create",
        "tiny",
        "--backend",
        "llama_cpp",
        "--model",
        model.to_str().unwrap(),
        "-O",
        "ctx_size=256",
        "--start",
    ])
    .await
    .ok();
    let running = api(&server, Method::GET, "/api/v1/instances/tiny").await;
    assert_eq!(running["status"], "running");

    let log = cli.run(&["instance", "logs", "tiny", "-n", "5"]).await.ok();
    assert_eq!(log.lines().count(), 5, "{log}");
    let full = cli.run(&["instance", "logs", "tiny", "-n", "1000"]).await.ok();
    assert!(full.contains("llama_server: model loaded") || full.contains("model loaded"), "{full}");

    let list = cli.run(&["instance", "list"]).await.ok();
    let row = list.lines().find(|l| l.starts_with("tiny")).unwrap().to_owned();
    assert!(
        row.contains("running")
            && row.contains(&running["port"].to_string())
            && row.contains(&running["pid"].to_string()),
        "{list}"
    );

    // Follow: the last lines, then new ones as the instance produces them, until Ctrl-C.
    let mut follow = cli.command(&["instance", "logs", "tiny", "-f", "-n", "1"]).spawn().unwrap();
    let mut stdout = BufReader::new(follow.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), stdout.next_line()).await.unwrap().unwrap().unwrap();
    assert!(!first.is_empty());
    let base = format!("http://127.0.0.1:{}", running["port"]);
    let answer = http()
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            let done = line.contains("/v1/chat/completions") || line.contains("prompt");
            seen.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "no new line about the request; saw {seen:?}");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(follow.id().unwrap()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), follow.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C ends a followed log normally");

    assert_eq!(cli.run(&["instance", "stop", "tiny"]).await.ok(), "tiny: stopped\n");
    let bad = cli
        .run(&["instance", "create", "bad", "--backend", "llama_cpp", "--model", "/nonexistent/model.gguf", "--start"])
        .await
        .expect(1);
    assert_eq!(bad.stdout, "instance bad created\n");
    let last = bad.stderr.lines().last().unwrap();
    assert!(last.starts_with("error: bad did not start: exited while starting (exit code 1)"), "{}", bad.stderr);
    assert!(bad.stderr.contains("failed to load model"), "the backend's own words are shown: {}", bad.stderr);
}

/// Removes terminal escape sequences (colours, cursor movement).
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-byte
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_tables_fit_its_width_colours_show_and_start_wait_spins() {
    let server = TestServer::start(|_| {}).await;
    let cli = Llamactl::new(&server.base, Some(MANAGEMENT_KEY));
    let long_model = "/models/a-rather-long-folder-name/with-a-long-model-file-name-q4_k_m.gguf";
    for name in ["alpha", "beta"] {
        cli.run(&["instance", "create", name, "--backend", "llama_cpp", "--model", long_model, "-q"]).await.ok();
    }
    let file = server.dir.path().join("slow.json");
    std::fs::write(&file, test_backend_instance(&["--ready-after-ms", "1500"])).unwrap();
    cli.run(&["instance", "create", "slow", "-f", file.to_str().unwrap(), "-q"]).await.ok();

    // Coloured, and no line wider than the terminal: the model column wraps.
    let run = cli.run_on_terminal(80, &["instance", "list"]).await.expect(0);
    assert!(run.stdout.contains("\x1b["), "colours on a terminal: {:?}", run.stdout);
    let table = plain(&run.stdout);
    assert!(table.contains("alpha") && table.contains("stopped"), "{table}");
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "wider than the terminal: {line:?}\n{table}");
    }
    assert!(!table.contains(long_model), "the long model path wraps:\n{table}");
    assert!(table.contains("RESTARTS") && table.contains("llama_cpp"), "other columns stay whole:\n{table}");
    // Piped, the same table keeps whole lines (for grep and awk).
    assert!(cli.run(&["instance", "list"]).await.ok().contains(long_model));

    // --no-color and NO_COLOR turn colours off, the width still applies.
    let run = cli.run_on_terminal(80, &["--no-color", "instance", "list"]).await.expect(0);
    assert!(!run.stdout.contains("\x1b[3") && !run.stdout.contains("\x1b[1m"), "{:?}", run.stdout);
    assert!(plain(&run.stdout).lines().all(|l| l.chars().count() <= 80));

    // start --wait: a spinner with the status and the elapsed time, then the result.
    let run = cli.run_on_terminal(100, &["instance", "start", "slow", "--wait"]).await.expect(0);
    let screen = plain(&run.stdout);
    assert!(screen.contains("slow: starting"), "spinner message: {screen:?}");
    assert!(screen.contains("0s") || screen.contains("1s"), "elapsed time: {screen:?}");
    assert!(screen.contains("slow is running on port "), "{screen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_without_flags_opens_the_options_in_the_editor_and_never_loses_an_edit() {
    let server = TestServer::start(|_| {}).await;
    let cli = Llamactl::new(&server.base, Some(MANAGEMENT_KEY));
    cli.run(&[
        "instance",
        "create",
        "qwen",
        "--backend",
        "llama_cpp",
        "--model",
        "/m.gguf",
        "-O",
        "ctx_size=4096",
        "-q",
    ])
    .await
    .ok();
    let edit = |editor: &str| {
        let mut command = cli.command(&["instance", "edit", "qwen"]);
        command.env("EDITOR", editor);
        command
    };
    let run = |mut command: tokio::process::Command| async move {
        let output = command.output().await.unwrap();
        (output.status.code(), String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap())
    };

    // The editor sees the current options as YAML and its change is applied.
    let (code, stdout, stderr) = run(edit("sed -i -e s/4096/2048/ -e s/m.gguf/n.gguf/")).await;
    assert_eq!((code, stdout.as_str()), (Some(0), "instance qwen updated\n"), "{stderr}");
    let options = api(&server, Method::GET, "/api/v1/instances/qwen").await["options"].clone();
    assert_eq!(options["backend_options"], json!({"model": "/n.gguf", "ctx_size": 2048}));

    // Saved unchanged, or emptied: nothing is sent.
    let (code, stdout, _) = run(edit("true")).await;
    assert_eq!((code, stdout.as_str()), (Some(0), "no changes: instance qwen is unchanged\n"));
    let (code, stdout, _) = run(edit("truncate -s 0")).await;
    assert_eq!((code, stdout.as_str()), (Some(0), "edit cancelled: instance qwen is unchanged\n"));

    // Refused by the server: the edit is kept, and the way to apply it once fixed is shown.
    let (code, _, stderr) = run(edit("sed -i s/2048/big/")).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("ctx_size") && stderr.contains("your edit is kept in "), "{stderr}");
    let kept = stderr.split("your edit is kept in ").nth(1).unwrap().split(';').next().unwrap().to_owned();
    assert!(std::fs::read_to_string(&kept).unwrap().contains("ctx_size: big"), "{kept}");
    std::fs::write(&kept, std::fs::read_to_string(&kept).unwrap().replace("big", "1024")).unwrap();
    assert_eq!(cli.run(&["instance", "edit", "qwen", "-f", &kept]).await.ok(), "instance qwen updated\n");
    let options = api(&server, Method::GET, "/api/v1/instances/qwen").await["options"].clone();
    assert_eq!(options["backend_options"]["ctx_size"], 1024);
    std::fs::remove_file(&kept).unwrap();

    // Not YAML: a usage error, the edit kept too. A failing editor changes nothing.
    let (code, _, stderr) = run(edit("sh -c 'echo \"backend_options: [unclosed\" > \"$0\"'")).await;
    assert_eq!(code, Some(2), "{stderr}");
    let kept = stderr.split("your edit is kept in ").nth(1).unwrap().split(';').next().unwrap().to_owned();
    assert!(std::fs::read_to_string(&kept).unwrap().contains("[unclosed"));
    std::fs::remove_file(&kept).unwrap();
    let (code, _, stderr) = run(edit("false")).await;
    assert_eq!(code, Some(1));
    assert!(stderr.starts_with("error: the editor (false) failed"), "{stderr}");
    let options = api(&server, Method::GET, "/api/v1/instances/qwen").await["options"].clone();
    assert_eq!(options["backend_options"]["ctx_size"], 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_servers_are_verified_and_a_private_authority_can_be_trusted() {
    // An HTTPS server with a self-signed certificate for 127.0.0.1 (openssl s_server serving
    // files), answering GET /api/v1/instances with [].
    let dir = tempfile::tempdir().unwrap();
    let openssl = |args: &[&str]| {
        let output = std::process::Command::new("openssl").args(args).current_dir(dir.path()).output().unwrap();
        assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    // A private certificate authority, and the server's certificate signed by it.
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let ca = ["-days", "2", "-subj", "/CN=llamactl test CA", "-keyout", "ca.key", "-out", "ca.pem"];
    openssl(&[&["req", "-x509"][..], &ec, &ca].concat());
    openssl(&[&["req"][..], &ec, &["-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "server.csr"]].concat());
    let extensions = "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";
    std::fs::write(dir.path().join("server.ext"), extensions).unwrap();
    let sign =
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out cert.pem";
    openssl(&sign.split(' ').collect::<Vec<_>>());
    std::fs::create_dir_all(dir.path().join("api/v1")).unwrap();
    std::fs::write(dir.path().join("api/v1/instances"), "[]").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = tokio::process::Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-WWW",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            "cert.pem",
            "-key",
            "key.pem",
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    assert!(
        llamactl_tests::eventually(Duration::from_secs(10), || llamactl_tests::port_open(port)).await,
        "openssl s_server did not listen"
    );
    let cli = Llamactl::new(&format!("https://127.0.0.1:{port}"), Some("key"));
    let cert = dir.path().join("ca.pem");

    // Not trusted by default: a clear refusal, and what to do.
    let line = cli.run(&["instance", "ls"]).await.error(3);
    assert!(line.contains("certificate"), "{line}");
    assert!(line.ends_with("(to trust a private certificate authority, give its PEM file with --ca-cert)"), "{line}");

    // Trusted with --ca-cert, LLAMACTL_CA_CERT or ca_cert: in the configuration file.
    assert!(cli.run(&["--ca-cert", cert.to_str().unwrap(), "instance", "ls"]).await.ok().starts_with("no instances"));
    let mut command = cli.command(&["instance", "ls", "-o", "json"]);
    command.env("LLAMACTL_CA_CERT", &cert);
    let output = command.output().await.unwrap();
    assert_eq!((output.status.code(), String::from_utf8(output.stdout).unwrap()), (Some(0), "[]\n".to_owned()));
    let config = cli.home().join(".config/llamactl");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("cli.yaml"), format!("ca_cert: {}\n", cert.display())).unwrap();
    cli.run(&["instance", "ls"]).await.ok();

    // Not a certificate, or no file: usage errors naming the file.
    let key = dir.path().join("key.pem");
    let line = cli.run(&["--ca-cert", key.to_str().unwrap(), "instance", "ls"]).await.error(2);
    assert_eq!(line, format!("error: --ca-cert: {}: no PEM certificate found", key.display()));
    let line = cli.run(&["--ca-cert", "/nonexistent.pem", "instance", "ls"]).await.error(2);
    assert!(line.starts_with("error: --ca-cert: cannot read /nonexistent.pem"), "{line}");
}
