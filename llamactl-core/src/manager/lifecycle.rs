//! Starts, stops and restarts asked for by a user (or at boot): admitted under the limits
//! before the actor is told.

use std::time::Duration;

use tokio::time::Instant;

use super::Manager;
use super::command::Command;
use super::error::ManagerError;
use super::state::InstanceInfo;
use crate::{DesiredState, TransitionReason};

impl Manager {
    /// Starts an instance (admitted under the limits, evicting if needed). Returns once the
    /// process is spawned; the status is then `starting`, and `running` once ready.
    pub async fn start(&self, name: &str) -> Result<InstanceInfo, ManagerError> {
        self.start_for(name, TransitionReason::UserStart).await?;
        Ok(self.info_of(&*self.handle(name)?))
    }

    pub(super) async fn start_for(&self, name: &str, reason: TransitionReason) -> Result<(), ManagerError> {
        self.check_running()?;
        let handle = self.handle(name)?;
        let slot = self.admit(&handle, self.admission_deadline(), true).await?;
        handle.ask(|reply| Command::Start { reason, slot, seen_attempt: None, reply }).await
    }

    pub(super) fn admission_deadline(&self) -> Instant {
        let config = self.shared.ctx.config();
        Instant::now() + config.stop_grace + config.kill_timeout + Duration::from_secs(10)
    }

    /// Stops an instance; it stays stopped (also across a manager restart).
    pub async fn stop(&self, name: &str) -> Result<InstanceInfo, ManagerError> {
        let handle = self.handle(name)?;
        handle
            .ask(|reply| Command::Stop {
                reason: TransitionReason::UserStop,
                desired: Some(DesiredState::Stopped),
                reply,
            })
            .await?;
        Ok(self.info_of(&handle))
    }

    /// Restarts a running instance, or starts a stopped one.
    pub async fn restart(&self, name: &str) -> Result<InstanceInfo, ManagerError> {
        self.check_running()?;
        let handle = self.handle(name)?;
        let slot = self.admit(&handle, self.admission_deadline(), true).await?;
        handle.ask(|reply| Command::Restart { slot, reply }).await?;
        Ok(self.info_of(&handle))
    }
}
