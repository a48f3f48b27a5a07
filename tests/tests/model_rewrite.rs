//! The `model` a proxied request carries is the one the run that answers it was started with,
//! even while an update replaces the instance's options (and its run) under a stream of
//! requests.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use llamactl_tests::server::{MANAGEMENT_KEY, TestServer, create_instance, http};
use llamactl_tests::test_backend;
use serde_json::{Value, json};

/// A test backend that says `tag` in its echoes and wants `tag` as its request model.
fn tagged(tag: &str) -> Value {
    tagged_with(tag, &[])
}

fn tagged_with(tag: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--host", "{host}", "--port", "{port}", "--tag", tag];
    args.extend_from_slice(extra);
    json!({
        "backend_type": "custom",
        "backend_options": {"command": test_backend(), "args": args, "request_model": tag},
        "environment": {"RUST_BACKTRACE": "0"},
    })
}

#[tokio::test]
async fn a_request_waiting_for_a_start_that_an_update_replaces_carries_the_new_runs_model() {
    let server = TestServer::start(|_| {}).await;
    create_instance(&server.base, "slow", &tagged_with("first", &["--ready-after-ms", "1500"])).await;
    // The request starts the instance on demand and waits for it to be ready ...
    let waiting = tokio::spawn({
        let base = server.base.clone();
        async move {
            let response = http()
                .post(format!("{base}/v1/echo"))
                .bearer_auth(MANAGEMENT_KEY)
                .json(&json!({"model": "slow"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    // ... while an update replaces the run it waits for.
    let response = server
        .manage(reqwest::Method::PUT, "/api/v1/instances/slow")
        .json(&tagged_with("second", &["--ready-after-ms", "300"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let echoed = waiting.await.unwrap();
    let sent: Value = serde_json::from_str(echoed["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["tag"], "second", "the request was answered by the run started after the update");
    assert_eq!(sent["model"], "second", "and carries that run's model, not the one chosen before it waited");
}

#[tokio::test]
async fn requests_racing_updates_carry_the_model_of_the_run_that_answers_them() {
    let server = Arc::new(TestServer::start(|_| {}).await);
    create_instance(&server.base, "racy", &tagged("run-0")).await;

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (server, stop, answered) = (server.clone(), stop.clone(), answered.clone());
            tokio::spawn(async move {
                let mut mismatches = Vec::new();
                let mut tags = std::collections::BTreeSet::new();
                while !stop.load(Ordering::Relaxed) {
                    let response = http()
                        .post(format!("{}/v1/echo", server.base))
                        .bearer_auth(MANAGEMENT_KEY)
                        .json(&json!({"model": "racy"}))
                        .send()
                        .await
                        .unwrap();
                    // A request caught by a restart may be refused (503); never misrouted.
                    if response.status() != 200 {
                        assert_eq!(response.status(), 503, "{}", response.text().await.unwrap());
                        continue;
                    }
                    let echoed: Value = response.json().await.unwrap();
                    let sent: Value = serde_json::from_str(echoed["body"].as_str().unwrap()).unwrap();
                    if sent["model"] != echoed["tag"] {
                        mismatches.push(format!("run {} got model {}", echoed["tag"], sent["model"]));
                    }
                    tags.insert(echoed["tag"].as_str().unwrap().to_owned());
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                (mismatches, tags)
            })
        })
        .collect();

    for run in 1..=5 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let response = server
            .manage(reqwest::Method::PUT, "/api/v1/instances/racy")
            .json(&tagged(&format!("run-{run}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);

    let mut tags = std::collections::BTreeSet::new();
    for client in clients {
        let (mismatches, seen) = client.await.unwrap();
        assert!(mismatches.is_empty(), "requests spliced into the wrong run: {mismatches:?}");
        tags.extend(seen);
    }
    assert!(answered.load(Ordering::Relaxed) > 50, "too few requests answered to tell");
    assert!(tags.len() >= 4, "requests reached only the runs {tags:?}");
}
