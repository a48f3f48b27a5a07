//! Persistence: two traits and their records. [`Database`] is the instance store (definitions,
//! runtime state, transition events): all of the manager's persistence goes through it.
//! [`ApiKeyStore`] holds the server's inference keys and their per-instance rights;
//! [`ActivityStore`] the records of proxied requests; [`ResourceHistoryStore`] samples of the
//! host's and the instances' CPU and memory; [`SubModelEventStore`] the status changes of
//! router instances' models.
//!
//! All are implemented by one type, since a key's rights name the store's instances:
//! [`SqliteDatabase`], the implementation that ships, and [`MemoryDatabase`], a plain in-memory
//! one for embedders' own tests. Any other implementation can check itself against the same
//! rules with the conformance suite behind the `testing` feature
//! (`llamactl_core::testing::conformance`).

pub mod activity;
mod api_keys;
mod memory;
pub mod resource_history;
mod sqlite;
pub mod sub_model_events;

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{DesiredState, ExitInfo, InstanceName, InstanceOptions, InstanceStatus, OptionsError, TransitionReason};

pub use activity::{
    ActivityGroupBy, ActivityOutcome, ActivityQuery, ActivityRecord, ActivityStats, ActivityStore, nearest_rank,
    quantile, summarise,
};
pub use api_keys::{ApiKeyRecord, ApiKeyStore, InstanceRights, NewApiKey, PermissionMode};
pub use memory::MemoryDatabase;
pub use resource_history::{ResourceHistoryStore, ResourceSample, ResourceScope};
pub use sqlite::SqliteDatabase;
pub use sub_model_events::{SUB_MODEL_EVENTS_KEPT, SubModelEvent, SubModelEventStore};

/// A failed database operation.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// An instance with this name already exists.
    #[error("instance {0} already exists")]
    AlreadyExists(String),
    /// No instance with this name.
    #[error("instance {0} not found")]
    NotFound(String),
    /// Another API key already has this lookup id.
    #[error("an API key with lookup id {0} already exists")]
    LookupIdTaken(String),
    /// The database could not be opened or migrated.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The database file.
        path: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database file is held by another open database (another manager or server, in
    /// this process or another): two owners would supervise the same instances twice.
    #[error("database {path} is in use by another llamactl ({holder}); stop it first, or use another database file")]
    InUse {
        /// The database file.
        path: String,
        /// Who holds it, as its lock file says (`pid 1234, llamactl-server at http://...`).
        holder: String,
    },
    /// The database has been closed.
    #[error("database is closed")]
    Closed,
    /// A stored row holds something this version cannot read.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Any other SQLite or I/O error.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// The commit that would have held this write failed (the write is not stored).
    #[error("database write not committed: {0}")]
    Commit(String),
}

/// Runtime state of an instance, written at each status transition: enough to answer "what
/// was running, where, since when, and why did it stop" after the manager restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeRecord {
    /// Observed status.
    pub status: InstanceStatus,
    /// What was last asked for (restored on boot).
    pub desired_state: DesiredState,
    /// Process id of the backend (its process group id too).
    pub pid: Option<i32>,
    /// Start time of `pid` in clock ticks after boot, to recognise the process later.
    pub process_start_ticks: Option<u64>,
    /// Kernel boot id when `pid` was recorded (a pid from an earlier boot is meaningless).
    pub boot_id: Option<String>,
    /// Port the backend listens on.
    pub port: Option<u16>,
    /// Docker container of the run, when it runs in one.
    pub container_id: Option<String>,
    /// Fingerprint of what the run runs: its command line (process) or its options (container).
    pub command_hash: Option<String>,
    /// The file a process writes its output to (processes that can outlive the manager).
    pub output_path: Option<std::path::PathBuf>,
    /// When the current or last run was spawned.
    pub started_at: Option<DateTime<Utc>>,
    /// When the current or last run became ready.
    pub ready_at: Option<DateTime<Utc>>,
    /// When the last run ended.
    pub stopped_at: Option<DateTime<Utc>>,
    /// Consecutive automatic restarts.
    pub restart_count: u32,
    /// How the last run ended.
    pub last_exit: ExitInfo,
    /// The last failure, with the backend's last log lines where there are any.
    pub last_error: Option<String>,
    /// Reason of the last transition.
    pub last_reason: Option<TransitionReason>,
}

impl RuntimeRecord {
    /// Forgets the run it recorded: no process, container, command, output file or port.
    ///
    /// ```
    /// let mut record = llamactl_core::RuntimeRecord { pid: Some(42), port: Some(8001), ..Default::default() };
    /// record.forget_run();
    /// assert_eq!((record.pid, record.port), (None, None));
    /// ```
    pub fn forget_run(&mut self) {
        self.pid = None;
        self.process_start_ticks = None;
        self.boot_id = None;
        self.container_id = None;
        self.command_hash = None;
        self.output_path = None;
        self.port = None;
    }
}

impl Default for RuntimeRecord {
    fn default() -> Self {
        Self {
            status: InstanceStatus::Stopped,
            desired_state: DesiredState::Stopped,
            pid: None,
            process_start_ticks: None,
            boot_id: None,
            port: None,
            container_id: None,
            command_hash: None,
            output_path: None,
            started_at: None,
            ready_at: None,
            stopped_at: None,
            restart_count: 0,
            last_exit: ExitInfo::default(),
            last_error: None,
            last_reason: None,
        }
    }
}

/// An instance as stored.
#[derive(Debug, Clone)]
pub struct StoredInstance {
    /// Row id (stable for the instance's life).
    pub id: i64,
    /// Name.
    pub name: InstanceName,
    /// The options, or why the stored JSON cannot be read (the row is kept, not dropped).
    pub options: Result<InstanceOptions, OptionsError>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change of the options.
    pub updated_at: DateTime<Utc>,
    /// Runtime state.
    pub runtime: RuntimeRecord,
}

/// One status transition, as written to the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Status before.
    pub from: InstanceStatus,
    /// Status after.
    pub to: InstanceStatus,
    /// Why.
    pub reason: TransitionReason,
    /// When.
    pub at: DateTime<Utc>,
}

/// A stored transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceEvent {
    /// Increasing id (use it to page: `after_id`).
    pub id: i64,
    /// Instance name.
    pub instance: String,
    /// Status before.
    pub from: InstanceStatus,
    /// Status after.
    pub to: InstanceStatus,
    /// Why.
    pub reason: TransitionReason,
    /// When.
    pub at: DateTime<Utc>,
    /// Backend process id at the time, if any.
    pub pid: Option<i32>,
    /// Backend port at the time, if any.
    pub port: Option<u16>,
}

/// An instance definition brought in from elsewhere (the Go llamactl's JSON files).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedInstance {
    /// Name.
    pub name: InstanceName,
    /// Options.
    pub options: InstanceOptions,
    /// Original creation time (now if unknown).
    pub created_at: Option<DateTime<Utc>>,
    /// Whether it should run: a definition that was running is started on the next boot.
    pub desired_state: DesiredState,
}

/// Which events to read: ids after `after_id`, at most `limit`, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events with a larger id.
    pub after_id: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

impl Default for EventQuery {
    fn default() -> Self {
        Self { after_id: None, limit: 100 }
    }
}

/// Storage of instance definitions, runtime state and transition events (API keys are the
/// [`ApiKeyStore`]'s).
///
/// Object-safe (`Arc<dyn Database>`). Every method that returns `Ok` has made its write
/// durable; a multi-row change (an instance with its runtime row, a transition with its event)
/// is atomic. Deleting an instance deletes its runtime state, its events and the API key rights
/// that name it.
///
/// ```
/// use std::sync::Arc;
/// use llamactl_core::{Database, InstanceOptions, SqliteDatabase};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let db: Arc<dyn Database> = Arc::new(SqliteDatabase::open_in_memory().await?);
/// let options = InstanceOptions::from_json(r#"{"backend_type":"vllm","backend_options":{"model":"m"}}"#)?;
/// db.create(&"v".parse()?, &options).await?;
/// assert_eq!(db.load_all().await?.len(), 1);
/// assert!(db.delete("v").await?);
/// db.close().await;
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Database: Send + Sync + fmt::Debug {
    /// Inserts a new instance (stopped); fails with [`DbError::AlreadyExists`].
    async fn create(&self, name: &InstanceName, options: &InstanceOptions) -> Result<StoredInstance, DbError>;

    /// Inserts the instance, or replaces the options of an existing one (runtime state kept).
    async fn save(&self, name: &InstanceName, options: &InstanceOptions) -> Result<StoredInstance, DbError>;

    /// Deletes an instance with its runtime state and events; `false` if there was none.
    async fn delete(&self, name: &str) -> Result<bool, DbError>;

    /// One instance.
    async fn get(&self, name: &str) -> Result<Option<StoredInstance>, DbError>;

    /// Every instance, ordered by name.
    async fn load_all(&self) -> Result<Vec<StoredInstance>, DbError>;

    /// Records a transition: the runtime row and the event, atomically.
    async fn record_transition(
        &self,
        name: &str,
        runtime: &RuntimeRecord,
        transition: &Transition,
    ) -> Result<(), DbError>;

    /// Replaces the runtime row without an event (e.g. a new desired state).
    async fn save_runtime(&self, name: &str, runtime: &RuntimeRecord) -> Result<(), DbError>;

    /// Events of one instance, oldest first.
    async fn events(&self, name: &str, query: EventQuery) -> Result<Vec<InstanceEvent>, DbError>;

    /// Creates several instances at once, all or none (for importing legacy definitions);
    /// fails with [`DbError::AlreadyExists`] naming the first that exists.
    async fn import_instances(&self, instances: &[ImportedInstance]) -> Result<(), DbError>;

    /// This manager's identity (created on first use, then stable for the database): its Docker
    /// containers carry it as a label.
    async fn manager_id(&self) -> Result<String, DbError>;

    /// Whether the database answers (for readiness checks).
    async fn ping(&self) -> Result<(), DbError>;

    /// Closes the database; later calls fail with [`DbError::Closed`].
    async fn close(&self);
}
