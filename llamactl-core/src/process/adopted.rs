//! A backend process started by an earlier manager and taken over by this one: not our child,
//! so its exit is noticed by watching its identity, and its output is followed from the file
//! it writes to.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::Signal;

use super::{Output, ProcessIdentity, group_alive, signal_group, terminate_group, wait_group_gone};
use crate::logs::LogStore;
use crate::logs::output_file::read_offset;
use crate::runtime::{BackendRun, RunExit, RunIdentity};

/// How often an adopted process is checked for having ended.
const WATCH: Duration = Duration::from_millis(50);

/// An adopted backend process.
#[derive(Debug)]
pub struct AdoptedProcess {
    identity: ProcessIdentity,
    command_hash: String,
    output_path: PathBuf,
    output: Output,
    /// Kills its group if dropped while it may run (unless detached again).
    armed: bool,
    ended: bool,
}

impl AdoptedProcess {
    /// Takes over `identity`, following its output file `output` from where the last manager
    /// stopped reading.
    pub fn adopt(identity: ProcessIdentity, command_hash: String, output: PathBuf, logs: Arc<LogStore>) -> Self {
        let offset = read_offset(&output);
        Self {
            identity,
            command_hash,
            output_path: output.clone(),
            output: Output::follow_file(output, offset, logs),
            armed: true,
            ended: false,
        }
    }
}

#[async_trait]
impl BackendRun for AdoptedProcess {
    fn identity(&self) -> RunIdentity {
        RunIdentity::Process {
            identity: self.identity.clone(),
            command_hash: self.command_hash.clone(),
            output: Some(self.output_path.clone()),
        }
    }

    /// How it ended is unknown (it is not our child): the exit has neither code nor signal.
    async fn wait(&mut self) -> RunExit {
        while !self.ended && self.identity.is_running() {
            tokio::time::sleep(WATCH).await;
        }
        self.ended = true;
        RunExit::default()
    }

    async fn stop(&mut self, grace: Duration, kill_timeout: Duration) -> (RunExit, bool) {
        let stopped = terminate_group(self.identity.pid, grace, kill_timeout).await;
        self.ended = true;
        self.armed = !stopped.gone;
        self.output.drain(Duration::from_millis(500)).await;
        (RunExit::default(), stopped.killed)
    }

    async fn finish(&mut self, timeout: Duration) {
        let pgid = self.identity.pid;
        if group_alive(pgid) {
            signal_group(pgid, Signal::SIGKILL);
        }
        if wait_group_gone(pgid, timeout).await {
            self.armed = false;
        }
        self.output.drain(Duration::from_millis(500)).await;
    }

    fn detach(&mut self) {
        self.armed = false;
        self.output.abort();
    }
}

impl Drop for AdoptedProcess {
    fn drop(&mut self) {
        if self.armed && self.identity.is_running() {
            signal_group(self.identity.pid, Signal::SIGKILL);
        }
        self.output.abort();
    }
}
