//! One proxied request while it is in flight: what is known of it so far (filled in by the
//! authentication, the proxy and the answer's body as they learn it), and its cancellation.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::task::AtomicWaker;
use llamactl_api::activity::InflightState;
use llamactl_core::db::ActivityRecord;
use tokio::sync::Notify;

/// Where the request is (see [`InflightState`]; `Acquiring` shows as `queued` while the
/// request has a place in the cold-start queue, else as `receiving`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    /// Being read and authenticated.
    Receiving = 0,
    /// Waiting for a lease on its instance.
    Acquiring = 1,
    /// Sent to the backend.
    Forwarding = 2,
    /// Its event stream is passing.
    Streaming = 3,
}

impl Stage {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Acquiring,
            2 => Self::Forwarding,
            3 => Self::Streaming,
            _ => Self::Receiving,
        }
    }

    /// The state shown, given whether the request waits in the cold-start queue.
    pub fn shown(self, in_queue: bool) -> InflightState {
        match self {
            Self::Acquiring if in_queue => InflightState::Queued,
            Self::Receiving | Self::Acquiring => InflightState::Receiving,
            Self::Forwarding => InflightState::Forwarding,
            Self::Streaming => InflightState::Streaming,
        }
    }
}

/// What is learnt of a request after it arrived.
#[derive(Debug, Default, Clone)]
pub struct Details {
    /// Its instance.
    pub instance: Option<String>,
    /// Its model.
    pub model: Option<String>,
    /// Its key's id.
    pub key_id: Option<i64>,
    /// Its key's name.
    pub key_name: Option<String>,
    /// Time it waited for its instance to start.
    pub queued: Option<Duration>,
}

/// A request in flight. Shared (`Arc`) by the recorder's layer, the proxy and the in-flight
/// list; every field can be read while others write.
#[derive(Debug)]
pub struct RequestTrack {
    /// Its id (its record's id).
    pub id: i64,
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// The same, on the monotonic clock.
    pub started: Instant,
    /// Its path.
    pub path: String,
    /// The client's address.
    pub client: Option<String>,
    details: Mutex<Details>,
    stage: AtomicU8,
    bytes_sent: AtomicU64,
    cancelled: AtomicBool,
    /// Wakes the handler while it waits (queued, or for the backend's first answer).
    cancel_notify: Notify,
    /// Wakes the answer's body while it waits for the backend.
    pub(super) body_waker: AtomicWaker,
}

impl RequestTrack {
    /// A request `id` to `path` from `client`, arriving now.
    pub fn new(id: i64, path: String, client: Option<String>) -> Self {
        Self {
            id,
            at: Utc::now(),
            started: Instant::now(),
            path,
            client,
            details: Mutex::new(Details::default()),
            stage: AtomicU8::new(Stage::Receiving as u8),
            bytes_sent: AtomicU64::new(0),
            cancelled: AtomicBool::new(false),
            cancel_notify: Notify::new(),
            body_waker: AtomicWaker::new(),
        }
    }

    /// Changes what is known.
    pub fn update(&self, change: impl FnOnce(&mut Details)) {
        change(&mut self.details.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// What is known now.
    pub fn details(&self) -> Details {
        self.details.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Moves it to `stage`.
    pub fn set_stage(&self, stage: Stage) {
        self.stage.store(stage as u8, Ordering::Relaxed);
    }

    /// Where it is.
    pub fn stage(&self) -> Stage {
        Stage::from_u8(self.stage.load(Ordering::Relaxed))
    }

    /// Counts `n` bytes sent to the client.
    pub fn sent(&self, n: usize) {
        self.bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Bytes sent to the client so far.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    /// Ends the request: its handler stops waiting and its answer's stream ends.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.cancel_notify.notify_waiters();
        self.body_waker.wake();
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Completes once the request is cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.cancel_notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// Its record so far (status, duration and outcome still to be set).
    pub fn record(&self) -> ActivityRecord {
        let details = self.details();
        let mut record = ActivityRecord::new(self.id, self.at, self.path.clone());
        record.instance = details.instance;
        record.model = details.model;
        record.key_id = details.key_id;
        record.key_name = details.key_name;
        record.client = self.client.clone();
        record.queue_ms = details.queued.map(|d| d.as_secs_f64() * 1000.0);
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_request_shows_as_queued_only_with_a_place() {
        assert_eq!(Stage::Acquiring.shown(true), InflightState::Queued);
        assert_eq!(Stage::Acquiring.shown(false), InflightState::Receiving);
        assert_eq!(Stage::Streaming.shown(false), InflightState::Streaming);
        for stage in [Stage::Receiving, Stage::Acquiring, Stage::Forwarding, Stage::Streaming] {
            assert_eq!(Stage::from_u8(stage as u8), stage);
        }
    }

    #[tokio::test]
    async fn cancelling_wakes_a_waiter_that_started_before_or_after() {
        let track = std::sync::Arc::new(RequestTrack::new(1, "/v1/x".into(), None));
        let waiter = tokio::spawn({
            let track = track.clone();
            async move { track.cancelled().await }
        });
        tokio::task::yield_now().await;
        track.cancel();
        tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
        tokio::time::timeout(Duration::from_secs(1), track.cancelled()).await.unwrap();
    }

    #[test]
    fn the_record_carries_what_was_learnt() {
        let track = RequestTrack::new(9, "/v1/chat/completions".into(), Some("127.0.0.1".into()));
        track.update(|d| {
            d.instance = Some("tiny".into());
            d.key_name = Some("ci".into());
            d.queued = Some(Duration::from_millis(1500));
        });
        let record = track.record();
        assert_eq!((record.id, record.instance.as_deref(), record.key_name.as_deref()), (9, Some("tiny"), Some("ci")));
        assert_eq!((record.queue_ms, record.client.as_deref()), (Some(1500.0), Some("127.0.0.1")));
    }
}
