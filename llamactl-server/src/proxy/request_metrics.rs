//! The proxy's request metrics, with their handles kept per instance.
//!
//! `metrics::counter!` with labels builds and hashes an owned key and looks it up in the
//! recorder's registry at every call; the handles found once per instance (and status) are
//! kept here instead, so a proxied request records its metrics without allocating. Each series
//! is still registered when it is first recorded, as before: nothing appears in `/metrics`
//! earlier.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

/// Requests answered by a backend, by `instance` and `status`.
pub const REQUESTS: &str = "llamactl_proxy_requests_total";
/// Time from forwarding a request to the end (or drop) of its answer, by `instance`.
pub const DURATION: &str = "llamactl_proxy_request_duration_seconds";
/// Requests the backend did not answer, by `instance`.
pub const ERRORS: &str = "llamactl_proxy_errors_total";

/// The metric handles of one instance.
#[derive(Debug)]
pub struct InstanceMetrics {
    instance: String,
    duration: OnceLock<metrics::Histogram>,
    requests: Mutex<Vec<(u16, metrics::Counter)>>,
}

impl InstanceMetrics {
    fn new(instance: &str) -> Self {
        Self { instance: instance.to_owned(), duration: OnceLock::new(), requests: Mutex::new(Vec::new()) }
    }

    /// The instance.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Records one answered request: its status and how long it took.
    pub fn answered(&self, status: u16, took: Duration) {
        self.requests_with(status).increment(1);
        self.duration
            .get_or_init(|| metrics::histogram!(DURATION, "instance" => self.instance.clone()))
            .record(took.as_secs_f64());
    }

    /// Records a request the backend did not answer.
    pub fn unanswered(&self) {
        metrics::counter!(ERRORS, "instance" => self.instance.clone()).increment(1);
    }

    fn requests_with(&self, status: u16) -> metrics::Counter {
        let mut counters = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, counter)) = counters.iter().find(|(s, _)| *s == status) {
            return counter.clone();
        }
        let labels = [("instance", self.instance.clone()), ("status", status.to_string())];
        let counter = metrics::counter!(REQUESTS, &labels);
        counters.push((status, counter.clone()));
        counter
    }
}

/// Every instance's handles, made on an instance's first request.
#[derive(Debug, Default)]
pub struct ProxyMetrics {
    instances: RwLock<HashMap<String, Arc<InstanceMetrics>>>,
}

impl ProxyMetrics {
    /// The handles of `instance`.
    pub fn of(&self, instance: &str) -> Arc<InstanceMetrics> {
        if let Some(found) = self.instances.read().unwrap_or_else(PoisonError::into_inner).get(instance) {
            return found.clone();
        }
        let mut instances = self.instances.write().unwrap_or_else(PoisonError::into_inner);
        instances.entry(instance.to_owned()).or_insert_with(|| Arc::new(InstanceMetrics::new(instance))).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_made_once_per_instance_and_status() {
        let metrics = ProxyMetrics::default();
        let a = metrics.of("a");
        assert!(Arc::ptr_eq(&a, &metrics.of("a")));
        assert!(!Arc::ptr_eq(&a, &metrics.of("b")));
        a.answered(200, Duration::from_millis(1));
        a.answered(200, Duration::from_millis(1));
        a.answered(503, Duration::from_millis(1));
        let statuses: Vec<u16> = a.requests.lock().unwrap().iter().map(|(s, _)| *s).collect();
        assert_eq!(statuses, [200, 503]);
        assert_eq!(a.instance(), "a");
    }
}
