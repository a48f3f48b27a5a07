//! `llamactl activity`, `top` and `inflight` against a real server (in this process, real
//! SQLite file) proxying to the test backend: requests made with an inference key, the
//! management key and none are listed with their instance, status and key, filtered, followed
//! as they end, counted per instance, and a request in flight is listed and cancelled.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use llamactl_tests::cli::Llamactl;
use llamactl_tests::server::{MANAGEMENT_KEY, TestServer, http};
use llamactl_tests::test_backend;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Options of a test-backend instance with `args` added.
fn test_backend_instance(args: &[&str]) -> Value {
    let mut all = vec!["--host", "{host}", "--port", "{port}"];
    all.extend_from_slice(args);
    json!({"backend_type": "custom", "backend_options": {"command": test_backend(), "args": all},
        "environment": {"RUST_BACKTRACE": "0"}})
}

/// Creates `name` and starts it, waiting until it is ready.
async fn running_instance(server: &TestServer, cli: &Llamactl, name: &str, args: &[&str]) {
    let created = server
        .manage(Method::POST, &format!("/api/v1/instances/{name}"))
        .json(&test_backend_instance(args))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "create {name}: {}", created.text().await.unwrap());
    cli.run(&["instance", "start", name, "--wait", "-q"]).await.ok();
}

/// A chat completion for `model`, proxied by the server, with `key` if given; its status.
async fn chat(server: &TestServer, model: &str, key: Option<&str>) -> u16 {
    let mut request = http()
        .post(format!("{}/v1/chat/completions", server.base))
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap().status().as_u16()
}

/// `llamactl ARGS... -o json`, parsed.
async fn json_of(cli: &Llamactl, args: &[&str]) -> Value {
    let out = cli.run(&[args, &["-o", "json"]].concat()).await.ok();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

/// The items of `llamactl activity ARGS... -o json`, once there are `count` (records are
/// written when a request ends, which may be just after its client has the answer).
async fn activity_items(cli: &Llamactl, args: &[&str], count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = json_of(cli, &[&["activity"][..], args].concat()).await;
        let items = page["items"].as_array().unwrap().clone();
        if items.len() >= count || Instant::now() > deadline {
            assert_eq!(items.len(), count, "{args:?}: {page:#}");
            return items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next line of a followed output, as JSON.
async fn next_json(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.unwrap().unwrap().unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// `(instance, status, key_name)` of each record.
fn summary(items: &[Value]) -> Vec<(Value, Value, Value)> {
    items.iter().map(|i| (i["instance"].clone(), i["status"].clone(), i["key_name"].clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_lists_filters_and_follows_requests_and_top_counts_them() {
    let server = TestServer::start(|_| {}).await;
    let cli = Llamactl::new(&server.base, Some(MANAGEMENT_KEY));
    running_instance(&server, &cli, "alpha", &[]).await;
    running_instance(&server, &cli, "beta", &[]).await;
    let secret = cli.run(&["key", "create", "ci", "--all", "-q"]).await.ok().trim().to_owned();
    let keys = json_of(&cli, &["key", "list"]).await;
    let ci_id = keys[0]["id"].to_string();

    assert_eq!(chat(&server, "alpha", Some(&secret)).await, 200);
    assert_eq!(chat(&server, "beta", Some(&secret)).await, 200);
    assert_eq!(chat(&server, "alpha", Some(MANAGEMENT_KEY)).await, 200);
    assert_eq!(chat(&server, "alpha", None).await, 401);

    // Newest first, as the API sends them.
    let items = activity_items(&cli, &[], 4).await;
    let ids: Vec<i64> = items.iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let all = summary(&items);
    assert_eq!(all[3], (json!("alpha"), json!(200), json!("ci")));
    assert_eq!(all[2], (json!("beta"), json!(200), json!("ci")));
    assert_eq!(all[1], (json!("alpha"), json!(200), json!("management")));
    assert_eq!((&all[0].1, &all[0].2), (&json!(401), &Value::Null), "no key: refused, no key name");
    assert!(items[1..].iter().all(|i| i["outcome"] == "completed" && i["path"] == "/v1/chat/completions"));
    // The test backend reports one prompt and one generated token.
    assert!(items[1..].iter().all(|i| i["prompt_tokens"] == 1 && i["completion_tokens"] == 1), "{items:#?}");
    // -o json is the API's page as the server sent it.
    let page: Value = server.manage(Method::GET, "/api/v1/activity").send().await.unwrap().json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap(), &items);

    // Filters: by instance, key (name or id), status; a limit takes the newest.
    let beta = activity_items(&cli, &["--instance", "beta"], 1).await;
    assert_eq!(summary(&beta), [(json!("beta"), json!(200), json!("ci"))]);
    let alpha = json_of(&cli, &["activity", "--instance", "alpha"]).await;
    let alpha = alpha["items"].as_array().unwrap();
    assert!(alpha.len() >= 2 && alpha.iter().all(|i| i["instance"] == "alpha"), "{alpha:#?}");
    for key in ["ci", ci_id.as_str()] {
        let by_key = activity_items(&cli, &["--key", key], 2).await;
        assert_eq!(
            summary(&by_key),
            [(json!("beta"), json!(200), json!("ci")), (json!("alpha"), json!(200), json!("ci"))],
            "--key {key}"
        );
    }
    let refused = activity_items(&cli, &["--status", "401"], 1).await;
    assert_eq!(refused[0]["id"], items[0]["id"]);
    let newest = activity_items(&cli, &["-n", "2"], 2).await;
    assert_eq!(newest, items[..2]);

    // The table: oldest first, the newest at the bottom; -q prints the ids.
    let table = cli.run(&["activity"]).await.ok();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["AGE", "TIME", "INSTANCE", "MODEL", "KEY", "STATUS", "OUTCOME", "DURATION", "TTFB", "IN", "OUT", "TOK/S"]
    );
    for (line, words) in
        lines[1..].iter().zip([["alpha", "ci", "200"], ["beta", "ci", "200"], ["alpha", "management", "200"]])
    {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert!(words.iter().all(|w| cells.contains(w)), "{words:?} in {line:?}\n{table}");
        assert!(line.contains(" ago "), "{line}");
    }
    assert!(lines[4].split_whitespace().any(|c| c == "401"), "{table}");
    let quiet = cli.run(&["activity", "-q"]).await.ok();
    let mut oldest_first = ids.clone();
    oldest_first.reverse();
    assert_eq!(quiet.lines().map(|l| l.parse::<i64>().unwrap()).collect::<Vec<_>>(), oldest_first);

    // Following beta: its record so far, then only its new ones, one JSON object per line.
    let mut follow = cli.command(&["activity", "-f", "--instance", "beta", "-o", "json"]).spawn().unwrap();
    let mut stdout = BufReader::new(follow.stdout.take().unwrap()).lines();
    let first = next_json(&mut stdout).await;
    assert_eq!(first, beta[0]);
    // Subscribed before the page was read: requests made now are seen.
    assert_eq!(chat(&server, "alpha", Some(&secret)).await, 200);
    assert_eq!(chat(&server, "beta", Some(MANAGEMENT_KEY)).await, 200);
    let followed = next_json(&mut stdout).await;
    assert_eq!((&followed["instance"], &followed["key_name"]), (&json!("beta"), &json!("management")), "{followed}");
    assert!(followed["id"].as_i64().unwrap() > first["id"].as_i64().unwrap());
    let pid = nix::unistd::Pid::from_raw(i32::try_from(follow.id().unwrap()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), follow.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C ends following normally");

    // top: one row per instance; over a minute, beta had two requests with one token each.
    let top = cli.run(&["top", "--once"]).await.ok();
    let lines: Vec<Vec<&str>> = top.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "STATUS", "IN", "FLIGHT", "QUEUED", "REQ/S", "TOK/S", "MEMORY"], "{top}");
    for name in ["alpha", "beta"] {
        let row = lines.iter().find(|l| l[0] == name).unwrap_or_else(|| panic!("no row for {name}:\n{top}"));
        assert_eq!(row[1..4], ["running", "0", "0"], "{top}");
    }
    let rows = json_of(&cli, &["top", "--once", "--interval", "60"]).await;
    let beta_row = rows.as_array().unwrap().iter().find(|r| r["name"] == "beta").unwrap();
    assert_eq!(beta_row["in_flight"], 0);
    assert_eq!(beta_row["queued"], 0);
    let per_minute = |field: &str| (beta_row[field].as_f64().unwrap() * 60.0).round();
    assert_eq!((per_minute("requests_per_second"), per_minute("tokens_per_second")), (2.0, 2.0), "{rows:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_is_listed_and_cancelled() {
    let server = TestServer::start(|_| {}).await;
    let cli = Llamactl::new(&server.base, Some(MANAGEMENT_KEY));
    running_instance(&server, &cli, "slow", &["--response-delay-ms", "20000"]).await;
    assert_eq!(cli.run(&["inflight"]).await.ok(), "no requests in flight\n");

    let pending = tokio::spawn({
        let base = server.base.clone();
        async move {
            http()
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(MANAGEMENT_KEY)
                .json(&json!({"model": "slow", "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let request = loop {
        let listed = json_of(&cli, &["inflight"]).await;
        if let Some(request) = listed.as_array().unwrap().iter().find(|r| r["instance"] == "slow") {
            break request.clone();
        }
        assert!(Instant::now() < deadline, "the request is never listed: {listed:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(request["state"], "forwarding", "{request}");
    assert_eq!(request["key_name"], "management");
    let id = request["id"].to_string();
    let table = cli.run(&["inflight"]).await.ok();
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..6], [id.as_str(), "slow", "slow", "management", "/v1/chat/completions", "forwarding"], "{table}");

    assert_eq!(cli.run(&["inflight", "cancel", &id]).await.ok(), format!("request {id} cancelled\n"));
    // Its client gets no answer (or a broken one) long before the backend's 20 s.
    let answer = tokio::time::timeout(Duration::from_secs(10), pending).await.unwrap().unwrap();
    if let Ok(response) = answer {
        assert!(response.status().as_u16() >= 400 || response.bytes().await.is_err());
    }
    let items = activity_items(&cli, &["--instance", "slow"], 1).await;
    assert_eq!(items[0]["outcome"], "cancelled", "{items:#?}");
    assert_eq!(cli.run(&["inflight", "-q"]).await.ok(), "");
    let line = cli.run(&["inflight", "cancel", &id]).await.error(4);
    assert!(line.starts_with(&format!("error: cannot cancel request {id}: ")), "{line}");
}
