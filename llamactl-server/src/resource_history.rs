//! The resource sampler: every `resource_history.interval_seconds`, one tick of the host, each
//! instance with a process group or container, and each GPU, stored in one write; samples
//! older than `resource_history.max_age_hours` pruned once a minute. The last tick is kept in
//! memory for live views.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use llamactl_core::db::{DbError, ResourceHistoryStore};
use llamactl_core::resources::{SampleTarget, Sampler, Tick};
use llamactl_core::{InstanceStatus, Manager};

use crate::config::ResourceHistoryConfig;

/// How long `nvidia-smi` and one container's stats may take in a tick.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How often old samples are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The stored samples, the configuration they were taken with and the last tick.
#[derive(Debug)]
pub struct ResourceHistory {
    store: Arc<dyn ResourceHistoryStore>,
    config: ResourceHistoryConfig,
    latest: Mutex<Option<Tick>>,
}

/// What to sample of an instance in `status` whose runtime record names `target`: anything
/// with a process or container, but not one that is stopped or failed (its record may still
/// name the run that ended).
pub fn sampled(status: InstanceStatus, target: Option<SampleTarget>) -> Option<SampleTarget> {
    match status {
        InstanceStatus::Stopped | InstanceStatus::Failed => None,
        _ => target,
    }
}

impl ResourceHistory {
    /// A history kept in `store`, with no tick yet.
    pub fn new(store: Arc<dyn ResourceHistoryStore>, config: ResourceHistoryConfig) -> Self {
        Self { store, config, latest: Mutex::new(None) }
    }

    /// Where the samples are.
    pub fn store(&self) -> &dyn ResourceHistoryStore {
        self.store.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &ResourceHistoryConfig {
        &self.config
    }

    /// Seconds between ticks (at least one).
    pub fn interval_seconds(&self) -> u64 {
        self.config.interval_seconds.max(1)
    }

    /// The last tick, if one was taken.
    pub fn latest(&self) -> Option<Tick> {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Takes ticks until the store is closed (the server stopping).
    pub async fn run(self: Arc<Self>, manager: Manager) {
        let mut sampler = Sampler::new(READ_TIMEOUT);
        let mut ticks = tokio::time::interval(Duration::from_secs(self.interval_seconds()));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pruned: Option<Instant> = None;
        loop {
            ticks.tick().await;
            let targets: Vec<(String, SampleTarget)> = manager
                .map_instances(|view| {
                    sampled(view.state.runtime.status, SampleTarget::of(&view.state.runtime))
                        .map(|target| (view.name.to_string(), target))
                })
                .into_iter()
                .flatten()
                .collect();
            let containers = targets.iter().any(|(_, t)| matches!(t, SampleTarget::Container(_)));
            let tick = sampler.sample(&targets, containers.then(|| manager.docker())).await;
            match self.store.record_resource_samples(&tick.samples).await {
                Ok(()) => {}
                Err(DbError::Closed) => break,
                Err(error) => tracing::warn!(%error, "cannot store resource samples"),
            }
            *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(tick);
            if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                pruned = Some(Instant::now());
                let hours = i64::try_from(self.config.max_age_hours).unwrap_or(i64::MAX / 3_600_000);
                let cut = chrono::Utc::now() - chrono::Duration::hours(hours.min(100 * 365 * 24));
                match self.store.prune_resource_samples(cut).await {
                    Ok(removed) if removed > 0 => tracing::debug!(removed, "old resource samples removed"),
                    Ok(_) => {}
                    Err(DbError::Closed) => break,
                    Err(error) => tracing::warn!(%error, "cannot remove old resource samples"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_instances_with_a_live_run_are_sampled() {
        let group = || Some(SampleTarget::ProcessGroup(42));
        for status in InstanceStatus::ALL {
            let expected = !matches!(status, InstanceStatus::Stopped | InstanceStatus::Failed);
            assert_eq!(sampled(status, group()).is_some(), expected, "{status}");
            assert_eq!(sampled(status, None), None);
        }
    }

    #[tokio::test]
    async fn ticks_are_stored_and_kept_as_the_latest_until_the_store_closes() {
        let db = Arc::new(llamactl_core::MemoryDatabase::new());
        let config = ResourceHistoryConfig { enabled: true, interval_seconds: 1, max_age_hours: 1 };
        let history = Arc::new(ResourceHistory::new(db.clone(), config));
        let manager = Manager::open(llamactl_core::ManagerConfig::default(), db.clone()).await.unwrap();
        let task = tokio::spawn(history.clone().run(manager.clone()));
        let deadline = Instant::now() + Duration::from_secs(10);
        let since = chrono::Utc::now() - chrono::Duration::minutes(1);
        while db.resource_samples(since, None).await.unwrap().len() < 2 {
            assert!(Instant::now() < deadline, "two ticks in 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let latest = history.latest().unwrap();
        assert_eq!(latest.samples[0].scope, llamactl_core::db::ResourceScope::Host);
        manager.shutdown().await;
        llamactl_core::Database::close(db.as_ref()).await;
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
    }
}
