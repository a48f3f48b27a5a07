//! Changes of the instance's definition that reach its actor: new options (a running backend
//! takes them: restarted, or a router's presets re-read) and deletion (after a stop).

use std::sync::Arc;

use super::Actor;
use crate::logs::LogStream;
use crate::manager::error::ManagerError;
use crate::manager::state::InstanceState;
use crate::options::{OptionsChange, options_change};
use crate::process::runtime::{preset_path, write_preset_file};
use crate::router::RouterClient;
use crate::runtime::RuntimeKind;
use crate::{DesiredState, InstanceOptions, InstanceStatus, TransitionReason};

impl Actor {
    /// Stores the new options and, if a backend runs, has it take them ([`options_change`]): a
    /// change of what runs drains the requests in flight and starts it again, a router's new
    /// presets are re-read in place, llamactl's own settings need nothing of the backend.
    pub(super) async fn update(&mut self, options: InstanceOptions) -> Result<InstanceState, ManagerError> {
        let change = match &self.state.options {
            Ok(old) => options_change(old, &options),
            Err(_) => OptionsChange::Restart,
        };
        let stored = self.ctx.db.save(&self.name, &options).await?;
        self.ctx.slots.set_group(self.name.as_str(), options.group.as_deref());
        let options = Arc::new(options);
        self.state.set_options(Ok(options.clone()));
        self.state.updated_at = stored.updated_at;
        self.publish();
        let status = self.state.runtime.status;
        let change = match change {
            OptionsChange::ReloadPresets if status == InstanceStatus::Running => self.reload_presets(&options).await,
            OptionsChange::ReloadPresets => OptionsChange::Restart,
            other => other,
        };
        if change == OptionsChange::Restart && matches!(status, InstanceStatus::Running | InstanceStatus::Starting) {
            self.drain().await;
            self.stop_run(TransitionReason::OptionsChanged).await;
            self.state.runtime.restart_count = 0;
            // The new options may be unrunnable; spawn records that as the status.
            let _ = self.spawn(TransitionReason::OptionsChanged, None, false).await;
        }
        Ok(self.state.clone())
    }

    /// Before a restart for new options: no new request enters (they wait for the restart),
    /// the ones in flight get up to the drain timeout to finish.
    async fn drain(&mut self) {
        self.activity.close();
        let timeout = self.ctx.config().drain_timeout;
        if !self.activity.drained(timeout).await {
            let (in_flight, _) = self.activity.snapshot();
            self.logs.push(
                LogStream::Manager,
                format!(
                    "{in_flight} requests still in flight after {timeout:?}; restarting for the new options anyway"
                ),
            );
        }
    }

    /// Writes a running router's new presets and has it re-read them; what to do instead when
    /// that cannot be done here (a container's router, a router that does not answer): restart.
    async fn reload_presets(&mut self, options: &InstanceOptions) -> OptionsChange {
        let (Some(text), Some(listen)) = (&options.preset_ini, self.state.listen.clone()) else {
            return OptionsChange::Restart;
        };
        if self.ctx.runtime.kind_for(options) != RuntimeKind::Process {
            return OptionsChange::Restart;
        }
        let path = preset_path(self.output_path().as_deref(), self.name.as_str());
        let reloaded = match write_preset_file(&path, text) {
            Ok(()) => RouterClient::new(listen.base_url()).reload().await.map_err(|e| e.to_string()),
            Err(error) => Err(error),
        };
        match reloaded {
            Ok(models) => {
                self.logs.push(LogStream::Manager, format!("presets re-read by the router: {} models", models.len()));
                OptionsChange::Nothing
            }
            Err(error) => {
                self.logs.push(LogStream::Manager, format!("presets not re-read ({error}); restarting"));
                OptionsChange::Restart
            }
        }
    }

    /// Stops the instance and deletes it from the database.
    pub(super) async fn delete(&mut self) -> Result<(), ManagerError> {
        self.stop(TransitionReason::UserStop, Some(DesiredState::Stopped)).await;
        if !self.ctx.db.delete(self.name.as_str()).await? {
            return Err(ManagerError::NotFound(self.name.to_string()));
        }
        Ok(())
    }
}
