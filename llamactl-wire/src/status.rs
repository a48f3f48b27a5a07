//! Instance statuses and desired states.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The observed status of an instance.
///
/// `Running` means the backend answers its readiness endpoint; a spawned process that is still
/// loading its model is `Starting`.
///
/// ```
/// use llamactl_wire::InstanceStatus;
///
/// assert_eq!(InstanceStatus::Starting.to_string(), "starting");
/// assert_eq!("running".parse::<InstanceStatus>(), Ok(InstanceStatus::Running));
/// assert!(InstanceStatus::Restarting.holds_slot());
/// assert!(!InstanceStatus::Failed.holds_slot());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    /// Not running, by request or because it was never started.
    Stopped,
    /// Spawned; waiting for the readiness endpoint to answer.
    Starting,
    /// Answering its readiness endpoint.
    Running,
    /// Asked to stop; waiting for the process to exit.
    Stopping,
    /// Exited unexpectedly; waiting for the restart backoff before starting again.
    Restarting,
    /// Could not start, or gave up restarting. `last_error` says why.
    Failed,
}

impl InstanceStatus {
    /// All statuses, in lifecycle order.
    pub const ALL: [InstanceStatus; 6] =
        [Self::Stopped, Self::Starting, Self::Running, Self::Stopping, Self::Restarting, Self::Failed];

    /// The lowercase name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Restarting => "restarting",
            Self::Failed => "failed",
        }
    }

    /// Whether an instance in this status counts against `max_running_instances` and group
    /// limits: from the moment a start is admitted until its process is gone.
    pub fn holds_slot(self) -> bool {
        matches!(self, Self::Starting | Self::Running | Self::Stopping | Self::Restarting)
    }

    /// The closest status in the Go llamactl's vocabulary (`stopped`, `running`, `failed`,
    /// `restarting`, `shutting_down`), which is what its `instances.status` column accepts.
    pub fn legacy_status(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Starting | Self::Running => "running",
            Self::Stopping => "shutting_down",
            Self::Restarting => "restarting",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the known statuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for InstanceStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// What the user (or the on-demand machinery) last asked of an instance.
///
/// The manager restores this on boot: an instance whose desired state is `Running` is started
/// again, one that was stopped by a user, by the idle timer or by eviction is not.
///
/// ```
/// use llamactl_wire::DesiredState;
/// assert_eq!("running".parse::<DesiredState>(), Ok(DesiredState::Running));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DesiredState {
    /// Should not be running.
    Stopped,
    /// Should be running.
    Running,
}

impl DesiredState {
    /// The lowercase name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Running => "running",
        }
    }
}

impl fmt::Display for DesiredState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DesiredState {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "stopped" => Ok(Self::Stopped),
            "running" => Ok(Self::Running),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for status in InstanceStatus::ALL {
            assert_eq!(status.as_str().parse::<InstanceStatus>(), Ok(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert!("shutting_down".parse::<InstanceStatus>().is_err());
    }

    /// These names are in databases and in clients (invariant 21): a change here is a data
    /// migration and an API change.
    #[test]
    fn names_are_pinned() {
        let names: Vec<&str> = InstanceStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["stopped", "starting", "running", "stopping", "restarting", "failed"]);
        assert_eq!([DesiredState::Stopped.as_str(), DesiredState::Running.as_str()], ["stopped", "running"]);
        for desired in [DesiredState::Stopped, DesiredState::Running] {
            assert_eq!(serde_json::to_string(&desired).unwrap(), format!("\"{desired}\""));
            assert_eq!(desired.as_str().parse::<DesiredState>(), Ok(desired));
        }
        assert_eq!("paused".parse::<DesiredState>(), Err(UnknownStatus("paused".into())));
    }

    #[test]
    fn legacy_statuses_are_in_the_go_check_constraint() {
        let go = ["stopped", "running", "failed", "restarting", "shutting_down"];
        for status in InstanceStatus::ALL {
            assert!(go.contains(&status.legacy_status()), "{status}");
        }
    }
}
