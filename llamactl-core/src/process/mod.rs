//! Backends as local processes: each in its own process group, its output captured line by
//! line into the instance's log, stopped with SIGTERM to the group, a grace period, then
//! SIGKILL, and never left behind. [`LocalProcesses`] is this runtime's
//! [`Runtime`](crate::runtime::Runtime).

mod adopted;
mod group;
mod identity;
pub(crate) mod runtime;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::process::Command;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use adopted::AdoptedProcess;
pub use group::{GroupStop, group_alive, signal_group, terminate_group, wait_group_gone};
pub use identity::{ProcessIdentity, boot_id, command_hash, running_command_hash};
pub use runtime::{LocalProcesses, launch_process};

use crate::ExitInfo;
use crate::backend::CommandLine;
use crate::logs::output_file::{follow_output, open_for_backend};
use crate::logs::{LogStore, LogStream, pump_lines};

/// Where a process's output goes on its way to the log.
#[derive(Debug)]
pub(crate) enum Output {
    /// Pipes, read by one task per stream (the process dies with a pipe's reader... or gets
    /// SIGPIPE: it cannot outlive the manager).
    Pipes(Vec<JoinHandle<()>>),
    /// A file the process appends to, followed by a task (the process can outlive the manager).
    File { task: Option<JoinHandle<()>>, stop: CancellationToken },
}

impl Output {
    /// Follows `path` from `offset` into `logs`.
    pub(crate) fn follow_file(path: PathBuf, offset: u64, logs: Arc<LogStore>) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(follow_output(path, offset, logs, stop.clone()));
        Self::File { task: Some(task), stop }
    }

    /// Waits (at most `timeout`) until everything the process wrote is in the log.
    pub(crate) async fn drain(&mut self, timeout: Duration) {
        match self {
            Self::Pipes(pumps) => {
                let pumps = std::mem::take(pumps);
                let _ = tokio::time::timeout(timeout, futures::future::join_all(pumps)).await;
            }
            Self::File { task, stop } => {
                stop.cancel();
                if let Some(task) = task.take() {
                    let _ = tokio::time::timeout(timeout, task).await;
                }
            }
        }
    }

    fn abort(&mut self) {
        match self {
            Self::Pipes(pumps) => pumps.iter().for_each(JoinHandle::abort),
            // A cancelled follower reads what is left and records its offset.
            Self::File { stop, .. } => stop.cancel(),
        }
    }
}

/// A spawned backend process.
#[derive(Debug)]
pub struct RunningProcess {
    identity: ProcessIdentity,
    command_hash: String,
    output_path: Option<PathBuf>,
    exit: Option<oneshot::Receiver<ExitInfo>>,
    exited: Option<ExitInfo>,
    output: Output,
    /// Kills the whole group if this handle is dropped while the group may still run.
    armed: bool,
}

/// `setsid`, when the system has it: a backend started through it gets a session of its own
/// (no controlling terminal, so closing the manager's terminal does not reach it).
fn setsid_program() -> Option<&'static str> {
    ["/usr/bin/setsid", "/bin/setsid"].into_iter().find(|p| Path::new(p).exists())
}

/// Why a process could not be spawned.
#[derive(Debug, thiserror::Error)]
#[error("cannot run {program}: {source}")]
pub struct SpawnError {
    /// The program.
    pub program: String,
    /// The operating system's error.
    #[source]
    pub source: std::io::Error,
}

/// Waits for `child` in the background and sends how it ended.
fn watch_exit(mut child: tokio::process::Child, pid: i32) -> oneshot::Receiver<ExitInfo> {
    let (exit_tx, exit_rx) = oneshot::channel();
    tokio::spawn(async move {
        let info = match child.wait().await {
            Ok(status) => ExitInfo::from_status(status),
            Err(error) => {
                tracing::warn!(pid, %error, "cannot wait for backend process");
                ExitInfo::default()
            }
        };
        let _ = exit_tx.send(info);
    });
    exit_rx
}

impl RunningProcess {
    /// Spawns `command` in a new process group, with standard input closed and both output
    /// streams read line by line into `logs`.
    pub fn spawn(command: &CommandLine, logs: Arc<LogStore>) -> Result<Self, SpawnError> {
        let mut child = Command::new(&command.program)
            .args(&command.args)
            .envs(&command.environment)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| SpawnError { program: command.program.clone(), source })?;
        let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) else {
            return Err(SpawnError {
                program: command.program.clone(),
                source: std::io::Error::other("the process exited before its id was read"),
            });
        };
        // Read right away: the start time only identifies the process while it lives.
        let identity = ProcessIdentity::of(pid).unwrap_or(ProcessIdentity { pid, start_ticks: 0, boot_id: boot_id() });
        let mut pumps = Vec::with_capacity(2);
        if let Some(stdout) = child.stdout.take() {
            pumps.push(tokio::spawn(pump_lines(stdout, LogStream::Stdout, logs.clone())));
        }
        if let Some(stderr) = child.stderr.take() {
            pumps.push(tokio::spawn(pump_lines(stderr, LogStream::Stderr, logs)));
        }
        Ok(Self {
            identity,
            command_hash: command_hash(&command.program, &command.args),
            output_path: None,
            exit: Some(watch_exit(child, pid)),
            exited: None,
            output: Output::Pipes(pumps),
            armed: true,
        })
    }

    /// Spawns `command` so that it can outlive the manager: in a session and process group of
    /// its own (through `setsid` where the system has it), its output appended to `output`
    /// (followed into `logs`), and nothing tying it to the manager's life but this handle —
    /// which still kills its group when dropped, unless [`detach`](Self::detach)ed.
    pub fn spawn_detachable(command: &CommandLine, logs: Arc<LogStore>, output: &Path) -> Result<Self, SpawnError> {
        let spawn_error = |source| SpawnError { program: command.program.clone(), source };
        // Found first, so that a missing program is a spawn error, not an exit of `setsid`.
        let path = command.environment.get("PATH").cloned().or_else(|| std::env::var("PATH").ok());
        let cwd = std::env::current_dir().map_err(spawn_error)?;
        let program = which::which_in(&command.program, path, cwd).map_err(|e| {
            spawn_error(std::io::Error::new(std::io::ErrorKind::NotFound, format!("not found or not executable ({e})")))
        })?;
        let file = open_for_backend(output).map_err(spawn_error)?;
        let offset = file.metadata().map(|m| m.len()).map_err(spawn_error)?;
        let errors = file.try_clone().map_err(spawn_error)?;
        let mut builder = match setsid_program() {
            Some(setsid) => {
                // Not a group leader when it execs, so setsid needs no fork: the pid stays.
                let mut builder = Command::new(setsid);
                builder.arg(&program).args(&command.args);
                builder
            }
            None => {
                let mut builder = Command::new(&program);
                builder.args(&command.args).process_group(0);
                builder
            }
        };
        let child = builder
            .envs(&command.environment)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(errors))
            .kill_on_drop(false)
            .spawn()
            .map_err(spawn_error)?;
        let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) else {
            return Err(spawn_error(std::io::Error::other("the process exited before its id was read")));
        };
        let identity = ProcessIdentity::of(pid).unwrap_or(ProcessIdentity { pid, start_ticks: 0, boot_id: boot_id() });
        let follower = Output::follow_file(output.to_path_buf(), offset, logs);
        Ok(Self {
            identity,
            command_hash: command_hash(&command.program, &command.args),
            output_path: Some(output.to_path_buf()),
            exit: Some(watch_exit(child, pid)),
            exited: None,
            output: follower,
            armed: true,
        })
    }

    /// Lets the process run on when this handle is dropped, for the next manager to adopt; the
    /// output follower records how far it read.
    pub fn detach(&mut self) {
        self.armed = false;
        self.output.abort();
    }

    /// Process id (also the process group id).
    pub fn pid(&self) -> i32 {
        self.identity.pid
    }

    /// Pid, start time and boot id, to record.
    pub fn identity(&self) -> &ProcessIdentity {
        &self.identity
    }

    /// [`command_hash`] of its command line.
    pub fn command_hash(&self) -> &str {
        &self.command_hash
    }

    /// The file its output goes to, when it can outlive the manager.
    pub fn output_path(&self) -> Option<&Path> {
        self.output_path.as_deref()
    }

    /// Waits for the process to exit. Cancel-safe: it can be used in `select!` repeatedly.
    pub async fn wait(&mut self) -> ExitInfo {
        if let Some(info) = self.exited {
            return info;
        }
        let info = match self.exit.as_mut() {
            Some(receiver) => receiver.await.unwrap_or_default(),
            None => ExitInfo::default(),
        };
        self.exit = None;
        self.exited = Some(info);
        info
    }

    /// Waits until both output streams are drained (bounded by `timeout`), so that the last
    /// lines a process wrote before exiting are in the log.
    pub async fn drain_output(&mut self, timeout: Duration) {
        self.output.drain(timeout).await;
    }

    /// Stops the process group: SIGTERM, up to `grace` for the process to exit, then SIGKILL
    /// and up to `kill_timeout`; finally any process left in the group is killed too. Returns
    /// how the process ended and whether SIGKILL was needed.
    pub async fn stop(&mut self, grace: Duration, kill_timeout: Duration) -> (ExitInfo, bool) {
        let pgid = self.pid();
        let mut killed = false;
        let exit = if let Some(info) = self.exited {
            info
        } else {
            signal_group(pgid, Signal::SIGTERM);
            match tokio::time::timeout(grace, self.wait()).await {
                Ok(info) => info,
                Err(_) => {
                    killed = true;
                    signal_group(pgid, Signal::SIGKILL);
                    tokio::time::timeout(kill_timeout, self.wait()).await.unwrap_or_default()
                }
            }
        };
        self.reap_group(kill_timeout).await;
        (exit, killed)
    }

    /// After the leader exited: kills whatever is left of its group and waits for it to go.
    pub async fn reap_group(&mut self, timeout: Duration) {
        let pgid = self.pid();
        if group_alive(pgid) {
            signal_group(pgid, Signal::SIGKILL);
        }
        if wait_group_gone(pgid, timeout).await {
            self.armed = false;
        } else {
            tracing::error!(pgid, "processes of a stopped backend survived SIGKILL");
        }
        self.drain_output(Duration::from_millis(200)).await;
    }
}

impl Drop for RunningProcess {
    fn drop(&mut self) {
        if self.armed {
            signal_group(self.pid(), Signal::SIGKILL);
        }
        self.output.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn sh(script: &str) -> CommandLine {
        CommandLine { program: "/bin/sh".into(), args: vec!["-c".into(), script.into()], environment: BTreeMap::new() }
    }

    fn logs() -> Arc<LogStore> {
        Arc::new(LogStore::new(None, 100, Default::default()))
    }

    #[tokio::test]
    async fn captures_both_streams_and_the_exit_code() {
        let logs = logs();
        let mut command = sh("echo out; echo err >&2; echo \"$GREETING\"; exit 3");
        command.environment.insert("GREETING".into(), "hi".into());
        let mut process = RunningProcess::spawn(&command, logs.clone()).unwrap();
        assert_eq!(process.wait().await, ExitInfo { code: Some(3), signal: None });
        process.drain_output(Duration::from_secs(5)).await;
        let mut texts: Vec<_> = logs.tail(10).iter().map(|l| (l.stream, l.text.clone())).collect();
        texts.sort_by_key(|(_, t)| t.clone());
        assert_eq!(
            texts,
            [(LogStream::Stderr, "err".into()), (LogStream::Stdout, "hi".into()), (LogStream::Stdout, "out".into())]
        );
    }

    #[tokio::test]
    async fn runs_in_its_own_process_group() {
        let process = RunningProcess::spawn(&sh("sleep 30"), logs()).unwrap();
        let stat = procfs::process::Process::new(process.pid()).unwrap().stat().unwrap();
        assert_eq!(stat.pgrp, process.pid());
        assert_ne!(stat.pgrp, nix::unistd::getpgrp().as_raw());
    }

    #[tokio::test]
    async fn stop_takes_the_whole_group_even_when_sigterm_is_ignored() {
        // The leader ignores SIGTERM and has a child that ignores it too.
        let script = "trap '' TERM; (trap '' TERM; sleep 60) & sleep 60";
        let mut process = RunningProcess::spawn(&sh(script), logs()).unwrap();
        let pgid = process.pid();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (exit, killed) = process.stop(Duration::from_millis(300), Duration::from_secs(5)).await;
        assert!(killed);
        assert_eq!(exit.signal, Some(Signal::SIGKILL as i32));
        assert!(!group_alive(pgid), "no process of the group is left");
    }

    #[tokio::test]
    async fn a_polite_process_stops_on_sigterm() {
        let mut process = RunningProcess::spawn(&sh("sleep 60"), logs()).unwrap();
        let (exit, killed) = process.stop(Duration::from_secs(5), Duration::from_secs(5)).await;
        assert!(!killed);
        assert_eq!(exit.signal, Some(Signal::SIGTERM as i32));
    }

    #[tokio::test]
    async fn dropping_the_handle_kills_the_group() {
        let process = RunningProcess::spawn(&sh("(sleep 60) & sleep 60"), logs()).unwrap();
        let pgid = process.pid();
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(process);
        assert!(wait_group_gone(pgid, Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error() {
        let command =
            CommandLine { program: "/nonexistent/llama-server".into(), args: vec![], environment: BTreeMap::new() };
        let err = RunningProcess::spawn(&command, logs()).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/llama-server"), "{err}");
    }

    #[tokio::test]
    async fn identity_tells_a_reused_pid_apart() {
        let mut process = RunningProcess::spawn(&sh("sleep 60"), logs()).unwrap();
        let identity = process.identity().clone();
        assert!(identity.is_running());
        process.stop(Duration::from_secs(5), Duration::from_secs(5)).await;
        assert!(!identity.is_running());
        let wrong_boot = ProcessIdentity {
            boot_id: Some("another-boot".into()),
            ..ProcessIdentity::of(std::process::id() as i32).unwrap()
        };
        assert!(!wrong_boot.is_running());
    }

    #[tokio::test]
    async fn terminate_group_stops_a_process_that_is_not_our_child() {
        // A detached grandchild: the shell exits at once, leaving `sleep` in the group.
        let mut shell = RunningProcess::spawn(&sh("sleep 60 & echo $!"), logs()).unwrap();
        let pgid = shell.pid();
        shell.wait().await;
        shell.armed = false; // keep the orphan alive for the test
        drop(shell);
        assert!(group_alive(pgid));
        let outcome = terminate_group(pgid, Duration::from_secs(5), Duration::from_secs(5)).await;
        assert_eq!(outcome, GroupStop { killed: false, gone: true });
    }
}
