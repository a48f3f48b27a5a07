//! Request activity: one record per proxied request, made off the request's path.
//!
//! The [`layer`] around the inference routes gives each request a [`RequestTrack`] (in the
//! request's extensions, where authentication and the proxy fill in what they learn), lists it
//! as in flight, and watches its answer pass ([`usage::UsageTap`]). When the answer ends, the
//! request's record goes into a bounded queue; the [`recorder`] task reads its tokens, counts
//! it in the metrics, publishes it and writes it in batches. A full queue drops the record and
//! counts it: a request never waits for the recorder.

pub mod layer;
pub mod recorder;
pub mod track;
pub mod usage;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use llamactl_core::db::{ActivityRecord, ActivityStore, DbError};
use tokio::sync::{broadcast, mpsc};

use recorder::{Finished, Retention};
pub use track::{RequestTrack, Stage};

use crate::config::ActivityConfig;

/// The recorder's handle: request ids, the in-flight list, the queue into the recorder and the
/// stream of finished records. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Activity {
    next_id: AtomicI64,
    inflight: Mutex<HashMap<i64, Arc<RequestTrack>>>,
    queue: mpsc::Sender<Finished>,
    events: broadcast::Sender<Arc<ActivityRecord>>,
    dropped: AtomicU64,
    dropped_metric: metrics::Counter,
}

impl Activity {
    /// Starts the recorder's task writing into `store`; ids continue after the largest stored.
    pub async fn start(store: Arc<dyn ActivityStore>, config: &ActivityConfig) -> Result<Arc<Self>, DbError> {
        let last_id = store.max_activity_id().await?;
        let (queue, receiver) = mpsc::channel(config.queue_size.max(1));
        let (events, _) = broadcast::channel(1024);
        let retention = Retention {
            max_rows: config.max_rows,
            max_age: Duration::from_secs(config.max_age_hours.saturating_mul(3600)),
        };
        tokio::spawn(recorder::run(store, receiver, events.clone(), retention));
        Ok(Arc::new(Self {
            next_id: AtomicI64::new(last_id + 1),
            inflight: Mutex::new(HashMap::new()),
            queue,
            events,
            dropped: AtomicU64::new(0),
            dropped_metric: metrics::counter!(recorder::DROPPED),
        }))
    }

    /// A new request to `path` from `client`, listed in flight.
    pub fn begin(&self, path: String, client: Option<String>) -> Arc<RequestTrack> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let track = Arc::new(RequestTrack::new(id, path, client));
        self.list().insert(id, track.clone());
        track
    }

    fn list(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<RequestTrack>>> {
        self.inflight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the request off the in-flight list and hands its record to the recorder (or
    /// drops it, counted, if the recorder's queue is full).
    pub fn finish(&self, id: i64, finished: Finished) {
        self.list().remove(&id);
        if self.queue.try_send(finished).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.dropped_metric.increment(1);
        }
    }

    /// Requests in flight now, oldest first.
    pub fn in_flight(&self) -> Vec<Arc<RequestTrack>> {
        let mut list: Vec<Arc<RequestTrack>> = self.list().values().cloned().collect();
        list.sort_by_key(|t| t.id);
        list
    }

    /// Cancels request `id`; false if it is not in flight.
    pub fn cancel(&self, id: i64) -> bool {
        let track = self.list().get(&id).cloned();
        track.map(|t| t.cancel()).is_some()
    }

    /// Finished records as they are read (before they are written).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ActivityRecord>> {
        self.events.subscribe()
    }

    /// Records dropped since the start because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
