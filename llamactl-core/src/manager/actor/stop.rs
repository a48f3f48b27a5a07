//! Ending a run on purpose: a stop (user, shutdown, idle timeout), an eviction for another
//! instance, the kill of a backend that did not get ready, and leaving the backend to the next
//! manager (detach). A stop is done inline: commands queue behind it.

use std::time::Duration;

use super::Actor;
use crate::logs::LogStream;
use crate::runtime::RunExit;
use crate::{DesiredState, ExitInfo, InstanceStatus, TransitionReason};

impl Actor {
    /// SIGTERM, grace, SIGKILL on the current run (its process group or container).
    pub(super) async fn kill_run(&mut self) -> RunExit {
        let (grace, kill) = (self.ctx.config().stop_grace, self.ctx.config().kill_timeout);
        match self.run.as_mut() {
            Some(run) => {
                let (exit, killed) = run.process.stop(grace, kill).await;
                if killed {
                    self.logs.push(LogStream::Manager, format!("did not exit within {grace:?} of SIGTERM; killed"));
                }
                exit
            }
            None => RunExit::default(),
        }
    }

    /// Stops the process of a starting or running instance, passing through `stopping`.
    pub(super) async fn stop_run(&mut self, reason: TransitionReason) -> ExitInfo {
        self.activity.close();
        self.transition(InstanceStatus::Stopping, reason).await;
        let exit = self.kill_run().await.exit;
        self.run = None;
        self.clear_process(exit);
        exit
    }

    /// Stops the instance, whatever it is doing, and sets its desired state (`None` keeps it).
    pub(super) async fn stop(&mut self, reason: TransitionReason, desired: Option<DesiredState>) {
        if let Some(desired) = desired {
            self.state.runtime.desired_state = desired;
        }
        match self.state.runtime.status {
            InstanceStatus::Running | InstanceStatus::Starting | InstanceStatus::Stopping => {
                let exit = self.stop_run(reason.clone()).await;
                self.logs.push(LogStream::Manager, format!("stopped ({exit})"));
                self.transition(InstanceStatus::Stopped, reason).await;
            }
            InstanceStatus::Restarting | InstanceStatus::Failed => {
                self.restart_due = None;
                self.transition(InstanceStatus::Stopped, reason).await;
            }
            InstanceStatus::Stopped => {
                if desired.is_some() {
                    self.persist_runtime().await;
                    self.publish();
                }
            }
        }
    }

    /// The idle time may be over: stops the instance if no request came meanwhile.
    pub(super) async fn on_idle_check(&mut self) {
        let Some(idle) = self.settings().map(|s| s.idle_timeout) else { return };
        if !idle.is_zero() && self.activity.close_if_idle(idle) {
            self.stop(TransitionReason::IdleTimeout, Some(DesiredState::Stopped)).await;
        }
    }

    /// Stops the instance to make room for `by`, only if it is running, not pinned and idle;
    /// otherwise says why not.
    pub(super) async fn evict(&mut self, by: String) -> Result<(), String> {
        if self.state.runtime.status != InstanceStatus::Running {
            return Err(format!("{} is {}", self.name, self.state.runtime.status));
        }
        let idle = self.settings().map(|s| s.idle_timeout).unwrap_or_default();
        if idle.is_zero() {
            return Err(format!("{} is pinned (idle_timeout 0)", self.name));
        }
        if !self.activity.close_if_idle(Duration::ZERO) {
            return Err(format!("{} has requests in flight", self.name));
        }
        self.stop(TransitionReason::Evicted { by }, Some(DesiredState::Stopped)).await;
        Ok(())
    }

    /// Leaves the backend running for the next manager: its record stays as it is (running,
    /// with its process or container), which is what the next manager takes over.
    pub(super) fn detach(&mut self) {
        self.activity.close();
        if let Some(mut run) = self.run.take() {
            run.process.detach();
            self.logs.push(LogStream::Manager, "manager shutting down: left running for the next manager".to_owned());
        }
        self.restart_due = None;
    }
}
