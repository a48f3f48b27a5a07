//! The events log of router instances' models: every status change of every sub-model, with
//! its typed reason, kept per instance (the newest [`SUB_MODEL_EVENTS_KEPT`]).

use async_trait::async_trait;
use serde::Serialize;

use super::{DbError, EventQuery};
use crate::router::SubModelNotice;

/// How many sub-model events are kept per instance; older ones are removed as new ones come.
pub const SUB_MODEL_EVENTS_KEPT: usize = 1_000;

/// A stored sub-model event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubModelEvent {
    /// Increasing id (use it to page: `after_id`).
    pub id: i64,
    /// What changed.
    #[serde(flatten)]
    pub change: SubModelNotice,
}

/// Where sub-model events are kept.
///
/// ```
/// use llamactl_core::db::{EventQuery, SubModelEventStore};
/// use llamactl_core::router::SubModelNotice;
/// use llamactl_core::{SubModelReason, SubModelStatus};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), llamactl_core::DbError> {
/// let db = llamactl_core::MemoryDatabase::new();
/// let change = SubModelNotice {
///     instance: "router".into(), model: "alpha".into(), from: Some(SubModelStatus::Loading),
///     to: SubModelStatus::Loaded, reason: SubModelReason::Ready, at: chrono::Utc::now(),
/// };
/// db.record_sub_model_events(std::slice::from_ref(&change)).await?;
/// let events = db.sub_model_events("router", EventQuery::default()).await?;
/// assert_eq!(events[0].change.to, SubModelStatus::Loaded);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait SubModelEventStore: Send + Sync + std::fmt::Debug {
    /// Stores `changes` in one write, then keeps only the newest [`SUB_MODEL_EVENTS_KEPT`] of
    /// each instance they name.
    async fn record_sub_model_events(&self, changes: &[SubModelNotice]) -> Result<(), DbError>;

    /// The events of `instance`'s models, oldest first, paged by `query`.
    async fn sub_model_events(&self, instance: &str, query: EventQuery) -> Result<Vec<SubModelEvent>, DbError>;

    /// Removes every event of `instance` (it was deleted); how many were removed.
    async fn delete_sub_model_events(&self, instance: &str) -> Result<u64, DbError>;
}

#[cfg(test)]
mod tests;
