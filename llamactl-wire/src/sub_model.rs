//! The models of a llama.cpp router instance ("sub-models"): their status and why it changed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The status of one model of a llama.cpp router instance, as llamactl tells it.
///
/// The router itself reports a crashed child as `unloaded` with an exit code; llamactl reports it
/// as `Failed`, so that a crash is not mistaken for an unload.
///
/// ```
/// use llamactl_wire::SubModelStatus;
///
/// assert_eq!(SubModelStatus::Loaded.to_string(), "loaded");
/// assert_eq!("sleeping".parse::<SubModelStatus>(), Ok(SubModelStatus::Sleeping));
/// assert!(SubModelStatus::Sleeping.holds_slot());
/// assert!(!SubModelStatus::Failed.holds_slot());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubModelStatus {
    /// Known to the router, no process.
    Unloaded,
    /// Its process is starting.
    Loading,
    /// Its process answers.
    Loaded,
    /// Its process is up with its weights freed (the router's `--sleep-idle-seconds`).
    Sleeping,
    /// Its process ended without being asked to.
    Failed,
}

impl SubModelStatus {
    /// Every status.
    pub const ALL: [SubModelStatus; 5] = [Self::Unloaded, Self::Loading, Self::Loaded, Self::Sleeping, Self::Failed];

    /// The lowercase word used in JSON (the router's `status.value`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unloaded => "unloaded",
            Self::Loading => "loading",
            Self::Loaded => "loaded",
            Self::Sleeping => "sleeping",
            Self::Failed => "failed",
        }
    }

    /// Whether a model in this status has a process of the router's (and so counts against
    /// its `models_max`).
    pub fn holds_slot(self) -> bool {
        matches!(self, Self::Loading | Self::Loaded | Self::Sleeping)
    }
}

impl fmt::Display for SubModelStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is not a [`SubModelStatus`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sub-model status {0:?}")]
pub struct UnknownSubModelStatus(pub String);

impl FromStr for SubModelStatus {
    type Err = UnknownSubModelStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| UnknownSubModelStatus(s.to_owned()))
    }
}

/// Why a sub-model's status changed.
///
/// ```
/// use llamactl_wire::SubModelReason;
///
/// let reason = SubModelReason::Evicted { by: "beta".into() };
/// assert_eq!(reason.kind(), "evicted");
/// assert_eq!(serde_json::to_string(&reason)?, r#"{"kind":"evicted","by":"beta"}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SubModelReason {
    /// Seen for the first time (the router's list).
    Discovered,
    /// A user asked for a load.
    UserLoad,
    /// A user asked for an unload.
    UserUnload,
    /// A request needed it.
    OnDemand,
    /// Its process finished loading.
    Ready,
    /// No request for its idle time.
    IdleTimeout,
    /// Unloaded to make room for another model under the router's `models_max`.
    Evicted {
        /// The model that needed the room.
        by: String,
    },
    /// Its process ended without being asked to.
    Crashed {
        /// Its exit code, when the router reports one.
        exit_code: Option<i32>,
    },
    /// A load the router refused or that ended before the model answered.
    LoadFailed {
        /// What the router said.
        error: String,
    },
    /// The router changed it without being asked (its own sleep, reload or unload).
    Router,
    /// The router instance stopped, taking its models with it.
    InstanceStopped,
}

impl SubModelReason {
    /// The variant's name, as stored and sent (`kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Discovered => "discovered",
            Self::UserLoad => "user_load",
            Self::UserUnload => "user_unload",
            Self::OnDemand => "on_demand",
            Self::Ready => "ready",
            Self::IdleTimeout => "idle_timeout",
            Self::Evicted { .. } => "evicted",
            Self::Crashed { .. } => "crashed",
            Self::LoadFailed { .. } => "load_failed",
            Self::Router => "router",
            Self::InstanceStopped => "instance_stopped",
        }
    }
}

impl fmt::Display for SubModelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Evicted { by } => write!(f, "evicted to make room for {by}"),
            Self::Crashed { exit_code: Some(code) } => write!(f, "its process exited with code {code}"),
            Self::Crashed { exit_code: None } => f.write_str("its process ended"),
            Self::LoadFailed { error } => write!(f, "load failed: {error}"),
            other => f.write_str(&other.kind().replace('_', " ")),
        }
    }
}
