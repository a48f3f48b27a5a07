//! The supervisor: one actor per instance owns its state (awake only while the instance has
//! work, see `mailbox`); the [`Manager`] routes requests to them, admits starts under the
//! running limits (evicting the least recently used idle instance when it must), restores
//! state on boot and stops everything on shutdown.

mod activity;
mod actor;
mod adoption;
mod command;
mod config;
mod context;
mod error;
mod mailbox;
mod restart_policy;
mod slots;
mod state;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, broadcast, oneshot, watch};
use tokio::time::Instant;

pub use activity::ActivityGuard;
pub use config::{InstanceSettings, ManagerConfig, ShutdownPolicy};
pub use error::{Limit, ManagerError};
pub use restart_policy::restart_delay;
pub use state::{InstanceInfo, InstanceState, InstanceView, Lease, ReadyOptions, StatusNotice};

use activity::Activity;
use actor::Actor;
use adoption::{Adoption, Boot};
use command::Command;
use context::Context;
use mailbox::Mailbox;
use slots::{Limits, SlotReservation, Slots};

use crate::db::{Database, EventQuery, InstanceEvent, StoredInstance};
use crate::docker::DockerEngine;
use crate::logs::LogStore;
use crate::ports::PortAllocator;
use crate::readiness::ReadinessProbe;
use crate::runtime::Runtimes;
use crate::{DesiredState, InstanceName, InstanceOptions, InstanceStatus, TransitionReason};

fn view_of<'a>(handle: &'a Handle, state: &'a InstanceState, now: Instant, wall: DateTime<Utc>) -> InstanceView<'a> {
    let (in_flight, last) = handle.activity.snapshot();
    let last_activity = (state.runtime.status == InstanceStatus::Running).then(|| {
        let ago = chrono::Duration::from_std(now.saturating_duration_since(last)).unwrap_or_default();
        wall - ago
    });
    InstanceView { name: &handle.name, state, in_flight, last_activity, logs: &handle.logs }
}

/// Status notices a slow subscriber may fall behind.
const NOTICES: usize = 1024;

/// The manager's view of one instance: its mailbox and what its actor publishes. The actor
/// runs only while the instance has something to do (see [`mailbox`]).
#[derive(Debug)]
struct Handle {
    name: InstanceName,
    ctx: Arc<Context>,
    mailbox: Arc<Mailbox>,
    /// The state, as last published; the actor (when one is awake) holds the other senders.
    state: watch::Sender<InstanceState>,
    activity: Arc<Activity>,
    logs: Arc<LogStore>,
}

impl Handle {
    /// Sends a command and waits for the actor's answer.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ManagerError>>) -> Command,
    ) -> Result<T, ManagerError> {
        let (reply, answer) = oneshot::channel();
        self.post(Box::new(make(reply)))?;
        answer.await.map_err(|_| ManagerError::NotFound(self.name.to_string()))?
    }

    /// Posts a command, waking an actor if none is awake.
    fn post(&self, command: Box<Command>) -> Result<(), ManagerError> {
        self.mailbox.post(command, || self.wake(None)).map_err(|_| ManagerError::NotFound(self.name.to_string()))
    }

    /// Starts an actor from the published state; returns its mailbox's sender.
    fn wake(&self, adoption: Option<Adoption>) -> mailbox::Sender {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let actor = Actor::new(
            self.ctx.clone(),
            self.name.clone(),
            self.state.clone(),
            self.activity.clone(),
            self.logs.clone(),
            rx,
            Arc::downgrade(&self.mailbox),
        )
        .adopting(adoption);
        // Boxed: an async fn's argument would otherwise take its room twice in the task.
        tokio::spawn(Box::new(actor).run());
        tx
    }

    fn group(&self) -> Option<String> {
        self.state.borrow().options.as_ref().ok().and_then(|o| o.group.clone())
    }
}

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

fn check_config(config: &ManagerConfig) -> Result<(), ManagerError> {
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
            config,
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
    fn add_handle(&self, stored: StoredInstance, adoption: Option<Adoption>) -> Arc<Handle> {
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
            attempt: 0,
        };
        let log_path = ctx.config.logs_dir.as_ref().map(|dir| dir.join(format!("{}.log", stored.name)));
        let logs = Arc::new(LogStore::new(log_path, ctx.config.log_buffer_lines, ctx.config.log_rotation));
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

    /// The configuration the manager runs with.
    pub fn config(&self) -> &ManagerConfig {
        &self.shared.ctx.config
    }

    /// The Docker runtime (its manager id labels this manager's containers).
    pub fn docker(&self) -> &DockerEngine {
        self.shared.ctx.runtime.docker()
    }

    /// The database the manager persists to.
    pub fn database(&self) -> &Arc<dyn Database> {
        &self.shared.ctx.db
    }

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
            if let Some(max) = ctx.config.max_instances
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

    /// Whether there is no instance (see [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.read_handles().is_empty()
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

    /// Starts an instance (admitted under the limits, evicting if needed). Returns once the
    /// process is spawned; the status is then `starting`, and `running` once ready.
    pub async fn start(&self, name: &str) -> Result<InstanceInfo, ManagerError> {
        self.start_for(name, TransitionReason::UserStart).await?;
        Ok(self.info_of(&*self.handle(name)?))
    }

    async fn start_for(&self, name: &str, reason: TransitionReason) -> Result<(), ManagerError> {
        self.check_running()?;
        let handle = self.handle(name)?;
        let slot = self.admit(&handle, self.admission_deadline(), true).await?;
        handle.ask(|reply| Command::Start { reason, slot, seen_attempt: None, reply }).await
    }

    fn admission_deadline(&self) -> Instant {
        let config = &self.shared.ctx.config;
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

    /// Waits until `name` is ready, starting it on demand (once, however many callers ask at
    /// the same time), and returns a [`Lease`] that marks one request in flight. Each caller
    /// waits at most `timeout`; a caller that gives up (or is dropped) does not disturb the
    /// start or the other callers.
    pub async fn ensure_ready(&self, name: &str, timeout: Duration) -> Result<Lease, ManagerError> {
        self.ensure_ready_with(name, ReadyOptions { timeout, may_start: true, may_evict: true }).await
    }

    /// [`ensure_ready`](Manager::ensure_ready) with the caller's rights: without `may_start` a
    /// stopped instance is not started ([`ManagerError::NotRunning`]); without `may_evict` a
    /// start at a running limit evicts nothing ([`ManagerError::CapacityExhausted`]).
    pub async fn ensure_ready_with(&self, name: &str, options: ReadyOptions) -> Result<Lease, ManagerError> {
        let ReadyOptions { timeout, may_start, may_evict } = options;
        let started = Instant::now();
        let deadline = started + timeout;
        let handle = self.handle(name)?;
        if let Some(lease) = self.lease(&handle) {
            return Ok(lease);
        }
        let mut state = handle.state.subscribe();
        let mut requested = false;
        loop {
            let (status, reason, settings, failed_at, attempt) = {
                let current = state.borrow_and_update();
                let settings = current.options.as_ref().ok().map(|o| self.shared.ctx.config.defaults.apply(o));
                let runtime = &current.runtime;
                (runtime.status, runtime.last_reason.clone(), settings, runtime.stopped_at, current.attempt)
            };
            match status {
                InstanceStatus::Running => {
                    if let Some(lease) = self.lease(&handle) {
                        return Ok(lease);
                    }
                    // Running but its gate is closed: it is being stopped; wait for that.
                }
                InstanceStatus::Starting | InstanceStatus::Restarting | InstanceStatus::Stopping => {}
                InstanceStatus::Stopped | InstanceStatus::Failed => {
                    let reason = reason.unwrap_or(TransitionReason::UserStop);
                    let failure = |retry_after| ManagerError::StartFailed {
                        name: name.to_owned(),
                        reason: reason.clone(),
                        detail: state.borrow().runtime.last_error.clone().unwrap_or_default(),
                        retry_after,
                    };
                    if requested {
                        match (status, &reason) {
                            // The start this caller asked for failed.
                            (InstanceStatus::Failed, _) => return Err(failure(None)),
                            (_, TransitionReason::UserStop | TransitionReason::Shutdown) => {
                                return Err(ManagerError::StoppedWhileWaiting { name: name.to_owned(), reason });
                            }
                            // Idle timeout or eviction got there first: start it again.
                            _ => {}
                        }
                    } else if !may_start || !settings.as_ref().is_some_and(|s| s.on_demand_start) {
                        return Err(ManagerError::NotRunning { name: name.to_owned(), status });
                    }
                    // A start that failed moments ago is reported again rather than retried at
                    // once, so a stream of requests cannot turn into a stream of doomed spawns.
                    if status == InstanceStatus::Failed && !requested {
                        let cooldown = settings.as_ref().map(|s| s.restart_delay).unwrap_or_default();
                        let since = failed_at.and_then(|t| (Utc::now() - t).to_std().ok()).unwrap_or(cooldown);
                        if since < cooldown {
                            return Err(failure(Some(cooldown - since)));
                        }
                    }
                    self.check_running()?;
                    let slot = self.admit(&handle, deadline, may_evict).await?;
                    let ask = handle.ask(|reply| Command::Start {
                        reason: TransitionReason::OnDemand,
                        slot,
                        seen_attempt: Some(attempt),
                        reply,
                    });
                    match tokio::time::timeout_at(deadline, ask).await {
                        Ok(result) => result?,
                        Err(_) => return Err(self.timeout(name, started, &state)),
                    }
                    requested = true;
                    continue;
                }
            }
            if tokio::time::timeout_at(deadline, state.changed()).await.is_err() {
                return Err(self.timeout(name, started, &state));
            }
        }
    }

    fn timeout(&self, name: &str, started: Instant, state: &watch::Receiver<InstanceState>) -> ManagerError {
        ManagerError::Timeout {
            name: name.to_owned(),
            waited: started.elapsed(),
            status: state.borrow().runtime.status,
        }
    }

    fn lease(&self, handle: &Handle) -> Option<Lease> {
        let guard = handle.activity.try_enter()?;
        let state = handle.state.borrow();
        let listen = state.listen.clone()?;
        let request_model = state.options.as_ref().ok().and_then(|o| o.backend.as_backend().request_model());
        Some(Lease { name: handle.name.clone(), listen, request_model, _guard: guard })
    }

    /// A lease on `name` if it is ready right now, without waiting or starting anything.
    pub fn try_lease(&self, name: &str) -> Option<Lease> {
        self.lease(&*self.handle(name).ok()?)
    }

    /// Marks one request in flight without starting anything (for callers that route requests
    /// themselves); the idle timer and eviction treat the instance as busy until it is dropped.
    pub fn track_activity(&self, name: &str) -> Result<ActivityGuard, ManagerError> {
        Ok(self.handle(name)?.activity.enter())
    }

    /// Admits a start of `handle` under the running limits, evicting least recently used idle
    /// instances if needed and allowed (by the configuration and by `may_evict`).
    async fn admit(
        &self,
        handle: &Handle,
        deadline: Instant,
        may_evict: bool,
    ) -> Result<SlotReservation, ManagerError> {
        let ctx = &self.shared.ctx;
        let name = handle.name.as_str();
        let group = handle.group();
        let _turn = match ctx.slots.admission.try_lock() {
            Ok(turn) => turn,
            Err(_) => tokio::time::timeout_at(deadline, ctx.slots.admission.lock()).await.map_err(|_| {
                ManagerError::Timeout {
                    name: name.to_owned(),
                    waited: Duration::ZERO,
                    status: handle.state.borrow().runtime.status,
                }
            })?,
        };
        // Instances that declined eviction in this admission, with their reason.
        let mut refused: Vec<(InstanceName, String)> = Vec::new();
        loop {
            let limit = match ctx.slots.try_reserve(name, group.as_deref()) {
                Ok(reservation) => return Ok(reservation),
                Err(limit) => limit,
            };
            let exhausted = |detail: String, retry_after: Duration| ManagerError::CapacityExhausted {
                name: name.to_owned(),
                limit: limit.clone(),
                detail,
                retry_after,
            };
            if !ctx.config.enable_lru_eviction {
                return Err(exhausted("LRU eviction is disabled".into(), Duration::from_secs(30)));
            }
            if !may_evict {
                return Err(exhausted("this request may not evict other instances".into(), Duration::from_secs(30)));
            }
            let victim = match self.pick_victim(&limit, name, &refused) {
                Ok(victim) => victim,
                Err(reasons) => {
                    // Requests end soon; loading and pinned instances stay a while.
                    let busy = reasons.iter().any(|r| r.contains("in flight"));
                    let retry_after = if busy { Duration::from_secs(2) } else { Duration::from_secs(30) };
                    return Err(exhausted(reasons.join("; "), retry_after));
                }
            };
            let by = name.to_owned();
            let (reply, answer) = oneshot::channel();
            if victim.post(Box::new(Command::Evict { by, reply })).is_err() {
                refused.push((victim.name.clone(), format!("{} is gone", victim.name)));
                continue;
            }
            match tokio::time::timeout_at(deadline, answer).await {
                Ok(Ok(Ok(()))) => tracing::info!(instance = name, evicted = %victim.name, "evicted to make room"),
                Ok(Ok(Err(why))) => refused.push((victim.name.clone(), why)),
                Ok(Err(_)) => refused.push((victim.name.clone(), format!("{} is gone", victim.name))),
                Err(_) => {
                    return Err(ManagerError::Timeout {
                        name: name.to_owned(),
                        waited: Duration::ZERO,
                        status: handle.state.borrow().runtime.status,
                    });
                }
            }
        }
    }

    /// The least recently used instance that holds a slot counting against `limit`, is ready,
    /// idle and not pinned, and has not refused already; or why there is none, per instance.
    fn pick_victim(
        &self,
        limit: &Limit,
        requester: &str,
        refused: &[(InstanceName, String)],
    ) -> Result<Arc<Handle>, Vec<String>> {
        let handles = self.read_handles();
        let defaults = &self.shared.ctx.config.defaults;
        let mut reasons = Vec::new();
        let mut best: Option<(Instant, Arc<Handle>)> = None;
        for (name, group) in self.shared.ctx.slots.holders() {
            let counts = match limit {
                Limit::Global { .. } => true,
                Limit::Group { group: wanted, .. } => group.as_deref() == Some(wanted.as_str()),
            };
            if name == requester || !counts {
                continue;
            }
            if let Some((_, why)) = refused.iter().find(|(n, _)| n.as_str() == name) {
                reasons.push(why.clone());
                continue;
            }
            let Some(handle) = handles.get(name.as_str()) else { continue };
            let state = handle.state.borrow();
            let pinned = state.options.as_ref().map(|o| defaults.apply(o).idle_timeout.is_zero()).unwrap_or(true);
            let (in_flight, last) = handle.activity.snapshot();
            let why = if state.runtime.status != InstanceStatus::Running {
                Some(format!("{name} is {}", state.runtime.status))
            } else if pinned {
                Some(format!("{name} is pinned (idle_timeout 0)"))
            } else if in_flight > 0 {
                Some(format!("{name} has {in_flight} requests in flight"))
            } else {
                None
            };
            drop(state);
            match why {
                Some(why) => reasons.push(why),
                None if best.as_ref().is_none_or(|(t, _)| last < *t) => best = Some((last, handle.clone())),
                None => {}
            }
        }
        best.map(|(_, handle)| handle).ok_or(reasons)
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
        let keep = self.shared.ctx.config.shutdown_policy == ShutdownPolicy::Keep;
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
