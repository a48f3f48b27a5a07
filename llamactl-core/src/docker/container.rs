//! A backend running in a Docker container: its exit watched, its output followed, and the
//! container removed when the run ends — never left behind.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::api::{follow_logs, kill_container, remove_container, stop_container, wait_exit};
use crate::logs::LogStore;
use crate::runtime::{BackendRun, RunExit, RunIdentity};

/// A started container.
#[derive(Debug)]
pub struct RunningContainer {
    client: Docker,
    id: String,
    name: String,
    options_hash: String,
    exit: Option<oneshot::Receiver<RunExit>>,
    exited: Option<RunExit>,
    log_task: Option<JoinHandle<()>>,
    /// The container is removed (nothing to clean up when dropped).
    removed: bool,
}

impl RunningContainer {
    /// Starts watching a started container: its exit and its output (into `logs`).
    pub(crate) fn follow(
        client: Docker,
        id: String,
        name: String,
        options_hash: String,
        logs: Arc<LogStore>,
        since: Option<i64>,
    ) -> Self {
        let log_task = tokio::spawn(follow_logs(client.clone(), id.clone(), logs, since));
        let (exit_tx, exit_rx) = oneshot::channel();
        let waiter = client.clone();
        let watched = id.clone();
        tokio::spawn(async move {
            let _ = exit_tx.send(wait_exit(&waiter, &watched).await);
        });
        Self {
            client,
            id,
            name,
            options_hash,
            exit: Some(exit_rx),
            exited: None,
            log_task: Some(log_task),
            removed: false,
        }
    }

    async fn wait_exit(&mut self) -> RunExit {
        if let Some(exit) = self.exited {
            return exit;
        }
        let exit = match self.exit.as_mut() {
            Some(receiver) => receiver.await.unwrap_or_default(),
            None => RunExit::default(),
        };
        self.exit = None;
        self.exited = Some(exit);
        exit
    }

    /// Removes the container (retrying until `timeout`) and lets the log follower finish.
    async fn remove(&mut self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match remove_container(&self.client, &self.id).await {
                Ok(()) => {
                    self.removed = true;
                    break;
                }
                Err(error) if tokio::time::Instant::now() >= deadline => {
                    tracing::error!(container = %self.name, %error, "container could not be removed");
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        if let Some(task) = self.log_task.take() {
            // The stream ends with the container; the last lines are usually there already.
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), task).await.is_err() {
                abort.abort();
            }
        }
    }
}

#[async_trait]
impl BackendRun for RunningContainer {
    fn identity(&self) -> RunIdentity {
        RunIdentity::Container { id: self.id.clone(), name: self.name.clone(), options_hash: self.options_hash.clone() }
    }

    async fn wait(&mut self) -> RunExit {
        self.wait_exit().await
    }

    async fn stop(&mut self, grace: Duration, kill_timeout: Duration) -> (RunExit, bool) {
        if self.exited.is_none() {
            // The engine sends SIGTERM, waits `grace`, then SIGKILL; an engine that does not
            // answer in time gets an explicit kill.
            let bound = grace + kill_timeout;
            if !stop_container(&self.client, &self.id, grace, bound).await {
                kill_container(&self.client, &self.id).await;
            }
        }
        let exit = match tokio::time::timeout(kill_timeout, self.wait_exit()).await {
            Ok(exit) => exit,
            Err(_) => {
                kill_container(&self.client, &self.id).await;
                RunExit::default()
            }
        };
        // Docker reports a SIGKILL as exit code 137 (128 + 9).
        let killed = exit.exit.code == Some(137) && !exit.oom_killed;
        self.remove(kill_timeout).await;
        (exit, killed)
    }

    async fn finish(&mut self, timeout: Duration) {
        self.remove(timeout).await;
    }

    fn detach(&mut self) {
        // Not removed when dropped: the next manager finds it by label.
        self.removed = true;
        if let Some(task) = self.log_task.take() {
            task.abort();
        }
    }
}

impl Drop for RunningContainer {
    fn drop(&mut self) {
        if let Some(task) = self.log_task.take() {
            task.abort();
        }
        if self.removed {
            return;
        }
        // Dropped while it may run (the manager itself is being dropped): remove it in the
        // background. Should the runtime be gone already, the next manager removes it at boot.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            let id = self.id.clone();
            runtime.spawn(async move {
                if let Err(error) = remove_container(&client, &id).await {
                    tracing::error!(container = %id, %error, "container of a dropped run could not be removed");
                }
            });
        }
    }
}
