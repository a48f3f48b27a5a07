//! Memory per idle connection: the real server (release build), loopback only.
//!
//! 1. Resident memory of the idle server.
//! 2. N connections (default 2,000) that each send half a request line and stop (what a
//!    slow-headers client does): resident memory with them open, bytes per connection.
//! 3. All closed: resident memory a second later.
//! 4. The same with N kept-alive connections that each made one `GET /health`.
//!
//! The timeouts are set long (10 min) so that the connections stay open while they are
//! measured; the open-file limit is raised to its hard limit for the clients and the server.
//! Prints figures; asserts nothing about time. Run: `scripts/bench.sh connections`.
//! LLAMACTL_BENCH_CONNECTIONS changes N; LLAMACTL_BENCH_SERVER runs another server binary
//! (an older build without the connection settings: they are then left out of its
//! configuration).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use llamactl_tests::resident_mib;
use llamactl_tests::server::{SpawnedServer, server_binary, server_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn count() -> usize {
    std::env::var("LLAMACTL_BENCH_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
}

/// Raises the soft open-file limit to the hard one; returns the limit in force.
fn raise_open_file_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

async fn connect(address: &str) -> TcpStream {
    TcpStream::connect(address).await.unwrap()
}

/// Opens `n` connections that each send half a request line.
async fn half_request_lines(address: &str, n: usize) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = connect(address).await;
        stream.write_all(b"GET /health HT").await.unwrap();
        streams.push(stream);
    }
    streams
}

/// Opens `n` connections that each make one `GET /health` and keep the connection.
async fn kept_alive(address: &str, n: usize) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(n);
    let mut buffer = [0u8; 1024];
    for _ in 0..n {
        let mut stream = connect(address).await;
        stream.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n").await.unwrap();
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(buffer[..read].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buffer[..read]));
        streams.push(stream);
    }
    streams
}

/// Resident memory once it has settled (the server handles what was sent meanwhile).
async fn settled_mib(pid: u32) -> f64 {
    tokio::time::sleep(Duration::from_secs(1)).await;
    resident_mib(pid)
}

fn per_connection(open: f64, before: f64, n: usize) -> f64 {
    (open - before) * 1024.0 * 1024.0 / n as f64
}

#[tokio::main]
async fn main() {
    llamactl_tests::install_tls_provider();
    let n = count();
    let limit = raise_open_file_limit();
    assert!(limit as usize > n + 512, "the open-file limit ({limit}) is too low for {n} connections");
    let dir = tempfile::tempdir().unwrap();
    let mut config = server_config(dir.path());
    config.server.max_connections = n + 256;
    config.server.header_read_timeout_seconds = 600;
    config.server.keep_alive_timeout_seconds = 600;
    let mut json = serde_json::to_value(&config).unwrap();
    let program = match std::env::var("LLAMACTL_BENCH_SERVER") {
        Ok(other) => {
            let server = json["server"].as_object_mut().unwrap();
            for key in
                ["max_connections", "header_read_timeout_seconds", "keep_alive_timeout_seconds", "max_header_bytes"]
            {
                server.remove(key);
            }
            PathBuf::from(other)
        }
        Err(_) => server_binary(),
    };
    let server = SpawnedServer::start_program(&program, dir.path(), &json, Stdio::inherit());
    let address = server.base.trim_start_matches("http://").to_owned();
    let pid = server.child.id();
    println!("server: {}; {n} connections; open-file limit {limit}", program.display());
    drop(kept_alive(&address, 20).await);
    let idle = settled_mib(pid).await;
    println!("idle server: {idle:.1} MiB");

    for (what, open) in [("half a request line each", true), ("one GET /health each, kept alive", false)] {
        let before = settled_mib(pid).await;
        let streams = if open { half_request_lines(&address, n).await } else { kept_alive(&address, n).await };
        let with = settled_mib(pid).await;
        drop(streams);
        let after = settled_mib(pid).await;
        println!(
            "{n} connections, {what}: {before:.1} MiB before, {with:.1} MiB open ({:.0} bytes per connection), {after:.1} MiB after they closed",
            per_connection(with, before, n)
        );
    }
    assert!(server.terminate());
}
