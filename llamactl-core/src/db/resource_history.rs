//! The resource history: samples of the host's, each running instance's and each GPU's CPU
//! and memory, taken at an interval, read back over a window for charts and pruned by age.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::DbError;

/// What a sample is of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceScope {
    /// The host as a whole.
    Host,
    /// One instance's processes (or its container), by the instance's name.
    Instance(String),
    /// One GPU, by its index.
    Gpu(u32),
}

impl ResourceScope {
    /// The scope's kind as stored: `host`, `instance` or `gpu`.
    ///
    /// ```
    /// use llamactl_core::db::ResourceScope;
    /// assert_eq!(ResourceScope::Gpu(1).kind(), "gpu");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Instance(_) => "instance",
            Self::Gpu(_) => "gpu",
        }
    }

    /// The scope's name as stored: the instance's name, the GPU's index, nothing for the host.
    ///
    /// ```
    /// use llamactl_core::db::ResourceScope;
    /// assert_eq!(ResourceScope::Instance("a".into()).key(), "a");
    /// assert_eq!(ResourceScope::Gpu(3).key(), "3");
    /// assert_eq!(ResourceScope::Host.key(), "");
    /// ```
    pub fn key(&self) -> String {
        match self {
            Self::Host => String::new(),
            Self::Instance(name) => name.clone(),
            Self::Gpu(index) => index.to_string(),
        }
    }

    /// The scope of a stored kind and name (the inverse of [`kind`](Self::kind) and
    /// [`key`](Self::key)); `None` for what no version stores.
    ///
    /// ```
    /// use llamactl_core::db::ResourceScope;
    /// assert_eq!(ResourceScope::from_stored("gpu", "2"), Some(ResourceScope::Gpu(2)));
    /// assert_eq!(ResourceScope::from_stored("disk", "sda"), None);
    /// ```
    pub fn from_stored(kind: &str, key: &str) -> Option<Self> {
        match kind {
            "host" => Some(Self::Host),
            "instance" => Some(Self::Instance(key.to_owned())),
            "gpu" => key.parse().ok().map(Self::Gpu),
            _ => None,
        }
    }
}

/// One sample. What each field holds depends on the scope; a field the scope has no value for
/// (or that could not be read this time) is `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceSample {
    /// When it was taken (stored to the millisecond).
    pub at: DateTime<Utc>,
    /// What it is of.
    pub scope: ResourceScope,
    /// CPU use in percent: of every core for the host, of one core for an instance (200 is two
    /// busy cores); a GPU's utilisation.
    pub cpu_percent: Option<f64>,
    /// Memory in use, in bytes: the host's (total less available), an instance's resident
    /// memory, a GPU's memory used.
    pub memory_used_bytes: Option<u64>,
    /// Memory in all, in bytes (the host's, a GPU's).
    pub memory_total_bytes: Option<u64>,
    /// Memory available to new programs, in bytes (the host's).
    pub memory_available_bytes: Option<u64>,
    /// The 1-minute load average (the host's).
    pub load1: Option<f64>,
}

impl ResourceSample {
    /// A sample of `scope` taken `at`, with no value yet.
    ///
    /// ```
    /// use llamactl_core::db::{ResourceSample, ResourceScope};
    /// let sample = ResourceSample::new(chrono::Utc::now(), ResourceScope::Host);
    /// assert_eq!((sample.cpu_percent, sample.load1), (None, None));
    /// ```
    pub fn new(at: DateTime<Utc>, scope: ResourceScope) -> Self {
        Self {
            at,
            scope,
            cpu_percent: None,
            memory_used_bytes: None,
            memory_total_bytes: None,
            memory_available_bytes: None,
            load1: None,
        }
    }
}

/// Where resource samples are kept.
///
/// ```
/// use llamactl_core::db::{ResourceHistoryStore, ResourceSample, ResourceScope};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), llamactl_core::DbError> {
/// let db = llamactl_core::MemoryDatabase::new();
/// let now = chrono::Utc::now();
/// db.record_resource_samples(&[ResourceSample::new(now, ResourceScope::Host)]).await?;
/// assert_eq!(db.resource_samples(now - chrono::Duration::minutes(15), None).await?.len(), 1);
/// assert_eq!(db.prune_resource_samples(now + chrono::Duration::seconds(1)).await?, 1);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait ResourceHistoryStore: Send + Sync + std::fmt::Debug {
    /// Stores `samples` (one tick's, typically) in one write.
    async fn record_resource_samples(&self, samples: &[ResourceSample]) -> Result<(), DbError>;

    /// The samples taken at or after `since`, of `scope` only when given, oldest first (in the
    /// order recorded within one time).
    async fn resource_samples(
        &self,
        since: DateTime<Utc>,
        scope: Option<&ResourceScope>,
    ) -> Result<Vec<ResourceSample>, DbError>;

    /// Removes the samples taken before `older_than`; how many were removed.
    async fn prune_resource_samples(&self, older_than: DateTime<Utc>) -> Result<u64, DbError>;
}

#[cfg(test)]
mod tests;
