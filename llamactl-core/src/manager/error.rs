//! Errors of the manager.

use std::time::Duration;

use crate::ports::PortError;
use crate::{DbError, InstanceStatus, OptionsError, TransitionReason};

/// Which running limit was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    /// `max_running_instances`.
    Global {
        /// The limit.
        max: usize,
    },
    /// A group limit.
    Group {
        /// The group.
        group: String,
        /// The limit.
        max: usize,
    },
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Global { max } => write!(f, "max_running_instances ({max})"),
            Self::Group { group, max } => write!(f, "the limit of group {group} ({max})"),
        }
    }
}

/// An error of a manager operation. Each variant maps naturally onto an HTTP status; see
/// [`ManagerError::retry_after`] for the ones worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// No instance with this name.
    #[error("instance {0} not found")]
    NotFound(String),
    /// An instance with this name exists.
    #[error("instance {0} already exists")]
    AlreadyExists(String),
    /// `max_instances` instances exist already (or are being created).
    #[error("max_instances ({max}) reached")]
    InstanceLimit {
        /// The limit.
        max: usize,
    },
    /// The options are invalid; the error names the field.
    #[error(transparent)]
    InvalidOptions(#[from] OptionsError),
    /// A port problem (pinned by another instance, in use, none free).
    #[error(transparent)]
    Port(#[from] PortError),
    /// A running limit is reached and no instance could be evicted.
    #[error("cannot start {name}: {limit} reached and no running instance is idle enough to evict ({detail})")]
    CapacityExhausted {
        /// The instance that wanted to start.
        name: String,
        /// Which limit.
        limit: Limit,
        /// Why nothing could be evicted.
        detail: String,
        /// A suggestion for when to try again.
        retry_after: Duration,
    },
    /// The instance cannot run here (docker, remote node, unreadable stored options).
    #[error("cannot start {name}: {reason}")]
    Unsupported {
        /// The instance.
        name: String,
        /// Why.
        reason: String,
    },
    /// The start was attempted and failed; `detail` holds the backend's last log lines.
    #[error("instance {name} failed to start ({reason}){}", if detail.is_empty() { String::new() } else { format!(":\n{detail}") })]
    StartFailed {
        /// The instance.
        name: String,
        /// The recorded reason.
        reason: TransitionReason,
        /// Error text and last log lines.
        detail: String,
        /// When an on-demand start will be tried again (set when this is a recent failure
        /// reported again rather than a new attempt).
        retry_after: Option<Duration>,
    },
    /// The instance is not running and on-demand start is off for it.
    #[error("instance {name} is {status} and on_demand_start is off")]
    NotRunning {
        /// The instance.
        name: String,
        /// Its status.
        status: InstanceStatus,
    },
    /// The caller may not send requests to the instance (its rights lack `infer`).
    #[error("the caller may not use instance {name}")]
    MayNotUse {
        /// The instance.
        name: String,
    },
    /// The instance is stopped or failed and the caller may not start it (its rights lack
    /// `start`).
    #[error("instance {name} is {status} and the caller may not start it")]
    MayNotStart {
        /// The instance.
        name: String,
        /// Its status.
        status: InstanceStatus,
    },
    /// Too many requests wait for the instance to start already.
    #[error(transparent)]
    QueueFull(#[from] super::cold_start_queue::QueueFull),
    /// The instance was stopped (by a user or shutdown) while a caller waited for it.
    #[error("instance {name} was stopped while waiting for it ({reason})")]
    StoppedWhileWaiting {
        /// The instance.
        name: String,
        /// Why it stopped.
        reason: TransitionReason,
    },
    /// A wait reached its deadline; the instance keeps starting for other callers.
    #[error("instance {name} not ready after {waited:?} (status: {status})")]
    Timeout {
        /// The instance.
        name: String,
        /// How long the caller waited.
        waited: Duration,
        /// Its status at the deadline.
        status: InstanceStatus,
    },
    /// The manager is shutting down.
    #[error("the manager is shutting down")]
    ShuttingDown,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DbError),
}

impl ManagerError {
    /// For errors that are temporary (limits, waits, shutdown), how long to wait before
    /// retrying; a server answers these with 503 and this `Retry-After`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llamactl_core::manager::ManagerError;
    /// assert_eq!(ManagerError::ShuttingDown.retry_after(), Some(Duration::from_secs(5)));
    /// assert_eq!(ManagerError::NotFound("x".into()).retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::CapacityExhausted { retry_after, .. } => Some(*retry_after),
            Self::StartFailed { retry_after, .. } => *retry_after,
            Self::Timeout { .. } | Self::ShuttingDown => Some(Duration::from_secs(5)),
            _ => None,
        }
    }
}
