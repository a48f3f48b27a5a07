//! Readiness probing: `GET <readiness path>` answering 200 means the backend is ready.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
/// The URI type [`ReadinessProbe::check`] takes.
pub use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// An HTTP client for readiness checks (plain HTTP; backends listen on local or private
/// addresses).
///
/// ```no_run
/// use std::time::Duration;
/// use llamactl_core::readiness::ReadinessProbe;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let probe = ReadinessProbe::new();
/// let uri = "http://127.0.0.1:8080/health".parse().unwrap();
/// let ready = probe.check(&uri, Duration::from_millis(500)).await;
/// # let _ = ready; }
/// ```
#[derive(Debug, Clone)]
pub struct ReadinessProbe {
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Default for ReadinessProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl ReadinessProbe {
    /// A probe. Every check opens a connection of its own and asks the backend to close it.
    ///
    /// A reused keep-alive connection looks cheaper but is slower with the servers many custom
    /// backends are built on (Python's `http.server` with HTTP/1.1, for one): they write the
    /// headers and the body apart with Nagle's algorithm on, so the body waits for the ACK of
    /// the headers, which the kernel delays by about 40 ms on a connection in request/response
    /// rhythm. A fresh connection is acknowledged at once, and on loopback its handshake costs
    /// tens of microseconds.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build(connector);
        Self { client }
    }

    /// `true` when `GET uri` answers 200 within `timeout`. Never fails: anything else
    /// (refused, timed out, another status) is "not ready yet".
    pub async fn check(&self, uri: &Uri, timeout: Duration) -> bool {
        let request = async {
            let request = hyper::Request::get(uri.clone())
                .header(hyper::header::CONNECTION, "close")
                .body(Empty::<Bytes>::new())
                .ok()?;
            let response = self.client.request(request).await.ok()?;
            let ok = response.status() == StatusCode::OK;
            response.into_body().collect().await.ok()?;
            Some(ok)
        };
        matches!(tokio::time::timeout(timeout, request).await, Ok(Some(true)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn serve_status(status: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn only_200_is_ready() {
        let probe = ReadinessProbe::new();
        let ok = serve_status("200 OK").await;
        let loading = serve_status("503 Service Unavailable").await;
        let uri = |port: u16| format!("http://127.0.0.1:{port}/health").parse().unwrap();
        assert!(probe.check(&uri(ok), Duration::from_secs(2)).await);
        assert!(!probe.check(&uri(loading), Duration::from_secs(2)).await);
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        assert!(!probe.check(&uri(closed), Duration::from_secs(2)).await);
    }

    /// A keep-alive server that writes headers and body apart (as Python's `http.server`
    /// does): every check must come on a connection of its own, so that no reply waits for a
    /// delayed ACK on a reused one. Counts the connections it accepted.
    async fn serve_keepalive_in_two_writes() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let mut close = false;
                    while !close {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                close = String::from_utf8_lossy(&buf[..n]).to_lowercase().contains("connection: close")
                            }
                        }
                        let head = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n";
                        if socket.write_all(head.as_bytes()).await.is_err() || socket.write_all(b"ok").await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, accepted)
    }

    #[tokio::test]
    async fn every_check_uses_a_connection_of_its_own() {
        let (port, accepted) = serve_keepalive_in_two_writes().await;
        let uri: Uri = format!("http://127.0.0.1:{port}/health").parse().unwrap();
        let probe = ReadinessProbe::new();
        for _ in 0..5 {
            assert!(probe.check(&uri, Duration::from_secs(2)).await);
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 5, "no connection was reused");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _keep = tokio::spawn(async move {
            let _held = listener.accept().await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let uri = format!("http://127.0.0.1:{port}/health").parse().unwrap();
        let started = std::time::Instant::now();
        assert!(!ReadinessProbe::new().check(&uri, Duration::from_millis(200)).await);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
