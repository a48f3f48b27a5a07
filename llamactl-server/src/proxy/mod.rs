//! The reverse proxy in front of the backends: forwards a request to a ready instance and
//! streams the answer back chunk by chunk, holding the instance's lease (so it counts as busy)
//! until the last byte — or until the client goes away, which drops the upstream request too.

mod holding_body;
pub mod model_field;
pub mod model_route;
pub mod native;
pub mod openai;
pub mod router_compat;
pub use holding_body::hold;
mod quick_ack;
mod request_metrics;
mod upstream;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Request, Response, Uri};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use llamactl_core::manager::{ColdStartQueue, Lease, LeaseRequest, Rights};
use llamactl_core::{BackendType, InstanceStatus, Manager, ManagerError};

use crate::activity::{RequestTrack, Stage};
use crate::api::error::ApiError;
use quick_ack::{AckRequest, QuickAckConnector};
use request_metrics::{InstanceMetrics, ProxyMetrics};
use upstream::{Authorities, upstream_uri};

/// Headers that belong to one connection and are never forwarded.
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];
/// The manager's own credentials, never sent to a backend.
static CREDENTIALS: [HeaderName; 2] = [header::AUTHORIZATION, HeaderName::from_static("x-api-key")];

/// Proxy settings and state shared by every request.
#[derive(Debug)]
pub struct Proxy {
    client: Client<QuickAckConnector, Body>,
    queue: ColdStartQueue,
    on_demand_timeout: Duration,
    max_body: usize,
    response_headers: HashMap<BackendType, Vec<(HeaderName, HeaderValue)>>,
    metrics: ProxyMetrics,
    authorities: Authorities,
}

impl Proxy {
    /// A proxy with a cold-start queue of `queue_size` waiters per instance, each waiting at
    /// most `on_demand_timeout`, and request bodies of at most `max_body` bytes.
    pub fn new(
        queue_size: usize,
        on_demand_timeout: Duration,
        max_body: usize,
        response_headers: HashMap<BackendType, Vec<(HeaderName, HeaderValue)>>,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(QuickAckConnector::new(connector));
        Self {
            client,
            queue: ColdStartQueue::new(queue_size),
            on_demand_timeout,
            max_body,
            response_headers,
            metrics: ProxyMetrics::default(),
            authorities: Authorities::default(),
        }
    }

    /// A plain `GET` through the proxy's connection pool (for small management calls to
    /// backends, such as a router instance's model list).
    pub async fn get(&self, uri: Uri) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        let request = Request::get(uri).body(Body::empty()).unwrap_or_default();
        self.client.request(request).await
    }

    /// A JSON `POST` through the proxy's connection pool.
    pub async fn post_json(
        &self,
        uri: Uri,
        body: &serde_json::Value,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        let request = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap_or_default();
        self.client.request(request).await
    }

    /// How long a request waits for its instance (or a router's model) to be ready.
    pub fn on_demand_timeout(&self) -> Duration {
        self.on_demand_timeout
    }

    /// Largest request body accepted.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// The cold-start queue requests wait in while their instance starts.
    pub fn queue(&self) -> &ColdStartQueue {
        &self.queue
    }

    /// A lease on a ready `instance` for a caller with `rights`: at once if it is ready;
    /// otherwise the request waits in the instance's bounded queue while it starts (if the
    /// rights allow), up to the on-demand timeout. One manager call.
    ///
    /// `track` (the request's activity, if recorded) learns the instance, the queue wait and
    /// the request's place in the queue (its id is the queue ticket).
    pub async fn acquire(
        &self,
        manager: &Manager,
        instance: &str,
        rights: Rights,
        track: Option<&RequestTrack>,
    ) -> Result<Lease, ApiError> {
        let mut request = LeaseRequest::within(self.on_demand_timeout).with_rights(rights).in_queue(&self.queue);
        if let Some(track) = track {
            request = request.with_ticket(track.id as u64);
            track.set_stage(Stage::Acquiring);
        }
        let acquired = manager.acquire(instance, request).await;
        if let Some(track) = track {
            let waited = acquired.as_ref().ok().and_then(Lease::waited).or(match &acquired {
                Err(ManagerError::Timeout { waited, .. }) => Some(*waited),
                _ => None,
            });
            track.update(|d| d.queued = waited.or(d.queued));
            track.set_stage(Stage::Forwarding);
        }
        match acquired {
            Ok(lease) => {
                if let Some(waited) = lease.waited() {
                    record_cold_start_wait(instance, waited);
                }
                Ok(lease)
            }
            Err(error) => {
                if let ManagerError::Timeout { waited, .. } = &error {
                    record_cold_start_wait(instance, *waited);
                }
                // A program that cannot be run says what to set, as a start over the API does.
                let remedy = crate::config::start_failure_remedy(manager, instance, &error);
                let mut answer = ApiError::from(error);
                if let Some(remedy) = remedy {
                    answer.details = remedy;
                }
                Err(answer)
            }
        }
    }

    /// Leases `instance` ([`acquire`](Self::acquire)) and forwards a request whose body is in
    /// memory, made for the lease it goes to by `body_for` (the `model` a backend insists on
    /// is the leased run's). A backend that dies before answering (killed, crashed) is
    /// restarted by its policy or on demand: the request waits for that once and is sent
    /// again (an inference request has no effect beyond its answer). A second failure is a
    /// 503 with Retry-After.
    pub async fn send_resending(
        &self,
        manager: &Manager,
        instance: &str,
        rights: Rights,
        parts: axum::http::request::Parts,
        body_for: impl Fn(&Lease) -> Bytes,
    ) -> Result<Response<Body>, ApiError> {
        let mut resent = false;
        let track = parts.extensions.get::<Arc<RequestTrack>>().cloned();
        loop {
            let lease = self.acquire(manager, instance, rights, track.as_deref()).await?;
            let attempt = lease.attempt();
            let body = body_for(&lease);
            let mut parts = parts.clone();
            parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            let request = Request::from_parts(parts, Body::from(body));
            match self.forward(lease, request).await {
                Err(error) if error.code == BACKEND_UNREACHABLE && !resent => {
                    resent = true;
                    // Until the manager has seen the run end (or a new one begin), a new lease
                    // would be on the same dead backend.
                    if let Ok(mut watch) = manager.subscribe(instance) {
                        let noticed =
                            watch.wait_for(|s| s.attempt != attempt || s.runtime.status != InstanceStatus::Running);
                        let _ = tokio::time::timeout(RUN_END_NOTICE, noticed).await;
                    }
                }
                other => return other,
            }
        }
    }

    /// Sends `request` (its path and query already those of the backend, credentials still in
    /// it) to the leased backend and streams the response back.
    pub async fn forward(&self, lease: Lease, mut request: Request<Body>) -> Result<Response<Body>, ApiError> {
        let started = Instant::now();
        let metrics = self.metrics.of(lease.name().as_str());
        let bad_uri = |e: String| ApiError::internal(format!("bad upstream URI: {e}"));
        let authority = self.authorities.of(lease.listen()).map_err(|e| bad_uri(e.to_string()))?;
        *request.uri_mut() = upstream_uri(authority, request.uri()).map_err(bad_uri)?;
        clean_request_headers(request.headers_mut());
        let response = self.client.request(request).await.map_err(|error| {
            metrics.unanswered();
            // The backend died or stopped before answering: its restart (by policy or on
            // demand) is the manager's business, the client only has to come back.
            ApiError::unavailable(
                BACKEND_UNREACHABLE,
                format!("instance {} did not answer: {error}", metrics.instance()),
                Duration::from_secs(1),
            )
        })?;
        let (mut parts, body) = response.into_parts();
        let ack = parts.extensions.remove::<AckRequest>();
        clean_response_headers(&mut parts.headers);
        // Tell reverse proxies in front of us not to buffer (streamed completions).
        parts.headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        if let Some(extra) = lease.backend().and_then(|backend| self.response_headers.get(&backend)) {
            for (name, value) in extra {
                parts.headers.insert(name.clone(), value.clone());
            }
        }
        let status = parts.status.as_u16();
        let body = LeasedBody { inner: body, _lease: lease, ack, metrics, status, started };
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}

fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect()
}

fn clean_request_headers(headers: &mut HeaderMap) {
    for name in connection_listed(headers) {
        headers.remove(name);
    }
    for name in HOP_BY_HOP.iter().chain(&CREDENTIALS) {
        headers.remove(name);
    }
    headers.remove(header::HOST);
}

fn clean_response_headers(headers: &mut HeaderMap) {
    for name in connection_listed(headers) {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// A backend's response body that holds the instance's lease until it is finished or dropped,
/// and records the request's metrics when it ends. While it has to wait for the backend, it
/// asks the backend connection to acknowledge what it received (see [`quick_ack`]).
struct LeasedBody {
    inner: Incoming,
    _lease: Lease,
    ack: Option<AckRequest>,
    metrics: Arc<InstanceMetrics>,
    status: u16,
    started: Instant,
}

impl hyper::body::Body for LeasedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if polled.is_pending()
            && let Some(ack) = &self.ack
        {
            ack.acknowledge();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LeasedBody {
    fn drop(&mut self) {
        self.metrics.answered(self.status, self.started.elapsed());
    }
}

fn record_cold_start_wait(instance: &str, waited: Duration) {
    metrics::histogram!("llamactl_cold_start_wait_seconds", "instance" => instance.to_owned())
        .record(waited.as_secs_f64());
}

/// How long a resent request waits for the manager to notice that the backend's run ended.
const RUN_END_NOTICE: Duration = Duration::from_secs(2);

/// The code of a request the backend did not answer (503 with Retry-After).
const BACKEND_UNREACHABLE: &str = "backend_unreachable";

/// Shared across handlers.
pub type SharedProxy = Arc<Proxy>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_hop_by_hop_headers_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer k"));
        headers.insert("x-api-key", HeaderValue::from_static("k"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-private"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::HOST, HeaderValue::from_static("manager"));
        clean_request_headers(&mut headers);
        let names: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["content-type"]);
    }
}
