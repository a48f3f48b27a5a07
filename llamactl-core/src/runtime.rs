//! What runs a backend — a local process or a Docker container — behind one trait, so that
//! the supervisor drives both alike: start, wait for the exit, stop, and leave nothing behind.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::backend::{BackendsSettings, Listen, build_command};
use crate::logs::{LogStore, LogStream};
use crate::process::{ProcessIdentity, RunningProcess};
use crate::{ExitInfo, InstanceOptions, TransitionReason};

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

#[async_trait]
impl BackendRun for RunningProcess {
    fn identity(&self) -> RunIdentity {
        RunIdentity::Process {
            identity: RunningProcess::identity(self).clone(),
            command_hash: self.command_hash().to_owned(),
            output: self.output_path().map(Path::to_path_buf),
        }
    }

    async fn wait(&mut self) -> RunExit {
        RunningProcess::wait(self).await.into()
    }

    async fn stop(&mut self, grace: Duration, kill_timeout: Duration) -> (RunExit, bool) {
        let (exit, killed) = RunningProcess::stop(self, grace, kill_timeout).await;
        (exit.into(), killed)
    }

    async fn finish(&mut self, timeout: Duration) {
        self.reap_group(timeout).await;
    }

    fn detach(&mut self) {
        RunningProcess::detach(self);
    }
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

/// Starts the backend as a local process in its own process group: with an `output` file, so
/// that it can outlive the manager (and be adopted by the next one); without, through pipes.
pub fn launch_process(launch: Launch<'_>, logs: Arc<LogStore>) -> Result<Box<dyn BackendRun>, LaunchError> {
    let Some(command) = build_command(launch.name, launch.options, launch.backends, launch.listen) else {
        return Err(LaunchError::refused("no command to run"));
    };
    logs.push(LogStream::Manager, format!("starting: {command}"));
    let spawned = match launch.output {
        Some(output) => RunningProcess::spawn_detachable(&command, logs, output),
        None => RunningProcess::spawn(&command, logs),
    };
    match spawned {
        Ok(process) => Ok(Box::new(process)),
        Err(error) => Err(LaunchError {
            reason: TransitionReason::SpawnFailed { error: error.source.to_string() },
            message: error.to_string(),
        }),
    }
}
