//! The local process runtime: a backend started as a process of this machine, in its own
//! session and process group, or taken over from the output file an earlier manager left.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{AdoptedProcess, RunningProcess};
use crate::backend::build_command;
use crate::logs::{LogStore, LogStream};
use crate::runtime::{AdoptError, BackendRun, Launch, LaunchError, RunExit, RunIdentity, Runtime, RuntimeKind};
use crate::{BackendType, TransitionReason};

/// The runtime of local processes.
///
/// ```
/// use llamactl_core::process::LocalProcesses;
/// use llamactl_core::runtime::{Runtime, RuntimeKind};
/// assert_eq!(LocalProcesses.kind(), RuntimeKind::Process);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalProcesses;

#[async_trait]
impl Runtime for LocalProcesses {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Process
    }

    async fn launch(&self, launch: Launch<'_>, logs: Arc<LogStore>) -> Result<Box<dyn BackendRun>, LaunchError> {
        launch_process(launch, logs)
    }

    /// Follows the process's output file from where the last manager stopped reading; a
    /// process whose output went to pipes cannot be taken over.
    async fn adopt(&self, run: RunIdentity, logs: Arc<LogStore>) -> Result<Box<dyn BackendRun>, AdoptError> {
        match run {
            RunIdentity::Process { identity, command_hash, output: Some(output) } => {
                Ok(Box::new(AdoptedProcess::adopt(identity, command_hash, output, logs)))
            }
            RunIdentity::Process { output: None, .. } => Err(AdoptError::NoOutputFile),
            other => Err(AdoptError::OtherRuntime { run: other.to_string(), runtime: RuntimeKind::Process }),
        }
    }
}

/// Starts the backend as a local process in its own process group: with an `output` file, so
/// that it can outlive the manager (and be adopted by the next one); without, through pipes.
pub fn launch_process(launch: Launch<'_>, logs: Arc<LogStore>) -> Result<Box<dyn BackendRun>, LaunchError> {
    let Some(mut command) = build_command(launch.name, launch.options, launch.backends, launch.listen) else {
        return Err(LaunchError::refused("no command to run"));
    };
    if let Some(preset) = write_preset(&launch)? {
        command.args.extend(["--models-preset".to_owned(), preset.display().to_string()]);
    }
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

/// Writes a llama.cpp instance's `preset_ini` to the file its router reads (`--models-preset`),
/// [`preset_path`]. Written at every start (and by a live preset reload), so an edit takes
/// effect.
fn write_preset(launch: &Launch<'_>) -> Result<Option<PathBuf>, LaunchError> {
    let Some(text) = &launch.options.preset_ini else { return Ok(None) };
    if launch.options.backend.backend_type() != BackendType::LlamaCpp {
        return Ok(None);
    }
    let path = preset_path(launch.output, launch.name);
    write_preset_file(&path, text).map_err(LaunchError::refused)?;
    Ok(Some(path))
}

/// Where instance `name`'s router presets are written: beside its output file
/// (`<logs dir>/<name>.preset.ini`), else in the temporary folder.
pub(crate) fn preset_path(output: Option<&Path>, name: &str) -> PathBuf {
    let file = format!("{name}.preset.ini");
    match output.and_then(Path::parent) {
        Some(dir) => dir.join(file),
        None => std::env::temp_dir().join(format!("llamactl-{}-{file}", std::process::id())),
    }
}

/// Writes `text` to `path`, creating its folder; the error says which file.
pub(crate) fn write_preset_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create the folder {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write the preset file {}: {e}", path.display()))
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
