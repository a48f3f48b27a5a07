//! The server's connection limits, tried as a hostile client would, against the real binary:
//! - a client that sends half a request line (or nothing) and stops is disconnected after
//!   `server.header_read_timeout_seconds`;
//! - a kept-alive connection with nothing in flight is closed after
//!   `server.keep_alive_timeout_seconds`, while a streamed response longer than that completes;
//! - past `server.max_connections` new connections are refused at once with a 503, counted in
//!   `/metrics`, and one warning naming the cap is logged;
//! - a request head over `server.max_header_bytes` (64 KiB by default) gets 431;
//! - on SIGTERM connections with nothing in flight (idle, a head half sent, nothing sent) are
//!   closed at once while a streamed response completes.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use llamactl_server::config::Config;
use llamactl_tests::server::{MANAGEMENT_KEY, SpawnedServer, create_instance, http, server_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn connect(server: &SpawnedServer) -> TcpStream {
    TcpStream::connect(server.base.trim_start_matches("http://")).await.unwrap()
}

/// Reads until the server closes the connection (EOF or reset), at most `limit`; returns how
/// long that took, or None if it was still open.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let began = Instant::now();
    let mut sink = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .map(|()| began.elapsed())
}

/// Reads one response with a `content-length`: its status and body; None if the connection
/// closed first.
async fn read_response(stream: &mut TcpStream) -> Option<(u16, String)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    Some((status, String::from_utf8_lossy(&buffer[head_end..head_end + length]).to_string()))
}

/// `GET /health` on `stream` (kept alive): the status and body, None if the connection was
/// closed.
async fn get_health(stream: &mut TcpStream) -> Option<(u16, String)> {
    stream.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n").await.ok()?;
    read_response(stream).await
}

/// `GET /health` on `stream`: the status, None if the connection was closed.
async fn health(stream: &mut TcpStream) -> Option<u16> {
    get_health(stream).await.map(|(status, _)| status)
}

/// The value of the series `series` (name and labels as printed) in `/metrics`, 0 if absent.
async fn metric(server: &SpawnedServer, series: &str) -> f64 {
    let text = server.manage(reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(series))
        .and_then(|l| l.split_whitespace().last())
        .map_or(0.0, |v| v.parse().unwrap())
}

fn config(dir: &std::path::Path, adjust: impl FnOnce(&mut Config)) -> Config {
    let mut config = server_config(dir);
    adjust(&mut config);
    config
}

#[tokio::test]
async fn a_client_that_does_not_finish_its_request_head_is_disconnected_after_the_header_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = SpawnedServer::start(
        dir.path(),
        &config(dir.path(), |c| {
            c.server.header_read_timeout_seconds = 1;
            c.server.keep_alive_timeout_seconds = 30;
        }),
    );
    let mut half = connect(&server).await;
    half.write_all(b"GET /health HT").await.unwrap();
    let mut silent = connect(&server).await;
    let mut prompt = connect(&server).await;
    assert_eq!(health(&mut prompt).await, Some(200), "a client that sends its request at once is served");

    let closed = closed_within(&mut half, Duration::from_secs(5)).await;
    let closed = closed.expect("half a request line and silence: still open after 5 s (no header-read timeout)");
    assert!(closed >= Duration::from_millis(800), "closed after {closed:?}, before the 1 s timeout");
    let silent_closed = closed_within(&mut silent, Duration::from_secs(5)).await;
    assert!(silent_closed.is_some(), "a connection that sends nothing is still open after 5 s");
    assert_eq!(metric(&server, "llamactl_connections_timed_out_total{reason=\"header_read\"}").await, 2.0);
    println!("half a request line closed after {closed:?}; a silent connection after {silent_closed:?}");
    assert!(server.terminate());
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout_while_a_longer_stream_completes() {
    let dir = tempfile::tempdir().unwrap();
    let server = SpawnedServer::start(
        dir.path(),
        &config(dir.path(), |c| {
            c.server.header_read_timeout_seconds = 1;
            c.server.keep_alive_timeout_seconds = 2;
        }),
    );
    let mut kept = connect(&server).await;
    assert_eq!(health(&mut kept).await, Some(200));
    // Idle longer than the header-read timeout: that one only runs while a head is arriving.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(health(&mut kept).await, Some(200), "closed while idle for less than the keep-alive timeout");
    let closed = closed_within(&mut kept, Duration::from_secs(6)).await;
    let closed = closed.expect("an idle kept-alive connection is still open after 6 s (no keep-alive timeout)");
    assert!(closed >= Duration::from_millis(1800), "closed after {closed:?}, before the 2 s keep-alive timeout");
    assert_eq!(metric(&server, "llamactl_connections_timed_out_total{reason=\"keep_alive\"}").await, 1.0);

    // A response streamed for longer than the keep-alive timeout is in flight, not idle.
    let options = serde_json::to_value(llamactl_tests::test_backend_options(&[
        "--stream-chunks",
        "12",
        "--stream-interval-ms",
        "400",
    ]))
    .unwrap();
    create_instance(&server.base, "slow", &options).await;
    let started = server.manage(reqwest::Method::POST, "/api/v1/instances/slow/start").send().await.unwrap();
    assert!(started.status().is_success());
    let body = serde_json::json!({"model": "slow", "messages": [{"role": "user", "content": "hi"}], "stream": true});
    let began = Instant::now();
    let response = http()
        .post(format!("{}/v1/chat/completions", server.base))
        .bearer_auth(MANAGEMENT_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.expect("the stream was cut");
    let took = began.elapsed();
    llamactl_tests::assert_chat_stream(status, &text);
    assert!(took > Duration::from_secs(3), "the stream took {took:?}, not longer than the keep-alive timeout");
    println!("idle connection closed after {closed:?}; a {took:?} stream completed");
    assert!(server.terminate());
}

#[tokio::test]
async fn connections_past_the_cap_are_refused_at_once_counted_and_logged_once() {
    const CAP: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = SpawnedServer::start_logging(
        dir.path(),
        &config(dir.path(), |c| {
            c.server.max_connections = CAP;
            c.server.header_read_timeout_seconds = 30;
            c.server.keep_alive_timeout_seconds = 30;
        }),
        log,
    );
    let mut held = Vec::new();
    for _ in 0..CAP {
        let mut stream = connect(&server).await;
        assert_eq!(health(&mut stream).await, Some(200), "below the cap");
        held.push(stream);
    }
    let (mut refused, mut answered) = (0, 0);
    for _ in 0..5 {
        let began = Instant::now();
        let mut extra = connect(&server).await;
        let answer = tokio::time::timeout(Duration::from_secs(2), get_health(&mut extra))
            .await
            .expect("a connection over the cap was neither answered nor closed within 2 s");
        assert!(began.elapsed() < Duration::from_secs(1), "refused after {:?}", began.elapsed());
        // The 503 is written at once; a client whose request crossed it may see a reset instead.
        match answer {
            None => {}
            Some((503, body)) => {
                let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(body["error"], "too_many_connections", "{body}");
                answered += 1;
            }
            other => panic!("over the cap: {other:?}"),
        }
        refused += 1;
    }
    assert!(answered > 0, "no refused connection got the 503");
    // A slot frees when a connection closes.
    held.pop();
    let mut counted = 0.0;
    for _ in 0..100 {
        let answer = http()
            .get(format!("{}/metrics", server.base))
            .bearer_auth(MANAGEMENT_KEY)
            .header("connection", "close")
            .send()
            .await;
        if let Ok(response) = answer
            && response.status() == 200
        {
            let text = response.text().await.unwrap();
            counted = text
                .lines()
                .find(|l| l.starts_with("llamactl_connections_refused_total"))
                .and_then(|l| l.split_whitespace().last())
                .map_or(0.0, |v| v.parse().unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(counted >= f64::from(refused), "{counted} refusals counted, {refused} made");
    assert!(server.terminate());
    let text = std::fs::read_to_string(&log_path).unwrap();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("connection limit reached")).collect();
    assert_eq!(warnings.len(), 1, "one warning for a burst of refusals: {text}");
    assert!(warnings[0].contains(&format!("server.max_connections ({CAP})")), "{}", warnings[0]);
    println!("{counted} refused; logged: {}", warnings[0]);
}

#[tokio::test]
async fn a_request_head_over_the_header_limit_gets_431_and_a_normal_one_passes() {
    let dir = tempfile::tempdir().unwrap();
    let server = SpawnedServer::start(dir.path(), &server_config(dir.path()));
    assert_eq!(Config::default().server.max_header_bytes, 64 * 1024);
    let request = |padding: usize| {
        format!("GET /health HTTP/1.1\r\nhost: localhost\r\nx-padding: {}\r\n\r\n", "a".repeat(padding)).into_bytes()
    };
    for (padding, expected) in [(8 * 1024, 200), (60 * 1024, 200), (200 * 1024, 431)] {
        let mut stream = connect(&server).await;
        // The server may answer and close before it has read the whole head.
        let _ = stream.write_all(&request(padding)).await;
        let answer = tokio::time::timeout(Duration::from_secs(5), read_response(&mut stream)).await.unwrap();
        assert_eq!(answer.map(|(status, _)| status), Some(expected), "a header of {padding} bytes");
    }
    assert!(server.terminate());
}

#[tokio::test]
async fn sigterm_closes_connections_with_nothing_in_flight_at_once_and_lets_a_streamed_response_complete() {
    let dir = tempfile::tempdir().unwrap();
    let server = SpawnedServer::start(dir.path(), &server_config(dir.path()));
    let options = serde_json::to_value(llamactl_tests::test_backend_options(&[
        "--stream-chunks",
        "10",
        "--stream-interval-ms",
        "200",
    ]))
    .unwrap();
    create_instance(&server.base, "slow", &options).await;
    let started = server.manage(reqwest::Method::POST, "/api/v1/instances/slow/start").send().await.unwrap();
    assert!(started.status().is_success());
    let mut idle = connect(&server).await;
    assert_eq!(health(&mut idle).await, Some(200));
    let mut half = connect(&server).await;
    half.write_all(b"GET /health HT").await.unwrap();
    let mut silent = connect(&server).await;
    let body = serde_json::json!({"model": "slow", "messages": [{"role": "user", "content": "hi"}], "stream": true});
    let response = http()
        .post(format!("{}/v1/chat/completions", server.base))
        .bearer_auth(MANAGEMENT_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let stream = tokio::spawn(async move { response.text().await });
    let exited = tokio::task::spawn_blocking(move || server.terminate());
    let closed = closed_within(&mut idle, Duration::from_secs(1)).await;
    assert!(closed.is_some(), "an idle connection is still open 1 s after SIGTERM (keep-alive: 60 s)");
    for (what, stream) in [("half a request line", &mut half), ("nothing", &mut silent)] {
        let closed = closed_within(stream, Duration::from_secs(1)).await;
        assert!(closed.is_some(), "a connection that sent {what} is still open 1 s after SIGTERM");
    }
    let text = stream.await.unwrap().expect("the stream in flight at SIGTERM was cut");
    llamactl_tests::assert_chat_stream(status, &text);
    assert!(exited.await.unwrap(), "clean exit");
}
