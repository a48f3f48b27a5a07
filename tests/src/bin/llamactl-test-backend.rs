//! A small OpenAI-compatible server for fault injection in llamactl's tests: it can be slow to
//! become ready, never become ready, exit on its own, ignore SIGTERM, leave a child process in
//! its group, and answer chat completions slowly. Real backends are tested too; this one makes
//! the faults reproducible.
//!
//! ```text
//! llamactl-test-backend --port 8001 [--host 127.0.0.1] [--ready-after-ms 500] [--never-ready]
//!     [--exit-after-ms 1000 --exit-code 3] [--ignore-sigterm] [--spawn-child]
//!     [--response-delay-ms 200] [--print-env VAR] [--log-lines N] [--stdout-junk]
//!     [--allocate-mb-after-ready N]   (touches N MiB once ready: for out-of-memory tests)
//!     [--tag TEXT]   (returned by the echo routes: tells which run answered)
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::{Value, json};

#[derive(Debug, Default)]
struct Options {
    host: String,
    port: u16,
    ready_after: Duration,
    never_ready: bool,
    exit_after: Option<Duration>,
    exit_code: i32,
    ignore_sigterm: bool,
    spawn_child: bool,
    response_delay: Duration,
    stream_chunks: usize,
    stream_interval: Duration,
    print_env: Vec<String>,
    log_lines: u32,
    allocate_mb: usize,
    tag: Option<String>,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        host: "127.0.0.1".into(),
        stream_chunks: 4,
        stream_interval: Duration::from_millis(5),
        ..Options::default()
    };
    let mut args = std::env::args().skip(1);
    let millis = |value: Option<String>, flag: &str| -> anyhow::Result<Duration> {
        let value = value.with_context(|| format!("{flag} needs a value"))?;
        Ok(Duration::from_millis(value.parse().with_context(|| format!("{flag}: not a number"))?))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--host" => options.host = args.next().context("--host needs a value")?,
            "--port" => options.port = args.next().context("--port needs a value")?.parse()?,
            "--ready-after-ms" => options.ready_after = millis(args.next(), "--ready-after-ms")?,
            "--never-ready" => options.never_ready = true,
            "--exit-after-ms" => options.exit_after = Some(millis(args.next(), "--exit-after-ms")?),
            "--exit-code" => options.exit_code = args.next().context("--exit-code needs a value")?.parse()?,
            "--ignore-sigterm" => options.ignore_sigterm = true,
            "--spawn-child" => options.spawn_child = true,
            "--response-delay-ms" => options.response_delay = millis(args.next(), "--response-delay-ms")?,
            "--stream-chunks" => {
                options.stream_chunks = args.next().context("--stream-chunks needs a value")?.parse()?
            }
            "--stream-interval-ms" => options.stream_interval = millis(args.next(), "--stream-interval-ms")?,
            "--print-env" => options.print_env.push(args.next().context("--print-env needs a value")?),
            "--log-lines" => options.log_lines = args.next().context("--log-lines needs a value")?.parse()?,
            "--allocate-mb-after-ready" => {
                options.allocate_mb = args.next().context("--allocate-mb-after-ready needs a value")?.parse()?
            }
            "--tag" => options.tag = Some(args.next().context("--tag needs a value")?),
            other => bail!("unknown argument {other}"),
        }
    }
    if options.port == 0 {
        bail!("--port is required");
    }
    Ok(options)
}

struct AppState {
    ready: AtomicBool,
    delay: Duration,
    requests: AtomicU64,
    stream_chunks: usize,
    stream_interval: Duration,
    tag: Option<String>,
}

/// Says on stdout how far a stream got when it is dropped (finished or cut by the client).
struct StreamWatch {
    id: u64,
    sent: Arc<AtomicU64>,
    total: usize,
}

impl Drop for StreamWatch {
    fn drop(&mut self) {
        let sent = self.sent.load(Ordering::SeqCst);
        if sent < self.total as u64 {
            println!("stream {} cut by the client after {sent} of {} chunks", self.id, self.total);
        } else {
            println!("stream {} finished", self.id);
        }
    }
}

async fn health(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, Json(json!({"status": "ok"})))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "loading"})))
    }
}

async fn models() -> Json<Value> {
    Json(json!({"object": "list", "data": [{"id": "test-model", "object": "model", "owned_by": "llamactl-tests"}]}))
}

async fn chat(State(state): State<Arc<AppState>>, Json(body): Json<Value>) -> axum::response::Response {
    let n = state.requests.fetch_add(1, Ordering::SeqCst) + 1;
    // Even a zero sleep waits for the next timer tick (a millisecond): skip it.
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    let model = body.get("model").cloned().unwrap_or(Value::Null);
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        // Chunks a few milliseconds apart, then [DONE], as OpenAI streams do.
        let (total, interval) = (state.stream_chunks, state.stream_interval);
        let sent = Arc::new(AtomicU64::new(0));
        let watch = StreamWatch { id: n, sent: sent.clone(), total };
        let chunks = (0..total).map(move |i| {
            let chunk = json!({"id": format!("chatcmpl-{n}"), "object": "chat.completion.chunk", "model": model,
                "choices": [{"index": 0, "delta": {"content": format!("p{i}")}, "finish_reason": Value::Null}]});
            (i, format!("data: {chunk}\n\n"))
        });
        let stream = futures::stream::iter(chunks)
            .then(move |(i, text)| {
                let sent = sent.clone();
                async move {
                    if i > 0 {
                        tokio::time::sleep(interval).await;
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::convert::Infallible>(text)
                }
            })
            .chain(futures::stream::once(async move {
                drop(watch);
                Ok("data: [DONE]\n\n".to_owned())
            }));
        return ([(axum::http::header::CONTENT_TYPE, "text/event-stream")], axum::body::Body::from_stream(stream))
            .into_response();
    }
    Json(json!({
        "id": format!("chatcmpl-{n}"),
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    }))
    .into_response()
}

/// Echoes what reached the backend: headers, path (as sent, still percent-encoded), query and
/// the body byte for byte.
async fn echo(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> Json<Value> {
    let headers: serde_json::Map<String, Value> =
        headers.iter().map(|(k, v)| (k.to_string(), Value::from(v.to_str().unwrap_or("")))).collect();
    Json(json!({
        "headers": headers,
        "path": uri.path(),
        "query": uri.query(),
        "body": String::from_utf8_lossy(&body),
        "tag": state.tag,
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    println!("test backend pid {} starting on {}:{}", std::process::id(), options.host, options.port);
    for var in &options.print_env {
        println!("env {var}={}", std::env::var(var).unwrap_or_else(|_| "<unset>".into()));
    }
    for i in 0..options.log_lines {
        eprintln!("log line {i}");
    }
    let _child = if options.spawn_child {
        let child = std::process::Command::new("sleep").arg("300").spawn().context("spawning the child")?;
        println!("child pid {}", child.id());
        Some(child)
    } else {
        None
    };
    if options.ignore_sigterm {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            while term.recv().await.is_some() {
                println!("SIGTERM received and ignored");
            }
        });
    }
    if let Some(after) = options.exit_after {
        let code = options.exit_code;
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            println!("exiting with code {code} as asked");
            std::process::exit(code);
        });
    }

    let state = Arc::new(AppState {
        ready: AtomicBool::new(false),
        delay: options.response_delay,
        requests: AtomicU64::new(0),
        stream_chunks: options.stream_chunks,
        stream_interval: options.stream_interval,
        tag: options.tag.clone(),
    });
    if !options.never_ready {
        let state = state.clone();
        let after = options.ready_after;
        let allocate_mb = options.allocate_mb;
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            state.ready.store(true, Ordering::SeqCst);
            println!("ready");
            if allocate_mb > 0 {
                // Grows 1 MiB at a time, writing every page, so that a memory limit is hit for real.
                tokio::time::sleep(Duration::from_millis(300)).await;
                println!("allocating {allocate_mb} MiB");
                let mut held: Vec<Vec<u8>> = Vec::with_capacity(allocate_mb);
                for _ in 0..allocate_mb {
                    held.push(vec![1u8; 1024 * 1024]);
                }
                println!("allocated {} MiB", held.len());
                std::future::pending::<()>().await;
            }
        });
    }
    let app = Router::new()
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/echo", post(echo))
        .route("/echo", axum::routing::any(echo))
        .route("/echo/{*rest}", axum::routing::any(echo))
        .with_state(state);
    let address: SocketAddr = format!("{}:{}", options.host, options.port).parse()?;
    let listener = tokio::net::TcpListener::bind(address).await.with_context(|| format!("cannot bind {address}"))?;
    println!("listening on {address}");
    axum::serve(listener, app).await?;
    Ok(())
}
