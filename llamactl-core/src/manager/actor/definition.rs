//! Changes of the instance's definition that reach its actor: new options (a running backend
//! restarts with them) and deletion (after a stop).

use std::sync::Arc;

use super::Actor;
use crate::manager::error::ManagerError;
use crate::manager::state::InstanceState;
use crate::{DesiredState, InstanceOptions, InstanceStatus, TransitionReason};

impl Actor {
    /// Stores the new options and, if a backend runs, starts it again with them.
    pub(super) async fn update(&mut self, options: InstanceOptions) -> Result<InstanceState, ManagerError> {
        let stored = self.ctx.db.save(&self.name, &options).await?;
        self.ctx.slots.set_group(self.name.as_str(), options.group.as_deref());
        self.state.set_options(Ok(Arc::new(options)));
        self.state.updated_at = stored.updated_at;
        self.publish();
        if matches!(self.state.runtime.status, InstanceStatus::Running | InstanceStatus::Starting) {
            self.stop_run(TransitionReason::OptionsChanged).await;
            self.state.runtime.restart_count = 0;
            // The new options may be unrunnable; spawn records that as the status.
            let _ = self.spawn(TransitionReason::OptionsChanged, None, false).await;
        }
        Ok(self.state.clone())
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
