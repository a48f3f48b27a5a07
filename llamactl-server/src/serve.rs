//! Serving HTTP/1.1 connections with limits: a cap on open connections, a header size limit,
//! a header-read timeout, an idle keep-alive timeout, and graceful shutdown.
//!
//! Each connection is one task that drives hyper's HTTP/1 connection and watches it:
//! - *Waiting for a head*: from the accept for the first request, from the first byte of the
//!   head for a later one. If the head is not complete within `header_read_timeout`, the
//!   connection is closed.
//! - *Idle*: nothing in flight since the last response's body ended. After
//!   `keep_alive_timeout` it is closed.
//! - *In flight*: from hyper handing the request over until its response body has been sent
//!   (or dropped). No timeout applies: a streamed response runs as long as it streams.
//!
//! A head whose remaining bytes arrived together with the previous request (pipelining) is
//! parsed from hyper's buffer without a read, so it is timed as idle, not as a head.
//!
//! Over `max_connections` a new connection gets a `503` with `Retry-After: 1` and is closed at
//! once (not queued): the client can tell and retry, and a flood of connections holds no more
//! than the cap. One warning is logged per ten seconds while connections are refused, and
//! `llamactl_connections_refused_total` counts them.
//!
//! On shutdown the listener is closed, connections with nothing in flight (idle, or still
//! sending a head) are closed at once, connections with a request in flight are closed when it
//! has been answered, and [`serve`] returns when none is left.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::ServerConfig;

/// Connections refused because `server.max_connections` were open.
pub const REFUSED_METRIC: &str = "llamactl_connections_refused_total";
/// Connections open now.
pub const OPEN_METRIC: &str = "llamactl_connections_open";
/// Connections closed by the server for a timeout, by `reason` (`header_read`, `keep_alive`).
pub const TIMED_OUT_METRIC: &str = "llamactl_connections_timed_out_total";

/// At most one "connections refused" warning this often.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What is sent to a connection over the cap before it is closed: a 503 in the API's error
/// form.
fn refusal() -> &'static [u8] {
    static REFUSAL: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    REFUSAL.get_or_init(|| {
        let body = r#"{"error":"too_many_connections","details":"the server's connection limit is reached; retry later"}"#;
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    })
}

/// The limits connections are served with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Longest wait for a complete request head.
    pub header_read_timeout: Duration,
    /// Longest wait with no request in flight.
    pub keep_alive_timeout: Duration,
    /// Largest request head, bytes.
    pub max_header_bytes: usize,
}

impl Limits {
    /// The limits of `server.*`.
    pub fn of(config: &ServerConfig) -> Self {
        Self {
            max_connections: config.max_connections,
            header_read_timeout: Duration::from_secs(config.header_read_timeout_seconds),
            keep_alive_timeout: Duration::from_secs(config.keep_alive_timeout_seconds),
            max_header_bytes: config.max_header_bytes,
        }
    }
}

/// Serves `router` on `listener` until `stop` is cancelled, then shuts down gracefully: stops
/// accepting and returns once every connection has finished what it had in flight.
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, stop: CancellationToken) {
    let mut http = hyper::server::conn::http1::Builder::new();
    // The timeouts are this module's (hyper's own header timer also runs while a kept-alive
    // connection idles, which would make it a second idle timeout).
    http.header_read_timeout(None).max_header_size(limits.max_header_bytes);
    let http = Arc::new(http);
    warn_if_descriptors_run_out_first(limits.max_connections);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let mut refusals = RefusalLog::default();
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error, &stop).await;
                    continue;
                }
            },
        };
        // Small writes (a streamed answer's chunks) go out at once instead of waiting for the
        // client's ACK of the previous one.
        let _ = stream.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refuse(&stream);
            drop(stream);
            refusals.refused(limits.max_connections);
            continue;
        };
        let (router, http, stop) = (router.clone(), http.clone(), stop.clone());
        connections.spawn(async move {
            metrics::gauge!(OPEN_METRIC).increment(1.0);
            connection(stream, peer, router, &http, limits, stop).await;
            metrics::gauge!(OPEN_METRIC).decrement(1.0);
            drop(slot);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// File descriptors the server needs besides its clients' connections (database, logs,
/// backends' pipes and connections), roughly.
const DESCRIPTORS_BESIDES_CONNECTIONS: u64 = 256;

/// Warns when the process's open-file limit would stop accepting before `max_connections`
/// are open (accepting then fails and pauses, instead of refusing with a 503).
fn warn_if_descriptors_run_out_first(max_connections: usize) {
    let Some(limit) = open_file_limit() else { return };
    let needed = max_connections as u64 + DESCRIPTORS_BESIDES_CONNECTIONS;
    if limit < needed {
        tracing::warn!(
            open_file_limit = limit,
            max_connections,
            "the open-file limit ({limit}) is below server.max_connections ({max_connections}) plus {DESCRIPTORS_BESIDES_CONNECTIONS} for the rest: raise it (ulimit -n, LimitNOFILE=) or lower server.max_connections"
        );
    }
}

/// The soft limit on open files, from `/proc/self/limits` (None if unknown or unlimited).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files").split_whitespace().next()?.parse().ok()
}

/// An accept that failed: a connection that went away before it was accepted is nothing; any
/// other error (out of file descriptors, most often) is logged and accepting pauses a second.
async fn accept_failed(error: &io::Error, stop: &CancellationToken) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(%error, "cannot accept a connection; retrying in 1 s");
    tokio::select! {
        () = stop.cancelled() => {}
        () = tokio::time::sleep(Duration::from_secs(1)) => {}
    }
}

/// Answers a connection over the cap with a 503, without waiting: a fresh socket's send
/// buffer is empty, so the answer is written whole or (very rarely) not at all, and the
/// client then sees the connection closed.
fn refuse(stream: &TcpStream) {
    metrics::counter!(REFUSED_METRIC).increment(1);
    let _ = stream.try_write(refusal());
}

/// Warnings about refused connections, at most one per [`REFUSAL_LOG_INTERVAL`].
#[derive(Debug, Default)]
struct RefusalLog {
    last: Option<Instant>,
    unreported: u64,
}

impl RefusalLog {
    fn refused(&mut self, cap: usize) {
        self.unreported += 1;
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) < REFUSAL_LOG_INTERVAL) {
            return;
        }
        tracing::warn!(
            max_connections = cap,
            refused = self.unreported,
            "connection limit reached: server.max_connections ({cap}) connections are open; new connections are refused with 503 (at most one such warning per {} s)",
            REFUSAL_LOG_INTERVAL.as_secs()
        );
        self.last = Some(now);
        self.unreported = 0;
    }
}

/// Serves one connection until it ends, times out, or has shut down gracefully.
///
/// The timer is not moved at every request: [`Activity`] wakes this task only when a wait
/// begins that must end sooner than the timer is set for (or while none is set). A timer that
/// fires early finds the connection busy or its deadline later, and is set again.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    http: &hyper::server::conn::http1::Builder,
    limits: Limits,
    stop: CancellationToken,
) {
    let activity = Arc::new(Activity::new(limits));
    let io = TokioIo::new(Watched { stream, activity: activity.clone() });
    let conn = http.serve_connection(io, Tracked { router, activity: activity.clone(), peer });
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    let mut armed = activity.arm();
    let timer = tokio::time::sleep_until(armed.unwrap_or_else(Instant::now));
    let mut timer = std::pin::pin!(timer);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = stop.cancelled(), if !stopping => {
                // Nothing in flight (idle, or a head not complete yet): closed now. Else hyper
                // closes it once the response in flight has been sent.
                if activity.deadline().0.is_some() {
                    return;
                }
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = activity.changed.notified() => {}
            () = timer.as_mut(), if armed.is_some() => {
                // The state may have changed since the timer was set: look again.
                let (deadline, waiting_for_head) = activity.deadline();
                if deadline.is_some_and(|d| d <= Instant::now()) {
                    let reason = if waiting_for_head { "header_read" } else { "keep_alive" };
                    metrics::counter!(TIMED_OUT_METRIC, "reason" => reason).increment(1);
                    tracing::debug!(reason, "closing a connection that timed out");
                    return;
                }
            }
        }
        armed = activity.arm();
        if let Some(deadline) = armed
            && timer.deadline() != deadline
        {
            timer.as_mut().reset(deadline);
        }
    }
}

/// What a connection is doing, for its timeouts.
#[derive(Debug)]
struct Activity {
    state: Mutex<ActivityState>,
    /// Wakes the connection's task when a wait starts that must end before its timer fires.
    changed: Notify,
    limits: Limits,
}

#[derive(Debug)]
struct ActivityState {
    /// Requests handed over whose response body has not ended.
    in_flight: usize,
    /// With nothing in flight: whether a head is being received (else the connection idles).
    head_begun: bool,
    /// When the current wait (for a head, or idle) began.
    since: Instant,
    /// When the connection's timer fires (none: it is not set).
    armed: Option<Instant>,
}

impl ActivityState {
    fn deadline(&self, limits: &Limits) -> (Option<Instant>, bool) {
        if self.in_flight > 0 {
            return (None, false);
        }
        let timeout = if self.head_begun { limits.header_read_timeout } else { limits.keep_alive_timeout };
        (Some(self.since + timeout), self.head_begun)
    }

    /// Whether the connection's task must set its timer again now: a wait began that ends
    /// before the timer fires, or no timer is set. (Waits that end later are left to the
    /// timer, which finds the new deadline when it fires.)
    fn must_rearm(&self, ends: Instant) -> bool {
        self.armed.is_none_or(|armed| ends < armed)
    }
}

impl Activity {
    fn new(limits: Limits) -> Self {
        Self {
            state: Mutex::new(ActivityState { in_flight: 0, head_begun: true, since: Instant::now(), armed: None }),
            changed: Notify::new(),
            limits,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When the connection times out if nothing changes (none while a request is in flight),
    /// and whether it is waiting for a head.
    fn deadline(&self) -> (Option<Instant>, bool) {
        self.state().deadline(&self.limits)
    }

    /// The deadline, recorded as the one the connection's timer is set to.
    fn arm(&self) -> Option<Instant> {
        let mut state = self.state();
        state.armed = state.deadline(&self.limits).0;
        state.armed
    }

    /// Bytes arrived.
    fn read(&self) {
        let mut state = self.state();
        if state.in_flight == 0 && !state.head_begun {
            state.head_begun = true;
            state.since = Instant::now();
            let wake = state.must_rearm(state.since + self.limits.header_read_timeout);
            drop(state);
            if wake {
                self.changed.notify_one();
            }
        }
    }

    /// A request was handed over; the guard ends it when dropped.
    fn begin(self: &Arc<Self>) -> InFlight {
        let mut state = self.state();
        state.in_flight += 1;
        state.head_begun = false;
        InFlight(self.clone())
    }
}

/// One request in flight, until its response body is done with.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.head_begun = false;
            state.since = Instant::now();
            let wake = state.must_rearm(state.since + self.0.limits.keep_alive_timeout);
            drop(state);
            if wake {
                self.0.changed.notify_one();
            }
        }
    }
}

/// The connection's socket, telling [`Activity`] when bytes arrive.
#[derive(Debug)]
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The router as hyper's service, marking each request in flight until its response body is
/// done with.
#[derive(Debug, Clone)]
struct Tracked {
    router: Router,
    activity: Arc<Activity>,
    /// The client's address, given to handlers as `ConnectInfo`.
    peer: SocketAddr,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<TrackedBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.begin();
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(axum::extract::ConnectInfo(self.peer));
        let answer = self.router.clone().oneshot(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| TrackedBody { body, _in_flight: in_flight }))
        })
    }
}

/// A response body that keeps its request in flight until it is dropped.
#[derive(Debug)]
struct TrackedBody {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_connections: 1,
        header_read_timeout: Duration::from_secs(10),
        keep_alive_timeout: Duration::from_secs(60),
        max_header_bytes: 65_536,
    };

    #[tokio::test(start_paused = true)]
    async fn the_timeout_follows_what_the_connection_is_doing() {
        let activity = Arc::new(Activity::new(LIMITS));
        let accepted = Instant::now();
        assert_eq!(activity.deadline(), (Some(accepted + LIMITS.header_read_timeout), true), "first head");

        let request = activity.begin();
        tokio::time::advance(Duration::from_secs(600)).await;
        activity.read();
        assert_eq!(activity.deadline(), (None, false), "a request in flight never times out");
        let second = activity.begin();
        drop(request);
        assert_eq!(activity.deadline(), (None, false), "one of two still in flight");
        drop(second);
        let answered = Instant::now();
        assert_eq!(activity.deadline(), (Some(answered + LIMITS.keep_alive_timeout), false), "idle");

        tokio::time::advance(Duration::from_secs(30)).await;
        activity.read();
        let head = Instant::now();
        assert_eq!(activity.deadline(), (Some(head + LIMITS.header_read_timeout), true), "a head began");
        tokio::time::advance(Duration::from_secs(5)).await;
        activity.read();
        assert_eq!(activity.deadline().0, Some(head + LIMITS.header_read_timeout), "counted from its first byte");
    }

    /// Whether the connection's task has been woken (the wake-up is consumed).
    fn woken(activity: &Activity) -> bool {
        futures::FutureExt::now_or_never(activity.changed.notified()).is_some()
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_is_woken_only_for_a_wait_that_ends_before_its_timer() {
        let activity = Arc::new(Activity::new(LIMITS));
        let accepted = Instant::now();
        assert_eq!(activity.arm(), Some(accepted + LIMITS.header_read_timeout));

        // Answered: the idle wait ends after the timer, which finds it when it fires.
        drop(activity.begin());
        assert!(!woken(&activity), "an idle wait ending later");
        tokio::time::advance(Duration::from_secs(1)).await;
        activity.read();
        drop(activity.begin());
        assert!(!woken(&activity), "requests in a row move nothing");

        tokio::time::advance(LIMITS.header_read_timeout).await;
        let idle_since = Instant::now() - LIMITS.header_read_timeout;
        assert_eq!(activity.arm(), Some(idle_since + LIMITS.keep_alive_timeout), "the timer found the idle wait");
        tokio::time::advance(Duration::from_secs(1)).await;
        activity.read();
        assert!(woken(&activity), "a head must arrive before the idle deadline");
        assert_eq!(activity.arm(), Some(Instant::now() + LIMITS.header_read_timeout));

        let request = activity.begin();
        assert_eq!(activity.arm(), None, "no timer while a request is in flight");
        drop(request);
        assert!(woken(&activity), "the end of a request with no timer set");
        assert_eq!(activity.arm(), Some(Instant::now() + LIMITS.keep_alive_timeout));
    }
}
