//! Opening a manager: the configuration checked, every stored instance loaded, runs left by
//! an earlier manager taken over or stopped, and the instances whose desired state is running
//! started again (most recently used first, within the limits).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

use chrono::Utc;
use tokio::sync::{Mutex, broadcast, oneshot, watch};

use super::activity::Activity;
use super::adoption::{self, Adoption, Boot};
use super::config::ManagerConfig;
use super::context::Context;
use super::error::ManagerError;
use super::handle::Handle;
use super::mailbox::Mailbox;
use super::slots::{Limits, Slots};
use super::state::InstanceState;
use super::{Manager, Shared};
use crate::db::{Database, StoredInstance};
use crate::docker::DockerEngine;
use crate::logs::LogStore;
use crate::ports::PortAllocator;
use crate::readiness::ReadinessProbe;
use crate::runtime::Runtimes;
use crate::{DesiredState, InstanceName, TransitionReason};

/// Status notices a slow subscriber may fall behind.
const NOTICES: usize = 1024;

pub(super) fn check_config(config: &ManagerConfig) -> Result<(), ManagerError> {
    let invalid = |field: &str, message: &str| {
        ManagerError::InvalidOptions(crate::OptionsError::Invalid { field: field.into(), message: message.into() })
    };
    if config.port_range.start() > config.port_range.end() || *config.port_range.start() == 0 {
        return Err(invalid("instances.port_range", "must be a non-empty range of ports from 1 to 65535"));
    }
    if config.readiness_interval.is_zero() {
        return Err(invalid("readiness_interval", "must be greater than zero"));
    }
    Ok(())
}

impl Manager {
    /// Loads every instance from `db`, stops backends that an earlier manager left running
    /// (recognised by pid and process start time), and starts again those whose desired state
    /// is running, within the limits.
    pub async fn open(config: ManagerConfig, db: Arc<dyn Database>) -> Result<Self, ManagerError> {
        check_config(&config)?;
        let limits = Limits { max_running: config.max_running_instances, groups: config.group_limits.clone() };
        let manager_id = db.manager_id().await?;
        let ctx = Arc::new(Context {
            ports: PortAllocator::new(config.port_range.clone()),
            slots: Slots::new(limits),
            probe: ReadinessProbe::new(),
            notices: broadcast::channel(NOTICES).0,
            runtime: Runtimes::new(DockerEngine::new(config.docker.clone(), manager_id)),
            db,
            config: std::sync::RwLock::new(Arc::new(config)),
        });
        let manager = Self {
            shared: Arc::new(Shared {
                ctx: ctx.clone(),
                handles: RwLock::new(BTreeMap::new()),
                definitions: Mutex::new(()),
                creating: std::sync::Mutex::default(),
                shutting_down: AtomicBool::new(false),
            }),
        };

        let stored = ctx.db.load_all().await?;
        let mut boot: Vec<(InstanceName, Option<chrono::DateTime<Utc>>)> = Vec::new();
        let mut adopted = Vec::new();
        for outcome in adoption::recover_all(&ctx, stored).await {
            let (instance, adoption) = match outcome {
                Boot::Adopt(instance, mut adoption) => {
                    let (done, recorded) = oneshot::channel();
                    adoption.done = Some(done);
                    adopted.push(recorded);
                    (instance, Some(adoption))
                }
                Boot::Fresh(instance) => (instance, None),
            };
            if let Ok(options) = &instance.options
                && let Some(port) = options.backend.pinned_port()
                && let Err(error) = ctx.ports.pin(instance.name.as_str(), port)
            {
                tracing::warn!(instance = %instance.name, %error, "pinned port conflict in stored instances");
            }
            if adoption.is_none() && instance.runtime.desired_state == DesiredState::Running && instance.options.is_ok()
            {
                boot.push((instance.name.clone(), instance.runtime.ready_at));
            }
            manager.add_handle(instance, adoption);
        }
        // Takeovers are recorded before the manager is handed out.
        futures::future::join_all(adopted).await;
        // Most recently used first, so that under a limit those come back.
        boot.sort_by_key(|(_, ready_at)| std::cmp::Reverse(*ready_at));
        for (name, _) in boot {
            if let Err(error) = manager.start_for(name.as_str(), TransitionReason::Boot).await {
                tracing::warn!(instance = %name, %error, "not started at boot");
            }
        }
        Ok(manager)
    }

    /// Adds an instance's handle; an actor wakes at once only to take over a running backend.
    pub(super) fn add_handle(&self, stored: StoredInstance, adoption: Option<Adoption>) -> Arc<Handle> {
        let ctx = &self.shared.ctx;
        let options = stored.options.map(Arc::new);
        let state = InstanceState {
            id: stored.id,
            options_json: options.as_ref().ok().and_then(|o| o.to_raw_json()),
            options,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
            runtime: stored.runtime,
            listen: None,
            serving: None,
            attempt: 0,
        };
        let log_path = ctx.config().logs_dir.as_ref().map(|dir| dir.join(format!("{}.log", stored.name)));
        let logs = Arc::new(LogStore::new(log_path, ctx.config().log_buffer_lines, ctx.config().log_rotation));
        let handle = Arc::new(Handle {
            name: stored.name.clone(),
            ctx: ctx.clone(),
            mailbox: Arc::new(Mailbox::new()),
            state: watch::Sender::new(state),
            activity: Activity::new(),
            logs,
        });
        if adoption.is_some() {
            handle.mailbox.wake(|| handle.wake(adoption));
        }
        self.write_handles().insert(stored.name, handle.clone());
        handle
    }
}
