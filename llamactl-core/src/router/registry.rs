//! [`Routers`]: the running router instances of a manager, each with its [`RouterModels`]
//! followed by a background loop (the router's list read, idle models unloaded) while it runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::client::RouterClient;
use super::models::{RouterConfig, RouterModels, SubModelView};
use super::{RouterError, SubModelNotice};
use crate::db::SubModelEventStore;
use crate::manager::InstanceInfo;
use crate::{BackendOptions, InstanceStatus, Manager};

struct Tracked {
    models: Arc<RouterModels>,
    /// The run it follows (a restart gets a new one).
    attempt: u64,
    stop: CancellationToken,
}

struct Inner {
    manager: Manager,
    tracked: Mutex<BTreeMap<String, Tracked>>,
    /// What stopped routers last listed, so that their models are still found by name (a
    /// request to one starts the instance).
    last_seen: Mutex<BTreeMap<String, Vec<SubModelView>>>,
    notices: broadcast::Sender<SubModelNotice>,
    poll: Duration,
    stop: CancellationToken,
}

/// Every running llama.cpp router instance of a manager. Cheap to clone.
///
/// ```no_run
/// # async fn example(manager: llamactl_core::Manager) -> Result<(), llamactl_core::router::RouterError> {
/// use std::time::Duration;
/// use llamactl_core::router::Routers;
/// let routers = Routers::start(manager, Duration::from_secs(1), None);
/// let models = routers.models("router")?;
/// let rights = llamactl_core::manager::Rights::ALL;
/// let lease = models.acquire("alpha", llamactl_wire::SubModelReason::OnDemand, rights, Duration::from_secs(60)).await?;
/// // ... forward the request with "model": lease.id() ...
/// drop(lease);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Routers {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Routers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routers").field("poll", &self.inner.poll).finish_non_exhaustive()
    }
}

/// The scheduling settings of a router instance, or `None` when it is not one.
pub(crate) fn router_config(info: &InstanceInfo) -> Option<RouterConfig> {
    let options = info.state.options.as_ref().ok()?;
    match &options.backend {
        BackendOptions::LlamaCpp(llama) if llama.is_router() => {
            Some(RouterConfig { models_max: llama.models_max(), sub_models: options.sub_models.clone() })
        }
        _ => None,
    }
}

impl Routers {
    /// Follows `manager`'s router instances: each running one's list is read every `poll`;
    /// every change of a model is written to `log` when given. Must be called inside a Tokio
    /// runtime.
    pub fn start(manager: Manager, poll: Duration, log: Option<Arc<dyn SubModelEventStore>>) -> Self {
        let (notices, _) = broadcast::channel(1024);
        let routers = Self {
            inner: Arc::new(Inner {
                manager,
                tracked: Mutex::new(BTreeMap::new()),
                last_seen: Mutex::new(BTreeMap::new()),
                notices,
                poll,
                stop: CancellationToken::new(),
            }),
        };
        if let Some(log) = log {
            tokio::spawn(record(routers.subscribe(), log, routers.inner.stop.clone()));
        }
        let watcher = routers.clone();
        tokio::spawn(async move { watcher.watch().await });
        routers
    }

    /// Sub-model changes of every router instance.
    pub fn subscribe(&self) -> broadcast::Receiver<SubModelNotice> {
        self.inner.notices.subscribe()
    }

    /// Stops every background loop.
    pub fn shutdown(&self) {
        self.inner.stop.cancel();
    }

    /// The `models_max` llamactl enforces for a router instance (`None`: no limit, or not a
    /// router).
    pub fn models_max(info: &InstanceInfo) -> Option<usize> {
        router_config(info).and_then(|c| c.models_max)
    }

    /// Whether `name` is a router instance (running or not).
    pub fn is_router(&self, name: &str) -> bool {
        self.inner.manager.get(name).ok().as_ref().and_then(router_config).is_some()
    }

    /// The models of the running router instance `name`.
    pub fn models(&self, name: &str) -> Result<Arc<RouterModels>, RouterError> {
        let info = self.inner.manager.get(name).map_err(|_| RouterError::NotRunning(name.to_owned()))?;
        self.track(&info)
    }

    /// Every running router instance's models.
    pub fn all(&self) -> Vec<Arc<RouterModels>> {
        self.inner.manager.list().iter().filter_map(|info| self.track(info).ok()).collect()
    }

    /// The models of every router instance, running or not: `(instance, models)`; a stopped
    /// router's are those it last listed while it ran (none if it has not run since this
    /// manager started).
    pub fn known(&self) -> Vec<(String, Vec<SubModelView>)> {
        let running: Vec<Arc<RouterModels>> = {
            let tracked = self.inner.tracked.lock().unwrap_or_else(|p| p.into_inner());
            tracked.values().map(|t| t.models.clone()).collect()
        };
        let mut known = {
            let last_seen = self.inner.last_seen.lock().unwrap_or_else(|p| p.into_inner());
            if running.is_empty() && last_seen.is_empty() {
                return Vec::new();
            }
            last_seen.clone()
        };
        known.retain(|name, _| self.inner.manager.contains(name));
        known.extend(running.iter().map(|m| (m.instance().to_owned(), m.views())));
        known.into_iter().collect()
    }

    fn track(&self, info: &InstanceInfo) -> Result<Arc<RouterModels>, RouterError> {
        let name = info.name.to_string();
        let config = router_config(info).ok_or_else(|| RouterError::NotARouter(name.clone()))?;
        let listen = match (&info.state.listen, info.status()) {
            (Some(listen), InstanceStatus::Running) => listen,
            _ => return Err(RouterError::NotRunning(name)),
        };
        let mut tracked = self.inner.tracked.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = tracked.get(&name)
            && t.attempt == info.state.attempt
            && t.models.base_url() == listen.base_url()
        {
            t.models.set_config(config);
            return Ok(t.models.clone());
        }
        if let Some(old) = tracked.remove(&name) {
            old.stop.cancel();
            old.models.stopped();
        }
        let models = Arc::new(RouterModels::new(
            name.clone(),
            RouterClient::new(listen.base_url()),
            config,
            self.inner.notices.clone(),
        ));
        let stop = self.inner.stop.child_token();
        tokio::spawn(follow(models.clone(), self.inner.poll, stop.clone()));
        tracked.insert(name, Tracked { models: models.clone(), attempt: info.state.attempt, stop });
        Ok(models)
    }

    fn forget(&self, name: &str) {
        let removed = self.inner.tracked.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
        if let Some(old) = removed {
            old.stop.cancel();
            old.models.stopped();
            self.inner.last_seen.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_owned(), old.models.views());
        }
    }

    async fn watch(self) {
        let mut notices = self.inner.manager.subscribe_transitions();
        for info in self.inner.manager.list() {
            let _ = self.track(&info);
        }
        loop {
            let notice = tokio::select! {
                () = self.inner.stop.cancelled() => return,
                notice = notices.recv() => notice,
            };
            match notice {
                Ok(notice) if notice.to == InstanceStatus::Running => {
                    if let Ok(info) = self.inner.manager.get(&notice.name) {
                        let _ = self.track(&info);
                    }
                }
                Ok(notice) if notice.from == InstanceStatus::Running => self.forget(&notice.name),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    for info in self.inner.manager.list() {
                        if info.status() == InstanceStatus::Running {
                            let _ = self.track(&info);
                        } else {
                            self.forget(info.name.as_str());
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// Writes every change to `log`, in batches of what has arrived meanwhile, until `stop`.
async fn record(
    mut changes: broadcast::Receiver<SubModelNotice>,
    log: Arc<dyn SubModelEventStore>,
    stop: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => return,
            change = changes.recv() => change,
        };
        let mut batch = match first {
            Ok(change) => vec![change],
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "sub-model events were not written: the log fell behind");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        while let Ok(change) = changes.try_recv() {
            batch.push(change);
        }
        if let Err(error) = log.record_sub_model_events(&batch).await {
            tracing::warn!(%error, events = batch.len(), "sub-model events not written");
        }
    }
}

/// The background loop of one running router: its list read and idle models unloaded every
/// `poll`, until `stop`.
async fn follow(models: Arc<RouterModels>, poll: Duration, stop: CancellationToken) {
    loop {
        if let Err(error) = models.tick().await {
            tracing::debug!(instance = models.instance(), %error, "router list not read");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(poll) => {}
        }
    }
}
