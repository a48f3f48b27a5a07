//! Changing what is defined: creating, updating and deleting instances, with their pinned
//! ports, serialised with each other (the definitions lock) and within `max_instances`.

use super::Manager;
use super::command::Command;
use super::error::ManagerError;
use super::state::InstanceInfo;
use crate::{InstanceName, InstanceOptions};

impl Manager {
    /// Creates a stopped instance after validating its options (errors name the field) and its
    /// pinned port (not pinned by another instance), within `max_instances`.
    ///
    /// Concurrent creates of different names are written together (they share one commit).
    /// Runs in a task of its own, so a caller that goes away half-way (an HTTP client hanging
    /// up) cannot leave a stored instance without its actor or a name reserved forever.
    pub async fn create(&self, name: InstanceName, options: InstanceOptions) -> Result<InstanceInfo, ManagerError> {
        self.check_running()?;
        options.validate()?;
        let manager = self.clone();
        match tokio::spawn(async move { manager.create_stored(name, options).await }).await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(ManagerError::ShuttingDown),
        }
    }

    async fn create_stored(&self, name: InstanceName, options: InstanceOptions) -> Result<InstanceInfo, ManagerError> {
        let ctx = &self.shared.ctx;
        let pinned = options.backend.pinned_port();
        {
            let _definitions = self.shared.definitions.lock().await;
            let mut creating = self.shared.creating.lock().unwrap_or_else(|p| p.into_inner());
            let handles = self.read_handles();
            if handles.contains_key(name.as_str()) || creating.contains(&name) {
                return Err(ManagerError::AlreadyExists(name.to_string()));
            }
            // Counted under the lock with the creates under way: concurrent creates at the
            // limit cannot all pass.
            if let Some(max) = ctx.config().max_instances
                && handles.len() + creating.len() >= max
            {
                return Err(ManagerError::InstanceLimit { max });
            }
            drop(handles);
            if let Some(port) = pinned {
                ctx.ports.pin(name.as_str(), port)?;
            }
            creating.insert(name.clone());
        }
        // The write runs outside the lock: creates of other names queue their writes meanwhile.
        let stored = ctx.db.create(&name, &options).await;
        let _definitions = self.shared.definitions.lock().await;
        self.shared.creating.lock().unwrap_or_else(|p| p.into_inner()).remove(&name);
        match stored {
            Ok(stored) => {
                let handle = self.add_handle(stored, None);
                Ok(self.info_of(&handle))
            }
            Err(error) => {
                if let Some(port) = pinned {
                    ctx.ports.unpin(name.as_str(), port);
                }
                Err(match error {
                    crate::DbError::AlreadyExists(n) => ManagerError::AlreadyExists(n),
                    other => other.into(),
                })
            }
        }
    }

    /// Replaces an instance's options; a running instance restarts with the new ones.
    pub async fn update(&self, name: &str, options: InstanceOptions) -> Result<InstanceInfo, ManagerError> {
        self.check_running()?;
        options.validate()?;
        let _definitions = self.shared.definitions.lock().await;
        let handle = self.handle(name)?;
        let ports = &self.shared.ctx.ports;
        let old = handle.state.borrow().options.as_ref().ok().and_then(|o| o.backend.pinned_port());
        let new = options.backend.pinned_port();
        if let Some(port) = new.filter(|p| Some(*p) != old) {
            ports.pin(name, port)?;
        }
        match handle.ask(|reply| Command::Update { options: Box::new(options), reply }).await {
            Ok(_) => {
                if let Some(port) = old.filter(|p| Some(*p) != new) {
                    ports.unpin(name, port);
                }
                Ok(self.info_of(&handle))
            }
            Err(error) => {
                if let Some(port) = new.filter(|p| Some(*p) != old) {
                    ports.unpin(name, port);
                }
                Err(error)
            }
        }
    }

    /// Stops (if needed) and deletes an instance with its runtime state and events.
    pub async fn delete(&self, name: &str) -> Result<(), ManagerError> {
        let handle = self.handle(name)?;
        // The stop may take the whole grace period: other definitions are not held up meanwhile.
        handle.ask(|reply| Command::Delete { reply }).await?;
        let _definitions = self.shared.definitions.lock().await;
        let pinned = handle.state.borrow().options.as_ref().ok().and_then(|o| o.backend.pinned_port());
        self.write_handles().remove(name);
        if let Some(port) = pinned {
            self.shared.ctx.ports.unpin(name, port);
        }
        Ok(())
    }
}
