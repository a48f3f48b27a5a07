//! A custom backend as people write them in Python (`http.server`, HTTP/1.1 keep-alive,
//! headers and body written apart, Nagle on): requests through the proxy on a reused
//! connection must not wait for the kernel's delayed ACK, whose minimum on Linux is 40 ms.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use llamactl_tests::keepalive_backend_options;
use llamactl_tests::server::{TestServer, create_instance, http};
use serde_json::json;

#[tokio::test]
async fn requests_to_a_keep_alive_backend_that_writes_headers_and_body_apart_are_not_held_by_delayed_acks() {
    let server = TestServer::start(|c| c.auth.require_inference_auth = false).await;
    let options = serde_json::to_value(keepalive_backend_options(&[])).unwrap();
    create_instance(&server.base, "py", &options).await;
    let started = server.manage(reqwest::Method::POST, "/api/v1/instances/py/start").send().await.unwrap();
    assert!(started.status().is_success());
    let client = http();
    let mut times = Vec::new();
    for _ in 0..12 {
        let t0 = Instant::now();
        let response = client
            .post(format!("{}/v1/chat/completions", server.base))
            .timeout(Duration::from_secs(60))
            .json(&json!({"model": "py", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["choices"][0]["message"]["content"], "ok");
        times.push(t0.elapsed());
    }
    // The first request may open the backend connection; every later one reuses it. Held for
    // a delayed ACK, each would take 40 ms or more: the fastest shows whether any was not.
    let fastest = times[1..].iter().min().unwrap();
    assert!(*fastest < Duration::from_millis(30), "every reused-connection request was held: {times:?}");
}

#[tokio::test]
async fn a_streamed_answer_from_such_a_backend_is_not_held_between_its_chunks() {
    let server = TestServer::start(|c| c.auth.require_inference_auth = false).await;
    let options = serde_json::to_value(keepalive_backend_options(&[])).unwrap();
    create_instance(&server.base, "py", &options).await;
    let started = server.manage(reqwest::Method::POST, "/api/v1/instances/py/start").send().await.unwrap();
    assert!(started.status().is_success());
    let client = http();
    let mut times = Vec::new();
    for _ in 0..8 {
        let t0 = Instant::now();
        let response = client
            .post(format!("{}/v1/chat/completions", server.base))
            .timeout(Duration::from_secs(60))
            .json(&json!({"model": "py", "messages": [{"role": "user", "content": "hi"}], "stream": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let text = response.text().await.unwrap();
        assert_eq!(text.matches("data: ").count(), 5, "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        times.push(t0.elapsed());
    }
    // Each chunk is written at once after the previous one: Nagle holds it until the previous
    // one is acknowledged, 40 ms or more if that ACK is delayed.
    let fastest = times[1..].iter().min().unwrap();
    assert!(*fastest < Duration::from_millis(30), "every reused-connection stream was held: {times:?}");
}
