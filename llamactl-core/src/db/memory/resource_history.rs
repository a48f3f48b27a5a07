//! [`ResourceHistoryStore`] in memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::MemoryDatabase;
use crate::db::{DbError, ResourceHistoryStore, ResourceSample, ResourceScope};

#[async_trait]
impl ResourceHistoryStore for MemoryDatabase {
    async fn record_resource_samples(&self, samples: &[ResourceSample]) -> Result<(), DbError> {
        let mut state = self.open()?;
        for sample in samples {
            let mut stored = sample.clone();
            // Times kept to the millisecond, as SQLite keeps them.
            stored.at = DateTime::from_timestamp_millis(sample.at.timestamp_millis()).unwrap_or_default();
            // Bytes kept as SQLite's integers keep them.
            for bytes in
                [&mut stored.memory_used_bytes, &mut stored.memory_total_bytes, &mut stored.memory_available_bytes]
            {
                *bytes = bytes.map(|b| b.min(i64::MAX as u64));
            }
            state.resource_samples.push(stored);
        }
        Ok(())
    }

    async fn resource_samples(
        &self,
        since: DateTime<Utc>,
        scope: Option<&ResourceScope>,
    ) -> Result<Vec<ResourceSample>, DbError> {
        let state = self.open()?;
        let since = since.timestamp_millis();
        let mut samples: Vec<ResourceSample> = state
            .resource_samples
            .iter()
            .filter(|s| s.at.timestamp_millis() >= since && scope.is_none_or(|scope| &s.scope == scope))
            .cloned()
            .collect();
        // Stable: samples of one time stay in the order recorded, as SQLite's ids keep them.
        samples.sort_by_key(|s| s.at);
        Ok(samples)
    }

    async fn prune_resource_samples(&self, older_than: DateTime<Utc>) -> Result<u64, DbError> {
        let mut state = self.open()?;
        let before = state.resource_samples.len();
        let cut = older_than.timestamp_millis();
        state.resource_samples.retain(|s| s.at.timestamp_millis() >= cut);
        Ok((before - state.resource_samples.len()) as u64)
    }
}
