//! Reloading the configuration: read the file again, read the declarations, plan, and — unless
//! it is a dry run — apply. Anything invalid (YAML, an unknown key, a bad value, a template
//! cycle, a name taken by an API instance) fails the whole reload before anything changes. One
//! reload at a time; each one is published (`/api/v1/events`, `event: reload`), kept as the last
//! one, and counted in `/metrics`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Utc;
pub use llamactl_api::reload::{Outcome, ReloadReport, Trigger};
use llamactl_core::Manager;
use tokio::sync::broadcast;

use super::apply::{apply_plan, current_instances};
use super::plan::{plan_instances, plan_settings, take_live_settings};
use super::read::read_declarations;
use crate::config::{self, Config};

/// Reloads one server's configuration; shared by the API, the signal handler and the watcher.
#[derive(Debug)]
pub struct Reloader {
    manager: Manager,
    /// The configuration in force: the one the server started with, with the parts a reload
    /// takes (declarations, templates, reload settings) from the last applied reload.
    in_force: Mutex<Arc<Config>>,
    last: Mutex<Option<ReloadReport>>,
    /// Where each option of each declared instance came from, as last applied.
    origins: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    one_at_a_time: tokio::sync::Mutex<()>,
    events: broadcast::Sender<ReloadReport>,
}

impl Reloader {
    /// A reloader for `manager`, which runs with `config`.
    pub fn new(manager: Manager, config: Arc<Config>) -> Arc<Self> {
        Arc::new(Self {
            manager,
            in_force: Mutex::new(config),
            last: Mutex::new(None),
            origins: Mutex::new(BTreeMap::new()),
            one_at_a_time: tokio::sync::Mutex::new(()),
            events: broadcast::channel(16).0,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        lock(&self.in_force).clone()
    }

    /// The last reload (the boot's reconciliation counts), if any.
    pub fn last(&self) -> Option<ReloadReport> {
        lock(&self.last).clone()
    }

    /// Where each option of declared instance `name` came from (a template, or the
    /// instance), as its file said at the last applied reload; `None` for other instances.
    pub fn declared_origins(&self, name: &str) -> Option<BTreeMap<String, String>> {
        lock(&self.origins).get(name).cloned()
    }

    /// Every reload from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ReloadReport> {
        self.events.subscribe()
    }

    /// At start: brings the database's declared instances to what the configuration the server
    /// started with declares. An error here stops the start.
    pub async fn reconcile_at_boot(&self) -> Result<ReloadReport, String> {
        let config = self.config();
        let report = self.plan_and_apply(Trigger::Boot, false, config.as_ref().clone()).await;
        match report.outcome {
            Outcome::Failed => Err(report.error.clone().unwrap_or_default()),
            _ => Ok(report),
        }
    }

    /// Reads the configuration file again and plans; applies unless `dry_run`.
    pub async fn reload(&self, trigger: Trigger, dry_run: bool) -> ReloadReport {
        let _one = self.one_at_a_time.lock().await;
        let in_force = self.config();
        let Some(path) = in_force.origin.as_ref().map(|o| o.path.clone()) else {
            return self.failed(
                self.report(trigger, dry_run, None),
                "the server was started without a configuration file, so there is none to read again; start it with one (--config FILE)".into(),
            );
        };
        match config::load(Some(&path)) {
            Ok(loaded) => self.plan_and_apply(trigger, dry_run, loaded.config).await,
            Err(error) => {
                self.failed(self.report(trigger, dry_run, Some(path.display().to_string())), error.to_string())
            }
        }
    }

    /// An empty report of a reload starting now.
    fn report(&self, trigger: Trigger, dry_run: bool, file: Option<String>) -> ReloadReport {
        ReloadReport {
            at: Utc::now(),
            trigger,
            dry_run,
            outcome: Outcome::Planned,
            error: None,
            file,
            instances: Vec::new(),
            settings: Vec::new(),
            applied: Vec::new(),
        }
    }

    /// Plans `new` against what runs and applies it (unless `dry_run`). At the start's
    /// reconciliation (`Trigger::Boot`) no setting can have changed.
    async fn plan_and_apply(&self, trigger: Trigger, dry_run: bool, new: Config) -> ReloadReport {
        let at_boot = trigger == Trigger::Boot;
        let in_force = self.config();
        let mut report = self.report(trigger, dry_run, new.origin.as_ref().map(|o| o.path.display().to_string()));
        let source = new.origin.as_ref().map(|o| (o.path.as_path(), o.text.as_str()));
        let declared = match read_declarations(&new, source, &|name| std::env::var(name).ok()) {
            Ok(declared) => declared,
            Err(error) => return self.failed(report, error.to_string()),
        };
        report.instances = match plan_instances(&current_instances(&self.manager), &declared) {
            Ok(plan) => plan,
            Err(error) => return self.failed(report, error.to_string()),
        };
        if !at_boot {
            report.settings = plan_settings(&in_force, &new);
        }
        if dry_run {
            return self.finish(report);
        }
        let next = take_live_settings(&in_force, &new);
        if !at_boot {
            // Limits and the port range first: the plan's creations are admitted by them.
            match self.manager.reconfigure(next.manager_config()) {
                Ok(not_taken) if !not_taken.is_empty() => {
                    tracing::warn!(?not_taken, "settings the manager did not take live");
                }
                Ok(_) => {}
                Err(error) => return self.failed(report, error.to_string()),
            }
        }
        report.applied = apply_plan(&self.manager, &report.instances, &declared).await;
        report.outcome = Outcome::Applied;
        *lock(&self.origins) = declared.iter().map(|(name, d)| (name.to_string(), d.merged.origins.clone())).collect();
        *lock(&self.in_force) = Arc::new(next);
        self.finish(report)
    }

    fn failed(&self, mut report: ReloadReport, error: String) -> ReloadReport {
        report.outcome = Outcome::Failed;
        report.error = Some(error);
        report.instances.clear();
        self.finish(report)
    }

    fn finish(&self, report: ReloadReport) -> ReloadReport {
        metrics::counter!("llamactl_config_reloads_total", "outcome" => report.outcome.as_str()).increment(1);
        match report.outcome {
            Outcome::Failed => {
                tracing::warn!(error = report.error.as_deref().unwrap_or(""), "configuration reload refused")
            }
            outcome => {
                tracing::info!(outcome = outcome.as_str(), changes = report.instances.len(), "configuration reload")
            }
        }
        *lock(&self.last) = Some(report.clone());
        let _ = self.events.send(report.clone());
        report
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
