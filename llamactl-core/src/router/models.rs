//! [`RouterModels`]: what llamactl knows and decides about the models of one running router
//! instance — their status from the router's list, requests in flight to each, loads that wait
//! for room, idle unloads.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use llamactl_wire::{SubModelReason, SubModelStatus};
use tokio::sync::broadcast;

use super::client::RouterClient;
use super::listing::ListedModel;
use super::policy::{Candidate, Intent, eviction_victim, idle_due, needs_room, observe, retry_delay};
use super::{RouterError, SubModelNotice};
use crate::manager::Rights;
use crate::options::{SubModelOptions, sub_model_settings};

/// How often a load or unload in progress asks the router for its list.
const WAIT_POLL: Duration = Duration::from_millis(100);

/// What the instance's options say about scheduling its models.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterConfig {
    /// The most models holding a process at once (`None`: no limit).
    pub models_max: Option<usize>,
    /// The instance's `sub_models`.
    pub sub_models: BTreeMap<String, SubModelOptions>,
}

/// One model of a router, as llamactl reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubModelView {
    /// Its id.
    pub id: String,
    /// Its aliases.
    pub aliases: Vec<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// Where the router found it.
    pub source: Option<String>,
    /// Its status.
    pub status: SubModelStatus,
    /// Why it has that status.
    pub reason: SubModelReason,
    /// Since when.
    pub since: DateTime<Utc>,
    /// The exit code of its last process, as the router reports it.
    pub exit_code: Option<i32>,
    /// Requests in flight to it, and waiting for it.
    pub in_flight: u32,
    /// When its last request ended.
    pub last_used: Option<DateTime<Utc>>,
    /// Never unloaded by llamactl on its own.
    pub pinned: bool,
    /// Unloaded after this long without requests.
    pub idle_timeout: Option<Duration>,
}

#[derive(Debug)]
struct Entry {
    listed: ListedModel,
    status: SubModelStatus,
    reason: SubModelReason,
    since: DateTime<Utc>,
    in_flight: u32,
    last_used: Option<(Instant, DateTime<Utc>)>,
    intent: Option<Intent>,
    failures: u32,
    failed_at: Option<Instant>,
}

/// The models of one running router instance.
#[derive(Debug)]
pub struct RouterModels {
    instance: String,
    client: RouterClient,
    config: Mutex<RouterConfig>,
    entries: Mutex<BTreeMap<String, Entry>>,
    /// One load decision at a time: room is counted and made under it, so two loads never
    /// take the same free place.
    loads: tokio::sync::Mutex<()>,
    notices: broadcast::Sender<SubModelNotice>,
}

/// A request's hold on a model: while it lives, the model is neither unloaded nor evicted.
#[derive(Debug)]
pub struct SubModelLease {
    models: Arc<RouterModels>,
    id: String,
    waited: Option<Duration>,
}

impl SubModelLease {
    /// The model's id (what the router is sent as `model`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How long the request waited for the model to load (`None`: it was loaded).
    pub fn waited(&self) -> Option<Duration> {
        self.waited
    }
}

impl Drop for SubModelLease {
    fn drop(&mut self) {
        let mut entries = self.models.lock();
        if let Some(entry) = entries.get_mut(&self.id) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            entry.last_used = Some((Instant::now(), Utc::now()));
        }
    }
}

impl RouterModels {
    /// The models of `instance`, whose router answers at `client`; changes go to `notices`.
    pub fn new(
        instance: impl Into<String>,
        client: RouterClient,
        config: RouterConfig,
        notices: broadcast::Sender<SubModelNotice>,
    ) -> Self {
        Self {
            instance: instance.into(),
            client,
            config: Mutex::new(config),
            entries: Mutex::new(BTreeMap::new()),
            loads: tokio::sync::Mutex::new(()),
            notices,
        }
    }

    /// The instance.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Where its router answers.
    pub fn base_url(&self) -> &str {
        self.client.base_url()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn config(&self) -> RouterConfig {
        self.config.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the scheduling settings (the instance's options changed).
    pub fn set_config(&self, config: RouterConfig) {
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = config;
    }

    /// Reads the router's list and records what changed (each change is a [`SubModelNotice`]).
    pub async fn refresh(&self) -> Result<(), RouterError> {
        let listed = self.client.list().await?;
        let now = Utc::now();
        let mut notices = Vec::new();
        {
            let mut entries = self.lock();
            entries.retain(|id, _| listed.iter().any(|m| &m.id == id));
            for model in listed {
                let before = entries.get(&model.id);
                let (status, reason) =
                    observe(before.map(|e| e.status), &model, before.and_then(|e| e.intent.as_ref()));
                match entries.get_mut(&model.id) {
                    Some(entry) => {
                        if entry.status != status {
                            notices.push(self.notice(&model.id, Some(entry.status), status, &reason, now));
                            entry.status = status;
                            entry.reason = reason;
                            entry.since = now;
                            if status == SubModelStatus::Failed {
                                entry.failures += 1;
                                entry.failed_at = Some(Instant::now());
                            } else if status == SubModelStatus::Loaded {
                                entry.failures = 0;
                            }
                        }
                        let settled = match &entry.intent {
                            Some(Intent::Load(_)) => {
                                !matches!(status, SubModelStatus::Unloaded | SubModelStatus::Loading)
                            }
                            Some(Intent::Unload(_)) => !status.holds_slot(),
                            None => false,
                        };
                        if settled || status == SubModelStatus::Failed {
                            entry.intent = None;
                        }
                        entry.listed = model;
                    }
                    None => {
                        notices.push(self.notice(&model.id, None, status, &reason, now));
                        let entry = Entry {
                            listed: model,
                            status,
                            reason,
                            since: now,
                            in_flight: 0,
                            last_used: None,
                            intent: None,
                            failures: 0,
                            failed_at: None,
                        };
                        entries.insert(entry.listed.id.clone(), entry);
                    }
                }
            }
        }
        for notice in notices {
            let _ = self.notices.send(notice);
        }
        Ok(())
    }

    fn notice(
        &self,
        model: &str,
        from: Option<SubModelStatus>,
        to: SubModelStatus,
        reason: &SubModelReason,
        at: DateTime<Utc>,
    ) -> SubModelNotice {
        SubModelNotice {
            instance: self.instance.clone(),
            model: model.to_owned(),
            from,
            to,
            reason: reason.clone(),
            at,
        }
    }

    /// Every model, by id.
    pub fn views(&self) -> Vec<SubModelView> {
        let config = self.config();
        self.lock()
            .values()
            .map(|e| {
                let settings = sub_model_settings(&config.sub_models, &e.listed.id, &e.listed.aliases);
                SubModelView {
                    id: e.listed.id.clone(),
                    aliases: e.listed.aliases.clone(),
                    tags: e.listed.tags.clone(),
                    source: e.listed.source.clone(),
                    status: e.status,
                    reason: e.reason.clone(),
                    since: e.since,
                    exit_code: e.listed.exit_code,
                    in_flight: e.in_flight,
                    last_used: e.last_used.map(|(_, at)| at),
                    pinned: settings.pinned,
                    idle_timeout: settings.idle_timeout,
                }
            })
            .collect()
    }

    /// The id of the model called `name` (its id or one of its aliases).
    pub fn resolve(&self, name: &str) -> Option<String> {
        let entries = self.lock();
        if entries.contains_key(name) {
            return Some(name.to_owned());
        }
        entries.values().find(|e| e.listed.aliases.iter().any(|a| a == name)).map(|e| e.listed.id.clone())
    }

    fn candidates<'a>(entries: &'a BTreeMap<String, Entry>, config: &RouterConfig) -> Vec<Candidate<'a>> {
        let now = Instant::now();
        entries
            .values()
            .map(|e| Candidate {
                id: &e.listed.id,
                status: e.status,
                in_flight: e.in_flight,
                idle_for: e.last_used.map(|(at, _)| now.saturating_duration_since(at)),
                settings: sub_model_settings(&config.sub_models, &e.listed.id, &e.listed.aliases),
            })
            .collect()
    }

    /// A lease on `name` for a request: loads it first if needed (making room under
    /// `models_max` by unloading the least recently used idle model), waiting at most `wait`.
    /// The caller's `rights` on the instance apply: a load needs `start`, making room needs
    /// `evict`.
    pub async fn acquire(
        self: &Arc<Self>,
        name: &str,
        reason: SubModelReason,
        rights: Rights,
        wait: Duration,
    ) -> Result<SubModelLease, RouterError> {
        let id = match self.resolve(name) {
            Some(id) => id,
            None => {
                self.refresh().await?;
                self.resolve(name).ok_or_else(|| RouterError::UnknownModel {
                    instance: self.instance.clone(),
                    model: name.to_owned(),
                })?
            }
        };
        // Counted from now: a model a request waits for is not evicted under it.
        let mut lease = {
            let mut entries = self.lock();
            let entry = entries
                .get_mut(&id)
                .ok_or_else(|| RouterError::UnknownModel { instance: self.instance.clone(), model: name.to_owned() })?;
            entry.in_flight += 1;
            let ready = matches!(entry.status, SubModelStatus::Loaded | SubModelStatus::Sleeping);
            let lease = SubModelLease { models: self.clone(), id: id.clone(), waited: None };
            if ready {
                return Ok(lease);
            }
            lease
        };
        if !rights.start {
            return Err(RouterError::MayNotLoad { instance: self.instance.clone(), model: id });
        }
        let started = Instant::now();
        self.load_now(&id, reason, rights.evict, wait).await?;
        lease.waited = Some(started.elapsed());
        Ok(lease)
    }

    /// Loads `name` if it is not loaded (a user's load), waiting at most `wait`.
    pub async fn load(self: &Arc<Self>, name: &str, rights: Rights, wait: Duration) -> Result<(), RouterError> {
        self.acquire(name, SubModelReason::UserLoad, rights, wait).await.map(drop)
    }

    async fn load_now(
        &self,
        id: &str,
        reason: SubModelReason,
        may_evict: bool,
        wait: Duration,
    ) -> Result<(), RouterError> {
        let deadline = Instant::now() + wait;
        let _one_at_a_time = tokio::time::timeout_at(deadline.into(), self.loads.lock())
            .await
            .map_err(|_| RouterError::Timeout { model: id.to_owned(), after: wait })?;
        self.refresh().await?;
        let victim = {
            let entries = self.lock();
            let entry = entries
                .get(id)
                .ok_or_else(|| RouterError::UnknownModel { instance: self.instance.clone(), model: id.to_owned() })?;
            match entry.status {
                SubModelStatus::Loaded | SubModelStatus::Sleeping => return Ok(()),
                SubModelStatus::Failed => {
                    let delay = retry_delay(entry.failures);
                    let since = entry.failed_at.map(|at| at.elapsed()).unwrap_or(Duration::MAX);
                    if since < delay {
                        return Err(RouterError::Backoff {
                            model: id.to_owned(),
                            reason: entry.reason.to_string(),
                            retry_after: delay - since,
                        });
                    }
                }
                _ => {}
            }
            let config = self.config();
            let candidates = Self::candidates(&entries, &config);
            if entry.status != SubModelStatus::Loading && needs_room(&candidates, id, config.models_max) {
                match eviction_victim(&candidates, id) {
                    Some(victim) if !may_evict => {
                        return Err(RouterError::MayNotEvict { model: id.to_owned(), victim: victim.to_owned() });
                    }
                    Some(victim) => Some(victim.to_owned()),
                    None => {
                        return Err(RouterError::NoRoom {
                            model: id.to_owned(),
                            models_max: config.models_max.unwrap_or(0),
                            busy: candidates
                                .iter()
                                .filter(|c| c.status.holds_slot())
                                .map(|c| c.id.to_owned())
                                .collect(),
                        });
                    }
                }
            } else {
                None
            }
        };
        if let Some(victim) = victim {
            self.unload_now(&victim, SubModelReason::Evicted { by: id.to_owned() }, deadline).await?;
        }
        let loading = self.lock().get(id).is_some_and(|e| e.status == SubModelStatus::Loading);
        if !loading {
            self.set_intent(id, Intent::Load(reason));
            if let Err(error) = self.client.load(id).await {
                self.clear_intent(id);
                return Err(error);
            }
        }
        self.wait_for(id, deadline, wait, |status| {
            !matches!(status, SubModelStatus::Unloaded | SubModelStatus::Loading)
        })
        .await?;
        let entries = self.lock();
        match entries.get(id) {
            Some(e) if e.status == SubModelStatus::Failed => {
                Err(RouterError::LoadFailed { model: id.to_owned(), reason: e.reason.to_string() })
            }
            _ => Ok(()),
        }
    }

    /// Unloads `name` (a user's unload): refused while requests to it are in flight.
    pub async fn unload(&self, name: &str, wait: Duration) -> Result<(), RouterError> {
        let id = self
            .resolve(name)
            .ok_or_else(|| RouterError::UnknownModel { instance: self.instance.clone(), model: name.to_owned() })?;
        let _one_at_a_time = self.loads.lock().await;
        self.unload_now(&id, SubModelReason::UserUnload, Instant::now() + wait).await
    }

    async fn unload_now(&self, id: &str, reason: SubModelReason, deadline: Instant) -> Result<(), RouterError> {
        {
            let entries = self.lock();
            match entries.get(id) {
                Some(e) if e.in_flight > 0 => {
                    return Err(RouterError::Busy { model: id.to_owned(), in_flight: e.in_flight });
                }
                Some(e) if !e.status.holds_slot() => return Ok(()),
                _ => {}
            }
        }
        self.set_intent(id, Intent::Unload(reason));
        if let Err(error) = self.client.unload(id).await {
            self.clear_intent(id);
            return Err(error);
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        self.wait_for(id, deadline, wait, |status| !status.holds_slot()).await
    }

    fn set_intent(&self, id: &str, intent: Intent) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.intent = Some(intent);
        }
    }

    fn clear_intent(&self, id: &str) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.intent = None;
        }
    }

    async fn wait_for(
        &self,
        id: &str,
        deadline: Instant,
        wait: Duration,
        done: impl Fn(SubModelStatus) -> bool,
    ) -> Result<(), RouterError> {
        loop {
            self.refresh().await?;
            if self.lock().get(id).is_none_or(|e| done(e.status)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(RouterError::Timeout { model: id.to_owned(), after: wait });
            }
            tokio::time::sleep(WAIT_POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }

    /// One tick of the background loop: reads the list, then unloads the models idle past
    /// their `idle_timeout`.
    pub async fn tick(&self) -> Result<(), RouterError> {
        self.refresh().await?;
        let idle: Vec<String> = {
            let entries = self.lock();
            let config = self.config();
            Self::candidates(&entries, &config).iter().filter(|c| idle_due(c)).map(|c| c.id.to_owned()).collect()
        };
        for id in idle {
            let Ok(_one_at_a_time) = self.loads.try_lock() else { break };
            // A request that arrived since is seen by `unload_now` (in flight) and wins.
            let _ = self.unload_now(&id, SubModelReason::IdleTimeout, Instant::now() + Duration::from_secs(30)).await;
        }
        Ok(())
    }

    /// The router instance stopped: every model that held a process is unloaded with it.
    pub fn stopped(&self) {
        let now = Utc::now();
        let mut notices = Vec::new();
        for entry in self.lock().values_mut() {
            if entry.status.holds_slot() {
                notices.push(self.notice(
                    &entry.listed.id,
                    Some(entry.status),
                    SubModelStatus::Unloaded,
                    &SubModelReason::InstanceStopped,
                    now,
                ));
                entry.status = SubModelStatus::Unloaded;
                entry.reason = SubModelReason::InstanceStopped;
                entry.since = now;
            }
        }
        for notice in notices {
            let _ = self.notices.send(notice);
        }
    }
}
