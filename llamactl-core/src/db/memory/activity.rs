//! [`ActivityStore`] in memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::MemoryDatabase;
use crate::db::activity::summarise;
use crate::db::{ActivityGroupBy, ActivityQuery, ActivityRecord, ActivityStats, ActivityStore, DbError};

/// Times kept to the millisecond, as SQLite keeps them.
fn as_stored(record: &ActivityRecord) -> ActivityRecord {
    let mut stored = record.clone();
    stored.at = DateTime::from_timestamp_millis(record.at.timestamp_millis()).unwrap_or_default();
    stored
}

#[async_trait]
impl ActivityStore for MemoryDatabase {
    async fn record_activity(&self, records: &[ActivityRecord]) -> Result<(), DbError> {
        let mut state = self.open()?;
        for record in records {
            state.activity.insert(record.id, as_stored(record));
        }
        Ok(())
    }

    async fn activity(&self, query: &ActivityQuery) -> Result<Vec<ActivityRecord>, DbError> {
        let state = self.open()?;
        let newest_first = state.activity.range(..query.before_id.unwrap_or(i64::MAX)).rev();
        Ok(newest_first.map(|(_, r)| r).filter(|r| query.matches(r)).take(query.limit as usize).cloned().collect())
    }

    async fn activity_stats(
        &self,
        since: Option<DateTime<Utc>>,
        group_by: ActivityGroupBy,
    ) -> Result<Vec<ActivityStats>, DbError> {
        let state = self.open()?;
        let query = ActivityQuery { since, ..ActivityQuery::default() };
        Ok(summarise(state.activity.values().filter(|r| query.matches(r)), group_by))
    }

    async fn prune_activity(&self, keep: u64, older_than: DateTime<Utc>) -> Result<u64, DbError> {
        let mut state = self.open()?;
        let before = state.activity.len();
        state.activity.retain(|_, r| r.at.timestamp_millis() >= older_than.timestamp_millis());
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        while state.activity.len() > keep {
            state.activity.pop_first();
        }
        Ok((before - state.activity.len()) as u64)
    }

    async fn max_activity_id(&self) -> Result<i64, DbError> {
        Ok(self.open()?.activity.keys().next_back().copied().unwrap_or(0))
    }
}
