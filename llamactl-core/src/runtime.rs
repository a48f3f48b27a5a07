//! What runs a backend — a local process or a Docker container — behind two traits, so that
//! the supervisor drives both alike and never asks which one it has:
//!
//! - a [`Runtime`] starts a backend ([`Runtime::launch`]) or takes over one an earlier manager
//!   left running ([`Runtime::adopt`]);
//! - a [`BackendRun`] is one started backend: wait for its exit, stop it, leave nothing behind.
//!
//! [`Runtimes`] holds every runtime of a manager and is the one place that decides which runtime
//! runs an instance ([`Runtimes::kind_for`]). The local process runtime is
//! [`LocalProcesses`](crate::process::LocalProcesses), the Docker one
//! [`DockerEngine`](crate::docker::DockerEngine); another engine is one more [`Runtime`] and one
//! more [`RuntimeKind`].

mod runtimes;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use runtimes::Runtimes;

use crate::backend::{BackendsSettings, Listen};
use crate::db::RuntimeRecord;
use crate::logs::LogStore;
use crate::process::ProcessIdentity;
use crate::{ExitInfo, InstanceOptions, TransitionReason};

/// Which runtime runs a backend.
///
/// ```
/// use llamactl_core::runtime::RuntimeKind;
/// assert_eq!(RuntimeKind::Process.to_string(), "local process");
/// assert_eq!(RuntimeKind::Docker.to_string(), "Docker");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuntimeKind {
    /// A local process in its own session and process group.
    Process,
    /// A container of the Docker engine.
    Docker,
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Process => "local process",
            Self::Docker => "Docker",
        })
    }
}

/// How a run ended, as its runtime saw it.
///
/// ```
/// use llamactl_core::{ExitInfo, runtime::RunExit};
/// let exit = RunExit { exit: ExitInfo { code: Some(137), signal: None }, oom_killed: true };
/// assert_eq!(exit.to_string(), "exit code 137, out of memory");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunExit {
    /// Exit code or signal.
    pub exit: ExitInfo,
    /// The kernel killed it for lack of memory (reported by the Docker engine).
    pub oom_killed: bool,
}

impl From<ExitInfo> for RunExit {
    fn from(exit: ExitInfo) -> Self {
        Self { exit, oom_killed: false }
    }
}

impl fmt::Display for RunExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.exit)?;
        if self.oom_killed {
            f.write_str(", out of memory")?;
        }
        Ok(())
    }
}

/// What identifies a run, to record it and to find it again after a restart of the manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunIdentity {
    /// A local process (and its process group).
    Process {
        /// Pid, start time, boot.
        identity: ProcessIdentity,
        /// [`command_hash`](crate::process::command_hash) of what it runs.
        command_hash: String,
        /// The file its output goes to, if it can outlive the manager.
        output: Option<PathBuf>,
    },
    /// A Docker container.
    Container {
        /// Container id.
        id: String,
        /// Container name.
        name: String,
        /// The options hash its labels carry.
        options_hash: String,
    },
}

impl RunIdentity {
    /// The runtime this run belongs to.
    pub fn kind(&self) -> RuntimeKind {
        match self {
            Self::Process { .. } => RuntimeKind::Process,
            Self::Container { .. } => RuntimeKind::Docker,
        }
    }

    /// Writes what identifies the run into `record` (and clears what belongs to the other
    /// runtimes), so that the next manager can find it again.
    pub fn record_in(self, record: &mut RuntimeRecord) {
        match self {
            Self::Process { identity, command_hash, output } => {
                record.pid = Some(identity.pid);
                record.process_start_ticks = Some(identity.start_ticks);
                record.boot_id = identity.boot_id;
                record.container_id = None;
                record.command_hash = Some(command_hash);
                record.output_path = output;
            }
            Self::Container { id, options_hash, .. } => {
                let port = record.port;
                record.forget_run();
                record.port = port;
                record.container_id = Some(id);
                record.command_hash = Some(options_hash);
            }
        }
    }
}

/// What the run is, for people: `process 1234`, `container llamactl-a-1f2e`.
///
/// ```
/// use llamactl_core::runtime::RunIdentity;
/// let run = RunIdentity::Container { id: "0f1e".into(), name: "llamactl-a-m1".into(), options_hash: "h".into() };
/// assert_eq!(run.to_string(), "container llamactl-a-m1");
/// ```
impl fmt::Display for RunIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Process { identity, .. } => write!(f, "process {}", identity.pid),
            Self::Container { name, .. } => write!(f, "container {name}"),
        }
    }
}

/// A started backend, whatever runs it.
///
/// Dropping it while the backend may still run kills it (process group) or removes it
/// (container): a run is never left behind by accident.
#[async_trait]
pub trait BackendRun: Send + Sync + fmt::Debug {
    /// What to record about the run.
    fn identity(&self) -> RunIdentity;

    /// Waits for the backend to end. Cancel-safe: it can be used in `select!` repeatedly.
    async fn wait(&mut self) -> RunExit;

    /// Stops the backend: a polite request (SIGTERM), up to `grace` to comply, then a kill and
    /// up to `kill_timeout`. Returns how it ended and whether the kill was needed. Everything
    /// that belonged to the run is gone afterwards (as after [`finish`](BackendRun::finish)).
    async fn stop(&mut self, grace: Duration, kill_timeout: Duration) -> (RunExit, bool);

    /// After the backend ended by itself: removes what is left of it (other processes of its
    /// group, the container) within `timeout`, and waits for its last output to reach the log.
    async fn finish(&mut self, timeout: Duration);

    /// Leaves the backend running when this handle is dropped, for the next manager to adopt
    /// (shutdown policy `keep`).
    fn detach(&mut self);
}

/// A run that could not be started: the reason to record, and the message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchError {
    /// Recorded with the `failed` status.
    pub reason: TransitionReason,
    /// What went wrong and, where possible, what to do.
    pub message: String,
}

impl LaunchError {
    /// A launch refused before anything ran (bad settings for this runtime).
    pub fn refused(message: impl Into<String>) -> Self {
        let message = message.into();
        Self { reason: TransitionReason::Refused { error: message.clone() }, message }
    }
}

/// Where the backend listens and how to run it, handed to a runtime.
#[derive(Debug, Clone, Copy)]
pub struct Launch<'a> {
    /// Instance name.
    pub name: &'a str,
    /// Its options.
    pub options: &'a InstanceOptions,
    /// Where clients reach the backend (host address and port).
    pub listen: &'a Listen,
    /// Commands, arguments and environment per backend.
    pub backends: &'a BackendsSettings,
    /// The file a local process writes its output to, so that it can outlive the manager
    /// (`None`: pipes; the process dies with the manager's handle).
    pub output: Option<&'a Path>,
}

/// Why a run left by an earlier manager could not be taken over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdoptError {
    /// The run belongs to another runtime than the one asked to take it over.
    #[error("{run} is not run by the {runtime} runtime")]
    OtherRuntime {
        /// The run, for people.
        run: String,
        /// The runtime that was asked.
        runtime: RuntimeKind,
    },
    /// A local process whose output went to pipes of the manager that started it: there is
    /// nothing to follow its output from.
    #[error("its output went to a pipe of the manager that started it")]
    NoOutputFile,
    /// What runs it cannot be reached (an engine that does not answer).
    #[error("{0}")]
    Unavailable(String),
}

/// Something that runs backends: local processes, a Docker engine. The actor starts and takes
/// over backends only through this trait, given by [`Runtimes::for_options`].
#[async_trait]
pub trait Runtime: Send + Sync + fmt::Debug {
    /// Which runtime this is.
    fn kind(&self) -> RuntimeKind;

    /// Starts the backend `launch` describes, its output going to `logs`. A runtime that does
    /// not answer in time fails the launch rather than holding the instance.
    async fn launch(&self, launch: Launch<'_>, logs: Arc<LogStore>) -> Result<Box<dyn BackendRun>, LaunchError>;

    /// Takes over `run`, a backend an earlier manager started and left running: its end is
    /// watched and its output followed into `logs` from where that manager's log stopped.
    async fn adopt(&self, run: RunIdentity, logs: Arc<LogStore>) -> Result<Box<dyn BackendRun>, AdoptError>;
}
