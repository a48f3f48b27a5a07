//! The supervisor: one actor per instance owns its state (awake only while the instance has
//! work, see `mailbox`); the [`Manager`] routes requests to them. Its parts, by what they
//! decide: `boot` (opening: load, take over, start again), `definitions` (create, update,
//! delete), `lifecycle` (user starts and stops), `on_demand` (the lease a request takes),
//! `admission` (running limits and LRU eviction), `handle` (how commands reach an actor).

mod activity;
mod actor;
mod admission;
mod adoption;
mod boot;
mod cold_start_queue;
mod command;
mod config;
mod context;
mod definitions;
mod error;
mod handle;
mod lifecycle;
mod mailbox;
mod on_demand;
mod restart_policy;
mod slots;
mod state;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use chrono::Utc;
use tokio::sync::{Mutex, broadcast, watch};
use tokio::time::Instant;

pub use activity::ActivityGuard;
pub use cold_start_queue::{ColdStartQueue, QueueFull, QueuePlace};
pub use config::{InstanceSettings, ManagerConfig, ShutdownPolicy};
pub use error::{Limit, ManagerError};
pub use on_demand::{LeaseRequest, Rights};
pub use restart_policy::restart_delay;
pub use state::{InstanceInfo, InstanceState, InstanceView, Lease, Serving, StatusNotice};

use command::Command;
use context::Context;
use handle::{Handle, view_of};

use crate::db::{Database, EventQuery, InstanceEvent};
use crate::docker::DockerEngine;
use crate::logs::LogStore;
use crate::{InstanceName, TransitionReason};

#[derive(Debug)]
struct Shared {
    ctx: Arc<Context>,
    handles: RwLock<BTreeMap<InstanceName, Arc<Handle>>>,
    /// Serialises changes of definitions (create, update, delete) with their port pins.
    definitions: Mutex<()>,
    /// Names being created (stored, not yet in `handles`): taken, but not found yet.
    creating: std::sync::Mutex<std::collections::HashSet<InstanceName>>,
    shutting_down: AtomicBool,
}

/// Supervises instances. Cheap to clone; all clones drive the same instances. Dropping the last
/// clone without [`shutdown`](Manager::shutdown) still kills every backend's process group.
///
/// See the [crate documentation](crate) for an example.
#[derive(Debug, Clone)]
pub struct Manager {
    shared: Arc<Shared>,
}

impl Manager {
    fn read_handles(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<InstanceName, Arc<Handle>>> {
        self.shared.handles.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_handles(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<InstanceName, Arc<Handle>>> {
        self.shared.handles.write().unwrap_or_else(|p| p.into_inner())
    }

    fn handle(&self, name: &str) -> Result<Arc<Handle>, ManagerError> {
        self.read_handles().get(name).cloned().ok_or_else(|| ManagerError::NotFound(name.to_owned()))
    }

    fn check_running(&self) -> Result<(), ManagerError> {
        if self.shared.shutting_down.load(Ordering::SeqCst) { Err(ManagerError::ShuttingDown) } else { Ok(()) }
    }

    /// The configuration the manager runs with now.
    pub fn config(&self) -> Arc<ManagerConfig> {
        self.shared.ctx.config()
    }

    /// Takes a new configuration while running, for the settings that can change live: the
    /// port range, the limits (`max_instances`, `max_running_instances`, `group_limits`,
    /// `enable_lru_eviction`), the instance defaults, the timeouts (`stop_grace`,
    /// `kill_timeout`, `drain_timeout`, restart delays, readiness interval), the backends'
    /// commands, arguments and environment, and the shutdown policy. They apply from the next
    /// decision on: a lower limit stops nothing that runs, a new command is used at the next
    /// start. The rest — the Docker engine and its per-backend settings, the logs folder and
    /// buffer, the node name, the backend host — stays as the manager was opened with; the
    /// returned names are those of the settings given different values that were not taken.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use llamactl_core::{Manager, ManagerConfig, MemoryDatabase};
    /// let manager = Manager::open(ManagerConfig::default(), Arc::new(MemoryDatabase::new())).await?;
    /// let mut config = ManagerConfig { max_running_instances: Some(2), port_range: 9000..=9100, ..ManagerConfig::default() };
    /// config.local_node = "elsewhere".into();
    /// let not_taken = manager.reconfigure(config)?;
    /// assert_eq!(not_taken, ["local_node"]);
    /// assert_eq!(manager.config().max_running_instances, Some(2));
    /// assert_eq!(manager.config().port_range, 9000..=9100);
    /// # Ok(())
    /// # }
    /// ```
    pub fn reconfigure(&self, config: ManagerConfig) -> Result<Vec<&'static str>, ManagerError> {
        boot::check_config(&config)?;
        let ctx = &self.shared.ctx;
        let old = ctx.config();
        let mut next = config;
        let mut not_taken = Vec::new();
        macro_rules! keep {
            ($($field:ident),*) => {$(
                if next.$field != old.$field {
                    not_taken.push(stringify!($field));
                    next.$field = old.$field.clone();
                }
            )*};
        }
        keep!(docker, logs_dir, log_buffer_lines, log_rotation, local_node, backend_host);
        ctx.ports.set_range(next.port_range.clone());
        ctx.slots
            .set_limits(slots::Limits { max_running: next.max_running_instances, groups: next.group_limits.clone() });
        *ctx.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        Ok(not_taken)
    }

    /// The Docker runtime (its manager id labels this manager's containers).
    pub fn docker(&self) -> &DockerEngine {
        self.shared.ctx.runtime.docker()
    }

    /// The database the manager persists to.
    pub fn database(&self) -> &Arc<dyn Database> {
        &self.shared.ctx.db
    }

    /// Number of instances (without copying any of them, unlike `list().len()`).
    ///
    /// ```
    /// # async fn f(manager: llamactl_core::Manager) {
    /// assert_eq!(manager.len(), manager.list().len());
    /// assert_eq!(manager.is_empty(), manager.len() == 0);
    /// # }
    /// ```
    pub fn len(&self) -> usize {
        self.read_handles().len()
    }

    /// Whether an instance is called `name` (without copying anything of it).
    pub fn contains(&self, name: &str) -> bool {
        self.read_handles().contains_key(name)
    }

    /// Whether there is no instance (see [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.read_handles().is_empty()
    }

    /// One instance.
    pub fn get(&self, name: &str) -> Result<InstanceInfo, ManagerError> {
        Ok(self.info_of(&*self.handle(name)?))
    }

    /// Every instance, ordered by name.
    pub fn list(&self) -> Vec<InstanceInfo> {
        self.map_instances(|view| view.to_info())
    }

    /// Maps every instance, in name order, without copying its state: what a listing of
    /// thousands of instances needs (see [`InstanceView`]).
    ///
    /// ```
    /// # async fn f(manager: llamactl_core::Manager) {
    /// let running: Vec<String> = manager
    ///     .map_instances(|view| (view.state.runtime.status == llamactl_core::InstanceStatus::Running).then(|| view.name.to_string()))
    ///     .into_iter()
    ///     .flatten()
    ///     .collect();
    /// # let _ = running; }
    /// ```
    pub fn map_instances<T>(&self, f: impl FnMut(InstanceView<'_>) -> T) -> Vec<T> {
        self.map_instances_after(None, usize::MAX, f)
    }

    /// [`map_instances`](Self::map_instances) for one page: at most `limit` instances whose
    /// names come after `after` (from the first with `None`), in name order. A caller can walk
    /// thousands of instances page by page, holding one page at a time.
    ///
    /// ```
    /// # async fn f(manager: llamactl_core::Manager) {
    /// let mut after: Option<String> = None;
    /// let mut seen = 0;
    /// loop {
    ///     let page = manager.map_instances_after(after.as_deref(), 100, |view| view.name.to_string());
    ///     let Some(last) = page.last() else { break };
    ///     after = Some(last.clone());
    ///     seen += page.len();
    /// }
    /// assert_eq!(seen, manager.len());
    /// # }
    /// ```
    pub fn map_instances_after<T>(
        &self,
        after: Option<&str>,
        limit: usize,
        mut f: impl FnMut(InstanceView<'_>) -> T,
    ) -> Vec<T> {
        use std::ops::Bound;
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        // The handles are copied out first: `f` runs without the map's lock.
        let handles: Vec<Arc<Handle>> = self
            .read_handles()
            .range::<str, _>((start, Bound::Unbounded))
            .take(limit)
            .map(|(_, h)| h.clone())
            .collect();
        let (now, wall) = (Instant::now(), Utc::now());
        handles
            .iter()
            .map(|handle| {
                let state = handle.state.borrow();
                f(view_of(handle, &state, now, wall))
            })
            .collect()
    }

    fn info_of(&self, handle: &Handle) -> InstanceInfo {
        view_of(handle, &handle.state.borrow(), Instant::now(), Utc::now()).to_info()
    }

    /// A receiver of an instance's state, updated at every change.
    pub fn subscribe(&self, name: &str) -> Result<watch::Receiver<InstanceState>, ManagerError> {
        Ok(self.handle(name)?.state.subscribe())
    }

    /// A receiver of every status change of every instance.
    pub fn subscribe_transitions(&self) -> broadcast::Receiver<StatusNotice> {
        self.shared.ctx.notices.subscribe()
    }

    /// An instance's log.
    pub fn logs(&self, name: &str) -> Result<Arc<LogStore>, ManagerError> {
        Ok(self.handle(name)?.logs.clone())
    }

    /// An instance's recorded transitions, oldest first.
    pub async fn events(&self, name: &str, query: EventQuery) -> Result<Vec<InstanceEvent>, ManagerError> {
        self.handle(name)?;
        Ok(self.shared.ctx.db.events(name, query).await?)
    }

    /// Number of instances holding a running slot (starting, running, stopping, restarting).
    pub fn running_count(&self) -> usize {
        self.shared.ctx.slots.occupied()
    }

    /// Stops every instance (SIGTERM, grace period, SIGKILL) and records every status; desired
    /// states are kept, so the next [`open`](Manager::open) starts the same instances again.
    /// Later operations fail with [`ManagerError::ShuttingDown`].
    pub async fn shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        // A sleeping instance has no backend: there is nothing to stop or to leave running.
        let handles: Vec<Arc<Handle>> =
            self.read_handles().values().filter(|h| h.mailbox.is_awake()).cloned().collect();
        let keep = self.shared.ctx.config().shutdown_policy == ShutdownPolicy::Keep;
        let stops = handles.iter().map(|handle| {
            handle.ask(|reply| {
                if keep {
                    Command::Detach { reply }
                } else {
                    Command::Stop { reason: TransitionReason::Shutdown, desired: None, reply }
                }
            })
        });
        for (handle, result) in handles.iter().zip(futures::future::join_all(stops).await) {
            if let Err(error) = result {
                tracing::warn!(instance = %handle.name, %error, "stop at shutdown failed");
            }
        }
    }
}

#[cfg(test)]
mod tests;
