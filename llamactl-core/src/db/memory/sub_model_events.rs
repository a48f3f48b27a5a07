//! [`SubModelEventStore`] in memory.

use async_trait::async_trait;
use chrono::DateTime;

use super::MemoryDatabase;
use crate::db::{DbError, EventQuery, SUB_MODEL_EVENTS_KEPT, SubModelEvent, SubModelEventStore};
use crate::router::SubModelNotice;

#[async_trait]
impl SubModelEventStore for MemoryDatabase {
    async fn record_sub_model_events(&self, changes: &[SubModelNotice]) -> Result<(), DbError> {
        let mut state = self.open()?;
        for change in changes {
            state.last_sub_model_event_id += 1;
            let mut change = change.clone();
            // Times kept to the millisecond, as SQLite keeps them.
            change.at = DateTime::from_timestamp_millis(change.at.timestamp_millis()).unwrap_or_default();
            let id = state.last_sub_model_event_id;
            state.sub_model_events.push(SubModelEvent { id, change });
        }
        for instance in changes.iter().map(|c| c.instance.as_str()) {
            let count = state.sub_model_events.iter().filter(|e| e.change.instance == instance).count();
            let mut excess = count.saturating_sub(SUB_MODEL_EVENTS_KEPT);
            state.sub_model_events.retain(|e| {
                let drop = excess > 0 && e.change.instance == instance;
                excess -= usize::from(drop);
                !drop
            });
        }
        Ok(())
    }

    async fn sub_model_events(&self, instance: &str, query: EventQuery) -> Result<Vec<SubModelEvent>, DbError> {
        let state = self.open()?;
        let after = query.after_id.unwrap_or(0);
        Ok(state
            .sub_model_events
            .iter()
            .filter(|e| e.change.instance == instance && e.id > after)
            .take(query.limit as usize)
            .cloned()
            .collect())
    }

    async fn delete_sub_model_events(&self, instance: &str) -> Result<u64, DbError> {
        let mut state = self.open()?;
        let before = state.sub_model_events.len();
        state.sub_model_events.retain(|e| e.change.instance != instance);
        Ok((before - state.sub_model_events.len()) as u64)
    }
}
