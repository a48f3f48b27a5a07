//! Why an instance changed status.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::signal_name;

/// How a process ended: an exit code, a signal, or neither (unknown, e.g. it was not our child).
///
/// ```
/// use llamactl_wire::ExitInfo;
/// assert_eq!(ExitInfo { code: Some(3), signal: None }.to_string(), "exit code 3");
/// assert_eq!(ExitInfo { code: None, signal: Some(9) }.to_string(), "signal 9 (SIGKILL)");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Exit code, when the process exited normally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// Signal number, when a signal terminated the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
}

impl ExitInfo {
    /// Converts a standard exit status.
    #[cfg(unix)]
    pub fn from_status(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        Self { code: status.code(), signal: status.signal() }
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(signal)) => match signal_name(signal) {
                Some(name) => write!(f, "signal {signal} ({name})"),
                None => write!(f, "signal {signal}"),
            },
            (None, None) => f.write_str("unknown exit status"),
        }
    }
}

/// The typed reason recorded with every status transition.
///
/// Serialized as an object with a `kind` tag, e.g. `{"kind":"evicted","by":"big-model"}`; the
/// `kind` alone is stored in its own database column for querying.
///
/// ```
/// use llamactl_wire::{ExitInfo, TransitionReason};
///
/// let crashed = TransitionReason::Crashed { exit: ExitInfo { code: None, signal: Some(9) } };
/// assert_eq!(crashed.kind(), "crashed");
/// assert_eq!(
///     serde_json::to_string(&crashed).unwrap(),
///     r#"{"kind":"crashed","exit":{"signal":9}}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TransitionReason {
    /// A user asked for a start.
    UserStart,
    /// A user asked for a stop.
    UserStop,
    /// A user asked for a restart.
    UserRestart,
    /// The instance's options were replaced while it ran, so it restarts with the new ones.
    OptionsChanged,
    /// A request needed the instance (on-demand start).
    OnDemand,
    /// The manager started and the instance's desired state was running.
    Boot,
    /// The readiness endpoint answered.
    Ready,
    /// No request for the configured idle time.
    IdleTimeout,
    /// Stopped to make room for another instance under a running-instance limit.
    Evicted {
        /// The instance that needed the slot.
        by: String,
    },
    /// The process exited while it was running.
    Crashed {
        /// How it ended.
        exit: ExitInfo,
    },
    /// The kernel killed the backend for lack of memory (reported by the Docker engine; a
    /// memory limit set with `docker.memory` is the usual cause).
    OutOfMemory {
        /// How it ended.
        exit: ExitInfo,
    },
    /// The process exited before it became ready.
    StartupExited {
        /// How it ended.
        exit: ExitInfo,
    },
    /// The readiness endpoint did not answer within the startup timeout.
    HealthTimeout {
        /// The timeout that elapsed, in milliseconds.
        after_ms: u64,
    },
    /// The process could not be spawned (missing binary, permissions, ...).
    SpawnFailed {
        /// The operating system's error.
        error: String,
    },
    /// The instance's port was taken by another process.
    PortUnavailable {
        /// The port.
        port: u16,
    },
    /// The instance cannot run here (invalid options, unsupported runtime, no free port, ...).
    Refused {
        /// Why.
        error: String,
    },
    /// Waiting before the next automatic restart.
    RestartBackoff {
        /// Restart attempt number, from 1.
        attempt: u32,
        /// Delay before the attempt, in milliseconds.
        delay_ms: u64,
    },
    /// Starting again after a backoff.
    AutoRestart {
        /// Restart attempt number, from 1.
        attempt: u32,
    },
    /// Reached `max_restarts` consecutive restarts; no more attempts.
    GaveUp {
        /// Restarts made before giving up.
        restarts: u32,
        /// How the last run ended.
        exit: ExitInfo,
    },
    /// The manager is shutting down.
    Shutdown,
    /// On boot, a process recorded as ours outlived the previous manager and was stopped.
    LeftoverStopped {
        /// Its process id.
        pid: i32,
    },
    /// On boot, the recorded process was gone; the status is corrected to stopped.
    ManagerRestarted,
    /// On boot, the backend an earlier manager left running was taken over: same process (or
    /// container), no new start.
    Adopted,
    /// On boot, the backend an earlier manager left running could not be taken over, and was
    /// stopped.
    AdoptionRefused {
        /// Why.
        why: String,
    },
    /// On boot, a container of this instance left by an earlier manager was removed.
    LeftoverContainerRemoved {
        /// Its name.
        container: String,
    },
}

impl TransitionReason {
    /// The `kind` tag, e.g. `"idle_timeout"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UserStart => "user_start",
            Self::UserStop => "user_stop",
            Self::UserRestart => "user_restart",
            Self::OptionsChanged => "options_changed",
            Self::OnDemand => "on_demand",
            Self::Boot => "boot",
            Self::Ready => "ready",
            Self::IdleTimeout => "idle_timeout",
            Self::Evicted { .. } => "evicted",
            Self::Crashed { .. } => "crashed",
            Self::OutOfMemory { .. } => "out_of_memory",
            Self::StartupExited { .. } => "startup_exited",
            Self::HealthTimeout { .. } => "health_timeout",
            Self::SpawnFailed { .. } => "spawn_failed",
            Self::PortUnavailable { .. } => "port_unavailable",
            Self::Refused { .. } => "refused",
            Self::RestartBackoff { .. } => "restart_backoff",
            Self::AutoRestart { .. } => "auto_restart",
            Self::GaveUp { .. } => "gave_up",
            Self::Shutdown => "shutdown",
            Self::LeftoverStopped { .. } => "leftover_stopped",
            Self::ManagerRestarted => "manager_restarted",
            Self::LeftoverContainerRemoved { .. } => "leftover_container_removed",
            Self::Adopted => "adopted",
            Self::AdoptionRefused { .. } => "adoption_refused",
        }
    }
}

impl fmt::Display for TransitionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Evicted { by } => write!(f, "evicted by {by}"),
            Self::Crashed { exit } => write!(f, "crashed ({exit})"),
            Self::OutOfMemory { exit } => write!(f, "killed for lack of memory ({exit})"),
            Self::StartupExited { exit } => write!(f, "exited while starting ({exit})"),
            Self::HealthTimeout { after_ms } => write!(f, "not ready after {after_ms} ms"),
            Self::SpawnFailed { error } => write!(f, "spawn failed: {error}"),
            Self::PortUnavailable { port } => write!(f, "port {port} is in use"),
            Self::Refused { error } => write!(f, "refused: {error}"),
            Self::RestartBackoff { attempt, delay_ms } => {
                write!(f, "restart {attempt} in {delay_ms} ms")
            }
            Self::AutoRestart { attempt } => write!(f, "automatic restart {attempt}"),
            Self::GaveUp { restarts, exit } => {
                write!(f, "gave up after {restarts} restarts (last: {exit})")
            }
            Self::LeftoverStopped { pid } => write!(f, "stopped leftover process {pid}"),
            Self::LeftoverContainerRemoved { container } => write!(f, "removed leftover container {container}"),
            Self::AdoptionRefused { why } => write!(f, "not taken over: {why}"),
            other => f.write_str(other.kind()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_matches_the_serde_tag() {
        let all = [
            TransitionReason::UserStart,
            TransitionReason::UserStop,
            TransitionReason::UserRestart,
            TransitionReason::OptionsChanged,
            TransitionReason::OnDemand,
            TransitionReason::Boot,
            TransitionReason::Ready,
            TransitionReason::IdleTimeout,
            TransitionReason::Evicted { by: "x".into() },
            TransitionReason::Crashed { exit: ExitInfo::default() },
            TransitionReason::StartupExited { exit: ExitInfo { code: Some(1), signal: None } },
            TransitionReason::HealthTimeout { after_ms: 5 },
            TransitionReason::SpawnFailed { error: "e".into() },
            TransitionReason::PortUnavailable { port: 1 },
            TransitionReason::Refused { error: "e".into() },
            TransitionReason::RestartBackoff { attempt: 1, delay_ms: 2 },
            TransitionReason::AutoRestart { attempt: 1 },
            TransitionReason::GaveUp { restarts: 3, exit: ExitInfo::default() },
            TransitionReason::Shutdown,
            TransitionReason::LeftoverStopped { pid: 4 },
            TransitionReason::ManagerRestarted,
            TransitionReason::OutOfMemory { exit: ExitInfo { code: Some(137), signal: None } },
            TransitionReason::LeftoverContainerRemoved { container: "llamactl-a-1234".into() },
            TransitionReason::Adopted,
            TransitionReason::AdoptionRefused { why: "its options changed".into() },
        ];
        for reason in all {
            let value = serde_json::to_value(&reason).unwrap();
            assert_eq!(value["kind"], reason.kind());
            let back: TransitionReason = serde_json::from_value(value).unwrap();
            assert_eq!(back, reason);
        }
    }

    /// These forms are in databases and in clients (invariant 21): a change here is a data
    /// migration and an API change.
    #[test]
    fn serialised_forms_are_pinned() {
        let exit = ExitInfo { code: Some(1), signal: None };
        let cases = [
            (TransitionReason::UserStart, r#"{"kind":"user_start"}"#),
            (TransitionReason::IdleTimeout, r#"{"kind":"idle_timeout"}"#),
            (TransitionReason::Evicted { by: "big".into() }, r#"{"kind":"evicted","by":"big"}"#),
            (TransitionReason::Crashed { exit }, r#"{"kind":"crashed","exit":{"code":1}}"#),
            (TransitionReason::Crashed { exit: ExitInfo::default() }, r#"{"kind":"crashed","exit":{}}"#),
            (TransitionReason::HealthTimeout { after_ms: 5 }, r#"{"kind":"health_timeout","after_ms":5}"#),
            (TransitionReason::PortUnavailable { port: 8080 }, r#"{"kind":"port_unavailable","port":8080}"#),
            (
                TransitionReason::RestartBackoff { attempt: 2, delay_ms: 400 },
                r#"{"kind":"restart_backoff","attempt":2,"delay_ms":400}"#,
            ),
            (
                TransitionReason::GaveUp { restarts: 3, exit: ExitInfo { code: None, signal: Some(9) } },
                r#"{"kind":"gave_up","restarts":3,"exit":{"signal":9}}"#,
            ),
            (TransitionReason::LeftoverStopped { pid: 4 }, r#"{"kind":"leftover_stopped","pid":4}"#),
            (
                TransitionReason::LeftoverContainerRemoved { container: "c".into() },
                r#"{"kind":"leftover_container_removed","container":"c"}"#,
            ),
            (TransitionReason::AdoptionRefused { why: "w".into() }, r#"{"kind":"adoption_refused","why":"w"}"#),
        ];
        for (reason, json) in cases {
            assert_eq!(serde_json::to_string(&reason).unwrap(), json);
            assert_eq!(serde_json::from_str::<TransitionReason>(json).unwrap(), reason);
        }
    }

    #[test]
    fn exits_read_as_people_say_them() {
        let exit = |code, signal| ExitInfo { code, signal }.to_string();
        assert_eq!(exit(Some(0), None), "exit code 0");
        assert_eq!(exit(Some(2), Some(9)), "exit code 2");
        assert_eq!(exit(None, Some(15)), "signal 15 (SIGTERM)");
        assert_eq!(exit(None, Some(40)), "signal 40");
        assert_eq!(exit(None, None), "unknown exit status");
    }
}
