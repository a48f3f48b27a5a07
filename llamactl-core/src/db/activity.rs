//! The activity store: one record per proxied request (who asked which instance for what, how
//! it ended, how long it took, how many tokens it used), queried newest first and summarised
//! per instance, model or key. The server writes records in batches off the request path.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::DbError;
pub use llamactl_wire::{ActivityGroupBy, ActivityOutcome};

/// What one proxied request did.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRecord {
    /// The request's id (given by the recorder; the same id names it while in flight).
    pub id: i64,
    /// When the request arrived (stored to the millisecond).
    pub at: DateTime<Utc>,
    /// The instance it was for, once known (not for a request refused before routing).
    pub instance: Option<String>,
    /// The model: a router instance's sub-model, else the model the client named.
    pub model: Option<String>,
    /// The request path (without the query).
    pub path: String,
    /// The HTTP status answered.
    pub status: u16,
    /// The inference key's id, if one was used.
    pub key_id: Option<i64>,
    /// The key's name (`management` for a management key); never the secret.
    pub key_name: Option<String>,
    /// The client's address.
    pub client: Option<String>,
    /// From arrival to the end (or the drop) of the answer.
    pub duration_ms: f64,
    /// From arrival to the first byte of the answer's body.
    pub ttfb_ms: Option<f64>,
    /// Time spent waiting for the instance to start.
    pub queue_ms: Option<f64>,
    /// Whether the answer was an event stream.
    pub streamed: bool,
    /// Prompt tokens the backend reported.
    pub prompt_tokens: Option<u64>,
    /// Generated tokens the backend reported.
    pub completion_tokens: Option<u64>,
    /// Prompt tokens served from the backend's cache.
    pub cached_tokens: Option<u64>,
    /// Prompt processing speed, tokens per second.
    pub prompt_tps: Option<f64>,
    /// Generation speed, tokens per second.
    pub generation_tps: Option<f64>,
    /// How it ended.
    pub outcome: ActivityOutcome,
    /// What went wrong, for an error or a refusal.
    pub error: Option<String>,
}

impl ActivityRecord {
    /// A record of a request to `path` that arrived `at`, with nothing else known yet
    /// (status 0, no tokens, outcome `completed`).
    ///
    /// ```
    /// use llamactl_core::db::{ActivityOutcome, ActivityRecord};
    /// let record = ActivityRecord::new(7, chrono::Utc::now(), "/v1/chat/completions");
    /// assert_eq!((record.id, record.outcome, record.prompt_tokens), (7, ActivityOutcome::Completed, None));
    /// ```
    pub fn new(id: i64, at: DateTime<Utc>, path: impl Into<String>) -> Self {
        Self {
            id,
            at,
            instance: None,
            model: None,
            path: path.into(),
            status: 0,
            key_id: None,
            key_name: None,
            client: None,
            duration_ms: 0.0,
            ttfb_ms: None,
            queue_ms: None,
            streamed: false,
            prompt_tokens: None,
            completion_tokens: None,
            cached_tokens: None,
            prompt_tps: None,
            generation_tps: None,
            outcome: ActivityOutcome::Completed,
            error: None,
        }
    }

    /// An error answer (HTTP status 400 and above) or an outcome of `error`.
    pub fn is_error(&self) -> bool {
        self.status >= 400 || self.outcome == ActivityOutcome::Error
    }

    /// The value this record is grouped under by `group_by` (`None`: not known).
    pub fn group_key(&self, group_by: ActivityGroupBy) -> Option<&str> {
        match group_by {
            ActivityGroupBy::Instance => self.instance.as_deref(),
            ActivityGroupBy::Model => self.model.as_deref(),
            ActivityGroupBy::Key => self.key_name.as_deref(),
        }
    }
}

/// Which records to read, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityQuery {
    /// At most this many.
    pub limit: u32,
    /// Only records with a smaller id (the next page).
    pub before_id: Option<i64>,
    /// Only this instance's.
    pub instance: Option<String>,
    /// Only this key's, by id.
    pub key_id: Option<i64>,
    /// Only this key's, by name.
    pub key_name: Option<String>,
    /// Only answers with this HTTP status.
    pub status: Option<u16>,
    /// Only requests that arrived at or after this time.
    pub since: Option<DateTime<Utc>>,
}

impl Default for ActivityQuery {
    fn default() -> Self {
        Self { limit: 100, before_id: None, instance: None, key_id: None, key_name: None, status: None, since: None }
    }
}

impl ActivityQuery {
    /// Whether `record` passes every filter but the page (`before_id`, `limit`).
    pub fn matches(&self, record: &ActivityRecord) -> bool {
        self.instance.as_ref().is_none_or(|i| record.instance.as_ref() == Some(i))
            && self.key_id.is_none_or(|k| record.key_id == Some(k))
            && self.key_name.as_ref().is_none_or(|k| record.key_name.as_ref() == Some(k))
            && self.status.is_none_or(|s| record.status == s)
            && self.since.is_none_or(|s| record.at >= s)
    }
}

/// The summary of one group of records.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityStats {
    /// The instance, model or key name (`None`: records that have none).
    pub group: Option<String>,
    /// Requests.
    pub requests: u64,
    /// Of which errors ([`ActivityRecord::is_error`]).
    pub errors: u64,
    /// Prompt tokens, summed over the records that report them.
    pub prompt_tokens: u64,
    /// Generated tokens, summed over the records that report them.
    pub completion_tokens: u64,
    /// Median duration.
    pub duration_p50_ms: f64,
    /// 95th percentile of the duration.
    pub duration_p95_ms: f64,
    /// Median time to first byte, over the records that have one.
    pub ttfb_p50_ms: Option<f64>,
    /// Median generation speed, over the records that report one.
    pub generation_tps_p50: Option<f64>,
}

/// The `q`-quantile (0..=1) of `values` by the nearest-rank method; `None` for no values.
///
/// ```
/// use llamactl_core::db::quantile;
/// let mut values = vec![5.0, 1.0, 3.0, 2.0, 4.0];
/// assert_eq!(quantile(&mut values, 0.5), Some(3.0));
/// assert_eq!(quantile(&mut values, 0.95), Some(5.0));
/// assert_eq!(quantile(&mut [], 0.5), None);
/// ```
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[nearest_rank(q, values.len()) - 1])
}

/// The 1-based rank of the `q`-quantile among `n` sorted values (nearest rank: the smallest
/// rank with at least `q` of the values at or below it), for `n >= 1`.
///
/// ```
/// use llamactl_core::db::nearest_rank;
/// assert_eq!((nearest_rank(0.5, 20), nearest_rank(0.95, 20), nearest_rank(0.5, 1)), (10, 19, 1));
/// ```
pub fn nearest_rank(q: f64, n: usize) -> usize {
    let rank = (q.clamp(0.0, 1.0) * n as f64).ceil() as usize;
    rank.clamp(1, n.max(1))
}

/// Summarises `records` by `group_by`, one entry per group, ordered by group (records without
/// a group value last). The one definition of the statistics every store answers with.
pub fn summarise<'a>(
    records: impl IntoIterator<Item = &'a ActivityRecord>,
    group_by: ActivityGroupBy,
) -> Vec<ActivityStats> {
    #[derive(Default)]
    struct Group {
        requests: u64,
        errors: u64,
        prompt: u64,
        completion: u64,
        durations: Vec<f64>,
        ttfbs: Vec<f64>,
        speeds: Vec<f64>,
    }
    let mut groups: BTreeMap<(bool, Option<String>), Group> = BTreeMap::new();
    for record in records {
        let key = record.group_key(group_by).map(str::to_owned);
        let group = groups.entry((key.is_none(), key)).or_default();
        group.requests += 1;
        group.errors += u64::from(record.is_error());
        group.prompt += record.prompt_tokens.unwrap_or(0);
        group.completion += record.completion_tokens.unwrap_or(0);
        group.durations.push(record.duration_ms);
        group.ttfbs.extend(record.ttfb_ms);
        group.speeds.extend(record.generation_tps);
    }
    groups
        .into_iter()
        .map(|((_, group), mut g)| ActivityStats {
            group,
            requests: g.requests,
            errors: g.errors,
            prompt_tokens: g.prompt,
            completion_tokens: g.completion,
            duration_p50_ms: quantile(&mut g.durations, 0.5).unwrap_or(0.0),
            duration_p95_ms: quantile(&mut g.durations, 0.95).unwrap_or(0.0),
            ttfb_p50_ms: quantile(&mut g.ttfbs, 0.5),
            generation_tps_p50: quantile(&mut g.speeds, 0.5),
        })
        .collect()
}

/// Storage of request records.
///
/// Object-safe (`Arc<dyn ActivityStore>`). Records keep their given ids; a record whose id is
/// already stored is replaced. Reads are newest (largest id) first.
///
/// ```
/// use llamactl_core::db::{ActivityGroupBy, ActivityQuery, ActivityRecord, ActivityStore};
/// use llamactl_core::MemoryDatabase;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), llamactl_core::DbError> {
/// let store = MemoryDatabase::new();
/// let mut record = ActivityRecord::new(1, chrono::Utc::now(), "/v1/chat/completions");
/// record.instance = Some("tiny".into());
/// record.status = 200;
/// record.prompt_tokens = Some(12);
/// store.record_activity(&[record]).await?;
/// let page = store.activity(&ActivityQuery::default()).await?;
/// assert_eq!(page[0].prompt_tokens, Some(12));
/// let stats = store.activity_stats(None, ActivityGroupBy::Instance).await?;
/// assert_eq!((stats[0].group.as_deref(), stats[0].requests), (Some("tiny"), 1));
/// assert_eq!(store.max_activity_id().await?, 1);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait ActivityStore: Send + Sync + fmt::Debug {
    /// Stores `records` (all in one write).
    async fn record_activity(&self, records: &[ActivityRecord]) -> Result<(), DbError>;

    /// The records `query` selects, newest first.
    async fn activity(&self, query: &ActivityQuery) -> Result<Vec<ActivityRecord>, DbError>;

    /// [`summarise`] of the records that arrived at or after `since` (all if `None`).
    async fn activity_stats(
        &self,
        since: Option<DateTime<Utc>>,
        group_by: ActivityGroupBy,
    ) -> Result<Vec<ActivityStats>, DbError>;

    /// Removes records that arrived before `older_than`, then all but the newest `keep`;
    /// returns how many were removed.
    async fn prune_activity(&self, keep: u64, older_than: DateTime<Utc>) -> Result<u64, DbError>;

    /// The largest id stored (0 for none), so that new ids continue after a restart.
    async fn max_activity_id(&self) -> Result<i64, DbError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: i64, instance: &str, status: u16, duration: f64) -> ActivityRecord {
        let mut r = ActivityRecord::new(id, Utc::now(), "/v1/completions");
        r.instance = Some(instance.into());
        r.status = status;
        r.duration_ms = duration;
        r
    }

    #[test]
    fn statistics_count_sum_and_take_percentiles_per_group() {
        let mut records: Vec<ActivityRecord> = (1..=20).map(|i| record(i, "a", 200, i as f64)).collect();
        records[0].prompt_tokens = Some(10);
        records[1].prompt_tokens = Some(5);
        records[1].completion_tokens = Some(7);
        records[2].generation_tps = Some(40.0);
        records[3].ttfb_ms = Some(2.0);
        records.push(record(21, "b", 503, 1.0));
        let mut unrouted = record(22, "x", 401, 0.5);
        unrouted.instance = None;
        records.push(unrouted);
        let stats = summarise(&records, ActivityGroupBy::Instance);
        assert_eq!(stats.len(), 3);
        let a = &stats[0];
        assert_eq!((a.group.as_deref(), a.requests, a.errors), (Some("a"), 20, 0));
        assert_eq!((a.prompt_tokens, a.completion_tokens), (15, 7));
        assert_eq!((a.duration_p50_ms, a.duration_p95_ms), (10.0, 19.0));
        assert_eq!((a.ttfb_p50_ms, a.generation_tps_p50), (Some(2.0), Some(40.0)));
        assert_eq!((stats[1].group.as_deref(), stats[1].errors), (Some("b"), 1));
        assert_eq!((stats[2].group.as_deref(), stats[2].errors), (None, 1), "records without a group come last");
        let by_key = summarise(&records, ActivityGroupBy::Key);
        assert_eq!((by_key.len(), by_key[0].requests), (1, 22));
    }

    #[test]
    fn an_error_is_a_failing_status_or_an_error_outcome() {
        let mut r = record(1, "a", 200, 1.0);
        assert!(!r.is_error());
        r.outcome = ActivityOutcome::Error;
        assert!(r.is_error());
        assert!(record(2, "a", 404, 1.0).is_error());
        let mut cancelled = record(3, "a", 200, 1.0);
        cancelled.outcome = ActivityOutcome::Cancelled;
        assert!(!cancelled.is_error(), "a client that hangs up is not the backend's error");
    }

    #[test]
    fn a_query_filters_on_each_field() {
        let mut r = record(1, "a", 200, 1.0);
        r.key_id = Some(3);
        r.key_name = Some("ci".into());
        assert!(ActivityQuery::default().matches(&r));
        assert!(ActivityQuery { instance: Some("a".into()), ..Default::default() }.matches(&r));
        assert!(!ActivityQuery { instance: Some("b".into()), ..Default::default() }.matches(&r));
        assert!(ActivityQuery { key_id: Some(3), ..Default::default() }.matches(&r));
        assert!(!ActivityQuery { key_name: Some("other".into()), ..Default::default() }.matches(&r));
        assert!(!ActivityQuery { status: Some(500), ..Default::default() }.matches(&r));
        let later = r.at + chrono::Duration::seconds(1);
        assert!(!ActivityQuery { since: Some(later), ..Default::default() }.matches(&r));
    }
}
