//! What the manager publishes about an instance, and the lease a caller holds on a ready one.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::activity::ActivityGuard;
use crate::backend::Listen;
use crate::logs::LogStore;
use crate::{InstanceName, InstanceOptions, InstanceStatus, OptionsError, RuntimeRecord, TransitionReason};

/// The current state of one instance, as its actor last published it.
#[derive(Debug, Clone)]
pub struct InstanceState {
    /// Database row id (stable for the instance's life; API keys refer to instances by it).
    pub id: i64,
    /// The options, or why the stored ones cannot be read.
    pub options: Result<Arc<InstanceOptions>, OptionsError>,
    /// The options as JSON ([`InstanceOptions::to_json_value`], written out once when they
    /// change): listing thousands of instances then builds no JSON trees. `None` when the
    /// stored options cannot be read.
    pub options_json: Option<Arc<serde_json::value::RawValue>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change of the options.
    pub updated_at: DateTime<Utc>,
    /// Status, pid, port, restart count, last error and reason.
    pub runtime: RuntimeRecord,
    /// Where the backend listens, while it has a process.
    pub listen: Option<Listen>,
    /// While it has a process: the backend type and the `model` requests must carry, from the
    /// options that run was started with (an update publishes new options before the old run
    /// stops; a request leased on the old run still gets the old run's name).
    pub serving: Option<Serving>,
    /// Number of start attempts in this manager's life.
    pub attempt: u64,
}

impl InstanceState {
    /// Sets the options and their JSON.
    pub(crate) fn set_options(&mut self, options: Result<Arc<InstanceOptions>, OptionsError>) {
        self.options_json = options.as_ref().ok().and_then(|o| o.to_raw_json());
        self.options = options;
    }
}

/// A snapshot of one instance for listings and APIs.
#[derive(Debug, Clone)]
pub struct InstanceInfo {
    /// Name.
    pub name: InstanceName,
    /// State (options, runtime record, address).
    pub state: InstanceState,
    /// Requests in flight now.
    pub in_flight: u32,
    /// Time of the last request's end (or of becoming ready), while it runs.
    pub last_activity: Option<DateTime<Utc>>,
    /// Its log.
    pub logs: Arc<LogStore>,
}

/// One instance as [`Manager::map_instances`](super::Manager::map_instances) shows it,
/// borrowed: nothing is copied unless the caller copies it.
#[derive(Debug, Clone, Copy)]
pub struct InstanceView<'a> {
    /// Name.
    pub name: &'a InstanceName,
    /// State (options, runtime record, address).
    pub state: &'a InstanceState,
    /// Requests in flight now.
    pub in_flight: u32,
    /// Time of the last request's end (or of becoming ready), while it runs.
    pub last_activity: Option<DateTime<Utc>>,
    /// Its log (e.g. [`LogStore::file_error`]: the log file cannot be written).
    pub logs: &'a Arc<LogStore>,
}

impl InstanceView<'_> {
    /// An owned snapshot.
    ///
    /// ```
    /// # async fn f(manager: llamactl_core::Manager) {
    /// let infos = manager.map_instances(|view| view.to_info());
    /// assert_eq!(infos.len(), manager.list().len());
    /// # }
    /// ```
    pub fn to_info(&self) -> InstanceInfo {
        InstanceInfo {
            name: self.name.clone(),
            state: self.state.clone(),
            in_flight: self.in_flight,
            last_activity: self.last_activity,
            logs: self.logs.clone(),
        }
    }
}

impl InstanceInfo {
    /// The snapshot as a view.
    ///
    /// ```
    /// # fn f(info: &llamactl_core::InstanceInfo) {
    /// assert_eq!(info.view().name, &info.name);
    /// # }
    /// ```
    pub fn view(&self) -> InstanceView<'_> {
        InstanceView {
            name: &self.name,
            state: &self.state,
            logs: &self.logs,
            in_flight: self.in_flight,
            last_activity: self.last_activity,
        }
    }

    /// Current status.
    pub fn status(&self) -> InstanceStatus {
        self.state.runtime.status
    }

    /// Reason of the last transition.
    pub fn last_reason(&self) -> Option<&TransitionReason> {
        self.state.runtime.last_reason.as_ref()
    }
}

/// What a run was started as, for the requests leased on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serving {
    /// Its backend type.
    pub backend: crate::BackendType,
    /// The `model` value requests must carry for it, if it insists on one.
    pub request_model: Option<String>,
}

impl Serving {
    /// What a run started with `options` serves as.
    pub fn of(options: &crate::InstanceOptions) -> Self {
        Self { backend: options.backend.backend_type(), request_model: options.backend.as_backend().request_model() }
    }
}

/// A ready instance, held for the duration of one request: while any lease is held the
/// instance counts as busy, so the idle timer and eviction leave it alone.
///
/// ```no_run
/// # async fn f(manager: llamactl_core::Manager) -> Result<(), llamactl_core::manager::ManagerError> {
/// let lease = manager.ensure_ready("tiny", std::time::Duration::from_secs(30)).await?;
/// let url = format!("{}/v1/chat/completions", lease.base_url());
/// // ... send the request, stream the response ...
/// drop(lease); // the request is over: idle time counts from here
/// # let _ = url; Ok(()) }
/// ```
#[derive(Debug)]
pub struct Lease {
    pub(crate) name: InstanceName,
    pub(crate) listen: Listen,
    pub(crate) request_model: Option<String>,
    pub(crate) backend: Option<crate::BackendType>,
    pub(crate) attempt: u64,
    pub(crate) waited: Option<std::time::Duration>,
    pub(crate) _guard: ActivityGuard,
}

impl Lease {
    /// The instance.
    pub fn name(&self) -> &InstanceName {
        &self.name
    }

    /// `http://host:port` of the backend.
    pub fn base_url(&self) -> String {
        self.listen.base_url()
    }

    /// Where the backend listens.
    pub fn listen(&self) -> &Listen {
        &self.listen
    }

    /// The `model` value requests must carry for this backend, if it insists on one.
    pub fn request_model(&self) -> Option<&str> {
        self.request_model.as_deref()
    }

    /// The backend type of the run leased (`None` if its options cannot be read).
    pub fn backend(&self) -> Option<crate::BackendType> {
        self.backend
    }

    /// Which run of the instance is leased (it counts up at every start): a caller whose
    /// request failed can wait until the manager has seen this run end.
    pub fn attempt(&self) -> u64 {
        self.attempt
    }

    /// How long the request waited for the instance to become ready (`None`: it was ready).
    pub fn waited(&self) -> Option<std::time::Duration> {
        self.waited
    }
}

/// A status change, broadcast to subscribers of [`Manager::subscribe_transitions`](crate::Manager::subscribe_transitions).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusNotice {
    /// The instance.
    pub name: String,
    /// Status before.
    pub from: InstanceStatus,
    /// Status after.
    pub to: InstanceStatus,
    /// Why.
    pub reason: TransitionReason,
    /// When.
    pub at: DateTime<Utc>,
}
