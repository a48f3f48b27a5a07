//! The rules of an [`ActivityStore`], one function each, every one on a new, empty store.

use chrono::{DateTime, Duration, Utc};

use super::{Failure, Outcome, ensure, ensure_eq};
use crate::db::{ActivityGroupBy, ActivityOutcome, ActivityQuery, ActivityRecord, ActivityStore, summarise};

/// A time whole to the millisecond (what stores keep), `seconds` after a fixed start.
fn at(seconds: i64) -> Result<DateTime<Utc>, Failure> {
    DateTime::from_timestamp_millis(1_800_000_000_000 + seconds * 1000)
        .ok_or_else(|| Failure(format!("the suite's own time {seconds} is invalid")))
}

/// Record `id`, arriving `id` seconds after the start, of instance `instance` by key `key`.
fn record(id: i64, instance: Option<&str>, key: Option<&str>) -> Result<ActivityRecord, Failure> {
    let mut r = ActivityRecord::new(id, at(id)?, "/v1/chat/completions");
    r.instance = instance.map(str::to_owned);
    r.model = instance.map(|i| format!("{i}-model"));
    r.key_name = key.map(str::to_owned);
    r.key_id = key.map(|k| k.len() as i64);
    r.status = 200;
    r.duration_ms = id as f64;
    Ok(r)
}

/// Every field of a record, a non-ASCII text included, comes back as written; a record
/// whose id is stored replaces it; the largest id is answered.
pub async fn records_come_back_as_written(store: &dyn ActivityStore) -> Outcome {
    ensure_eq!(store.max_activity_id().await?, 0, "the largest id of an empty store");
    let mut full = record(7, Some("tiny"), Some("ci"))?;
    full.client = Some("127.0.0.1".into());
    full.ttfb_ms = Some(12.25);
    full.queue_ms = Some(1500.5);
    full.streamed = true;
    full.prompt_tokens = Some(250);
    full.completion_tokens = Some(u64::from(u32::MAX) + 1);
    full.cached_tokens = Some(0);
    full.prompt_tps = Some(1450.125);
    full.generation_tps = Some(38.5);
    full.outcome = ActivityOutcome::Error;
    full.error = Some("the answer broke off: connexion réinitialisée".into());
    let bare = ActivityRecord::new(3, at(3)?, "/llama-cpp/x/props");
    store.record_activity(&[full.clone(), bare.clone()]).await?;
    let read = store.activity(&ActivityQuery::default()).await?;
    ensure_eq!(read, vec![full.clone(), bare], "the records read back, newest first");
    let mut replaced = full;
    replaced.status = 503;
    store.record_activity(&[replaced.clone()]).await?;
    let read = store.activity(&ActivityQuery { limit: 1, ..ActivityQuery::default() }).await?;
    ensure_eq!(read, vec![replaced], "a record written again with its id");
    ensure_eq!(store.max_activity_id().await?, 7, "the largest id");
    store.record_activity(&[]).await?;
    Ok(())
}

/// Pages follow `before_id` and `limit`; each filter selects what it names, and filters and
/// pages combine.
pub async fn queries_page_and_filter(store: &dyn ActivityStore) -> Outcome {
    let mut records = Vec::new();
    for id in 1..=30 {
        let mut r =
            record(id, Some(if id % 3 == 0 { "b" } else { "a" }), Some(if id % 2 == 0 { "even" } else { "odd" }))?;
        r.status = if id % 5 == 0 { 503 } else { 200 };
        records.push(r);
    }
    store.record_activity(&records).await?;
    let ids = |page: Vec<ActivityRecord>| page.iter().map(|r| r.id).collect::<Vec<_>>();
    let first = store.activity(&ActivityQuery { limit: 4, ..ActivityQuery::default() }).await?;
    ensure_eq!(ids(first), vec![30, 29, 28, 27], "the first page of 4");
    let next = store.activity(&ActivityQuery { limit: 4, before_id: Some(27), ..ActivityQuery::default() }).await?;
    ensure_eq!(ids(next), vec![26, 25, 24, 23], "the page before id 27");
    let cases: Vec<(&str, ActivityQuery)> = vec![
        ("instance b", ActivityQuery { instance: Some("b".into()), ..ActivityQuery::default() }),
        ("key name even", ActivityQuery { key_name: Some("even".into()), ..ActivityQuery::default() }),
        ("key id 3 (odd)", ActivityQuery { key_id: Some(3), ..ActivityQuery::default() }),
        ("status 503", ActivityQuery { status: Some(503), ..ActivityQuery::default() }),
        ("since second 25", ActivityQuery { since: Some(at(25)?), ..ActivityQuery::default() }),
        (
            "instance a, key odd, before 20, 3 of them",
            ActivityQuery {
                instance: Some("a".into()),
                key_name: Some("odd".into()),
                before_id: Some(20),
                limit: 3,
                ..ActivityQuery::default()
            },
        ),
    ];
    for (what, query) in cases {
        let wanted: Vec<i64> = records
            .iter()
            .rev()
            .filter(|r| query.matches(r) && query.before_id.is_none_or(|b| r.id < b))
            .take(query.limit as usize)
            .map(|r| r.id)
            .collect();
        ensure!(!wanted.is_empty(), "the suite's own query {what} selects nothing");
        ensure_eq!(ids(store.activity(&query).await?), wanted, "the records of {what}");
    }
    Ok(())
}

/// The statistics are [`summarise`] of the records selected, for every grouping: counts,
/// errors, token sums, the nearest-rank percentiles (ties, a single record, values missing
/// in some records) and the order (records without a group last).
pub async fn stats_are_the_summary_of_the_records(store: &dyn ActivityStore) -> Outcome {
    let mut records = Vec::new();
    for id in 1..=41 {
        let instance = match id % 4 {
            0 => None,
            1 => Some("alpha"),
            2 => Some("beta"),
            _ => Some("Zeta"),
        };
        let mut r = record(id, instance, if id % 3 == 0 { None } else { Some(["k1", "k2"][(id % 2) as usize]) })?;
        // Durations out of order, with ties.
        r.duration_ms = ((id * 37) % 23) as f64 + 0.5;
        r.ttfb_ms = (id % 5 != 0).then_some(((id * 11) % 7) as f64);
        r.generation_tps = (id % 2 == 0).then_some(id as f64 * 1.5);
        r.prompt_tokens = (id % 3 != 1).then_some(id as u64 * 10);
        r.completion_tokens = Some(id as u64);
        r.status = if id % 7 == 0 { 500 } else { 200 };
        if id % 11 == 0 {
            r.outcome = ActivityOutcome::Error;
        }
        if id % 13 == 0 {
            r.outcome = ActivityOutcome::Cancelled;
        }
        records.push(r);
    }
    let mut single = record(100, Some("solo"), Some("k1"))?;
    single.duration_ms = 4.0;
    records.push(single);
    store.record_activity(&records).await?;
    for group_by in [ActivityGroupBy::Instance, ActivityGroupBy::Model, ActivityGroupBy::Key] {
        for since in [None, Some(at(20)?), Some(at(1000)?)] {
            let wanted: Vec<_> = records.iter().filter(|r| since.is_none_or(|s| r.at >= s)).collect();
            let seen = store.activity_stats(since, group_by).await?;
            ensure_eq!(seen, summarise(wanted, group_by), "the statistics by {group_by:?} since {since:?}");
        }
    }
    Ok(())
}

/// Pruning removes what arrived before the cut-off, then all but the newest `keep`, and says
/// how many went; the largest id stays known while it is stored.
pub async fn prune_keeps_the_newest(store: &dyn ActivityStore) -> Outcome {
    let records: Vec<ActivityRecord> = (1..=20).map(|id| record(id, Some("a"), None)).collect::<Result<_, _>>()?;
    store.record_activity(&records).await?;
    ensure_eq!(store.prune_activity(100, at(5)?).await?, 4, "records removed as older than second 5");
    ensure_eq!(store.prune_activity(10, at(0)?).await?, 6, "records removed past the newest 10");
    let ids: Vec<i64> = store.activity(&ActivityQuery::default()).await?.iter().map(|r| r.id).collect();
    ensure_eq!(ids, (11..=20).rev().collect::<Vec<_>>(), "what is left");
    ensure_eq!(store.prune_activity(10, at(0)? - Duration::days(1)).await?, 0, "a prune with nothing to remove");
    ensure_eq!(store.max_activity_id().await?, 20, "the largest id after pruning");
    ensure_eq!(store.prune_activity(0, at(0)?).await?, 10, "keeping none");
    ensure_eq!(store.activity(&ActivityQuery::default()).await?.len(), 0, "records left after keeping none");
    Ok(())
}
