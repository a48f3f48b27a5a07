//! `activity.*` and `resource_history.*`: what the server records of requests and of the
//! resources it and its instances use, and how long it keeps it (llamactl's own sections; the
//! Go llamactl records neither).

use serde::{Deserialize, Serialize};

/// `activity.*`: one record per proxied request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActivityConfig {
    /// Record proxied requests.
    pub enabled: bool,
    /// Most records kept (the oldest go first).
    pub max_rows: u64,
    /// Records older than this many hours are removed.
    pub max_age_hours: u64,
    /// Records waiting to be written; past this, new records are dropped and counted
    /// (`llamactl_activity_dropped_total`): requests never wait for the recorder.
    pub queue_size: usize,
}

impl Default for ActivityConfig {
    fn default() -> Self {
        Self { enabled: true, max_rows: 100_000, max_age_hours: 7 * 24, queue_size: 10_000 }
    }
}

/// `resource_history.*`: samples of the host's and each running instance's CPU and memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceHistoryConfig {
    /// Take samples.
    pub enabled: bool,
    /// Seconds between samples.
    pub interval_seconds: u64,
    /// Samples older than this many hours are removed.
    pub max_age_hours: u64,
}

impl Default for ResourceHistoryConfig {
    fn default() -> Self {
        Self { enabled: true, interval_seconds: 10, max_age_hours: 24 }
    }
}
