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
    /// A probe with its own connection pool.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(1)
            .build(connector);
        Self { client }
    }

    /// Whether `uri` answers 200 within `timeout` (any error, other status or timeout: no).
    pub async fn check(&self, uri: &Uri, timeout: Duration) -> bool {
        let request = async {
            let response = self.client.get(uri.clone()).await.ok()?;
            let ok = response.status() == StatusCode::OK;
            // Read the (small) body so the connection can be reused for the next probe.
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
