//! The middleware around the inference routes that records each request: it outlives
//! authentication (so a 401 is recorded too), ends a request cancelled through the API, and
//! wraps the answer's body to see its bytes pass.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use llamactl_core::db::ActivityOutcome;

use super::Activity;
use super::recorder::Finished;
use super::track::{RequestTrack, Stage};
use super::usage::UsageTap;
use crate::api::error::{ApiError, ErrorText};
use crate::state::AppState;

/// The status recorded for a request whose client went away before any answer.
const CLIENT_GONE: u16 = 499;

/// Records the request (see the module's documentation).
pub async fn record(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(activity) = state.activity.clone() else { return next.run(request).await };
    let client = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let track = activity.begin(request.uri().path().to_owned(), client);
    request.extensions_mut().insert(track.clone());
    // Until there is an answer, a dropped handler (the client went away) is recorded here.
    let mut unanswered = Unanswered { activity: Some(activity), track: track.clone() };
    let (response, answers_cancel) = tokio::select! {
        response = next.run(request) => (response, false),
        () = track.cancelled() => (cancelled_answer(), true),
    };
    let Some(activity) = unanswered.activity.take() else { return response };
    let (mut parts, inner) = response.into_parts();
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let tap = UsageTap::for_content_type(content_type);
    if tap.is_stream() {
        track.set_stage(Stage::Streaming);
    }
    let refusal = parts.extensions.remove::<ErrorText>();
    let body = RecordedBody {
        inner,
        status: parts.status.as_u16(),
        refusal,
        tap,
        first_byte: None,
        last_byte: None,
        end: End::Open,
        answers_cancel,
        track,
        activity,
    };
    Response::from_parts(parts, Body::new(body))
}

fn cancelled_answer() -> Response {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "cancelled", "the request was cancelled through the API")
        .into_response()
}

/// A request whose handler has not answered yet.
struct Unanswered {
    activity: Option<Arc<Activity>>,
    track: Arc<RequestTrack>,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(activity) = self.activity.take() {
            let mut record = self.track.record();
            record.status = CLIENT_GONE;
            record.duration_ms = millis(self.track.started.elapsed());
            record.outcome = ActivityOutcome::Cancelled;
            record.error = Some("the client went away before the answer".into());
            activity.finish(self.track.id, Finished { record, tap: None, streaming_for: None });
        }
    }
}

/// How an answer's body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// Not yet (if it is dropped now, the client went away).
    Open,
    /// The whole body went out.
    Complete,
    /// Cancelled through the API.
    Cancelled,
    /// The backend's answer broke off.
    Broken(String),
}

/// The answer's body, seen on its way to the client; the request's record is handed to the
/// recorder when it is dropped.
struct RecordedBody {
    inner: Body,
    status: u16,
    /// The error text of an answer made by llamactl itself (a refusal, an unreachable backend).
    refusal: Option<ErrorText>,
    tap: UsageTap,
    first_byte: Option<Instant>,
    last_byte: Option<Instant>,
    end: End,
    /// This is the answer to a cancellation (sent whole).
    answers_cancel: bool,
    track: Arc<RequestTrack>,
    activity: Arc<Activity>,
}

impl RecordedBody {
    fn cancel(&mut self) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.end = End::Cancelled;
        // Dropping the backend's body closes its connection: the backend stops generating.
        self.inner = Body::empty();
        Poll::Ready(None)
    }
}

impl hyper::body::Body for RecordedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if this.end != End::Open {
            return Poll::Ready(None);
        }
        if this.track.is_cancelled() && !this.answers_cancel {
            return this.cancel();
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let now = Instant::now();
                    this.first_byte.get_or_insert(now);
                    this.last_byte = Some(now);
                    this.track.sent(data.len());
                    this.tap.observe(data);
                }
            }
            Poll::Ready(Some(Err(error))) => this.end = End::Broken(error.to_string()),
            Poll::Ready(None) => this.end = End::Complete,
            Poll::Pending => {
                this.track.body_waker.register(cx.waker());
                if this.track.is_cancelled() && !this.answers_cancel {
                    return this.cancel();
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.end != End::Open || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for RecordedBody {
    fn drop(&mut self) {
        let started = self.track.started;
        let mut record = self.track.record();
        record.status = self.status;
        record.duration_ms = millis(started.elapsed());
        record.ttfb_ms = self.first_byte.map(|at| millis(at - started));
        record.streamed = self.tap.is_stream();
        // hyper stops polling a body of known length after its last byte.
        if self.end == End::Open && hyper::body::Body::is_end_stream(&self.inner) {
            self.end = End::Complete;
        }
        if self.track.is_cancelled() {
            self.end = End::Cancelled;
        }
        (record.outcome, record.error) = match (&self.end, &self.refusal) {
            (End::Complete, None) => (ActivityOutcome::Completed, None),
            (End::Complete, Some(ErrorText(text))) => (ActivityOutcome::Error, Some(text.clone())),
            (End::Cancelled, _) => (ActivityOutcome::Cancelled, Some("cancelled through the API".to_owned())),
            (End::Open, _) => (ActivityOutcome::Cancelled, Some("the client went away during the answer".to_owned())),
            (End::Broken(error), _) => (ActivityOutcome::Error, Some(format!("the answer broke off: {error}"))),
        };
        let streaming_for = match (self.first_byte, self.last_byte) {
            (Some(first), Some(last)) if record.streamed => Some(last - first),
            _ => None,
        };
        let tap = std::mem::replace(&mut self.tap, UsageTap::for_content_type(""));
        self.activity.finish(self.track.id, Finished { record, tap: Some(tap), streaming_for });
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
