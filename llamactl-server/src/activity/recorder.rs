//! The recorder's task: takes finished requests from the bounded queue, reads their token
//! usage, counts them in the metrics, publishes them to the event stream and writes them in
//! batches; prunes by count and age once a minute.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use llamactl_core::db::{ActivityRecord, ActivityStore};
use tokio::sync::{broadcast, mpsc};

use super::usage::{Usage, UsageTap};

/// Most records written together.
const MAX_BATCH: usize = 1024;
/// How often old records are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Tokens by kind, per instance (`instance`, `kind`: prompt, completion, cached).
pub const TOKENS: &str = "llamactl_tokens_total";
/// Requests per key (`key`: the key's name, `management`, or `none`).
pub const KEY_REQUESTS: &str = "llamactl_key_requests_total";
/// Tokens per key and kind.
pub const KEY_TOKENS: &str = "llamactl_key_tokens_total";
/// Time to the first byte of the answer, per instance.
pub const TTFB: &str = "llamactl_proxy_ttfb_seconds";
/// Records dropped because the recorder's queue was full.
pub const DROPPED: &str = "llamactl_activity_dropped_total";
/// Records that could not be written.
pub const WRITE_ERRORS: &str = "llamactl_activity_write_errors_total";

/// A request that ended, as the layer hands it over.
#[derive(Debug)]
pub struct Finished {
    /// Its record, tokens still unknown.
    pub record: ActivityRecord,
    /// What its answer's usage is read from.
    pub tap: Option<UsageTap>,
    /// From the first to the last byte of a streamed answer (for a generation speed where the
    /// backend reports none).
    pub streaming_for: Option<Duration>,
}

/// Fills in the record's tokens and speeds from `usage`; a streamed answer without a reported
/// generation speed gets generated tokens over the time its stream flowed.
pub fn with_usage(mut record: ActivityRecord, usage: Usage, streaming_for: Option<Duration>) -> ActivityRecord {
    record.prompt_tokens = usage.prompt_tokens;
    record.completion_tokens = usage.completion_tokens;
    record.cached_tokens = usage.cached_tokens;
    record.prompt_tps = usage.prompt_tps;
    record.generation_tps = usage.generation_tps.or_else(|| {
        let (tokens, took) = (usage.completion_tokens?, streaming_for?.as_secs_f64());
        (tokens > 0 && took > 0.0).then(|| tokens as f64 / took)
    });
    record
}

/// Retention: most rows and oldest age kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Most records.
    pub max_rows: u64,
    /// Oldest record.
    pub max_age: Duration,
}

/// Runs until every sender of `queue` is gone, then writes what is left.
pub async fn run(
    store: Arc<dyn ActivityStore>,
    mut queue: mpsc::Receiver<Finished>,
    events: broadcast::Sender<Arc<ActivityRecord>>,
    retention: Retention,
) {
    let mut pruned = Instant::now() - PRUNE_EVERY;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        if pruned.elapsed() >= PRUNE_EVERY {
            prune(store.as_ref(), retention).await;
            pruned = Instant::now();
        }
        let received = tokio::time::timeout(PRUNE_EVERY, queue.recv_many(&mut batch, MAX_BATCH)).await;
        let Ok(count) = received else { continue };
        if count == 0 {
            break;
        }
        let records: Vec<ActivityRecord> = batch
            .drain(..)
            .map(|finished| {
                let usage = finished.tap.as_ref().map(UsageTap::usage).unwrap_or_default();
                let record = with_usage(finished.record, usage, finished.streaming_for);
                count_in_metrics(&record);
                let _ = events.send(Arc::new(record.clone()));
                record
            })
            .collect();
        if let Err(error) = store.record_activity(&records).await {
            metrics::counter!(WRITE_ERRORS).increment(records.len() as u64);
            tracing::warn!(%error, records = records.len(), "cannot write request records");
        }
    }
}

async fn prune(store: &dyn ActivityStore, retention: Retention) {
    let age = chrono::Duration::from_std(retention.max_age).unwrap_or(chrono::Duration::MAX);
    let older_than = Utc::now().checked_sub_signed(age).unwrap_or_default();
    match store.prune_activity(retention.max_rows, older_than).await {
        Ok(0) => {}
        Ok(removed) => tracing::debug!(removed, "pruned request records"),
        Err(error) => tracing::warn!(%error, "cannot prune request records"),
    }
}

fn count_in_metrics(record: &ActivityRecord) {
    let key = record.key_name.clone().unwrap_or_else(|| "none".to_owned());
    metrics::counter!(KEY_REQUESTS, "key" => key.clone()).increment(1);
    let kinds =
        [("prompt", record.prompt_tokens), ("completion", record.completion_tokens), ("cached", record.cached_tokens)];
    for (kind, tokens) in kinds {
        let Some(tokens) = tokens else { continue };
        metrics::counter!(KEY_TOKENS, "key" => key.clone(), "kind" => kind).increment(tokens);
        if let Some(instance) = &record.instance {
            metrics::counter!(TOKENS, "instance" => instance.clone(), "kind" => kind).increment(tokens);
        }
    }
    if let (Some(instance), Some(ttfb)) = (&record.instance, record.ttfb_ms) {
        metrics::histogram!(TTFB, "instance" => instance.clone()).record(ttfb / 1000.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_without_a_reported_speed_gets_tokens_over_its_flow_time() {
        let record = ActivityRecord::new(1, Utc::now(), "/v1/chat/completions");
        let usage = Usage { completion_tokens: Some(20), ..Usage::default() };
        let filled = with_usage(record.clone(), usage, Some(Duration::from_millis(500)));
        assert_eq!(filled.generation_tps, Some(40.0));
        let reported = Usage { generation_tps: Some(33.0), ..usage };
        assert_eq!(with_usage(record.clone(), reported, Some(Duration::from_secs(1))).generation_tps, Some(33.0));
        assert_eq!(with_usage(record.clone(), usage, None).generation_tps, None, "not streamed: unknown");
        let nothing = with_usage(record, Usage::default(), Some(Duration::from_secs(1)));
        assert_eq!((nothing.prompt_tokens, nothing.generation_tps), (None, None), "nothing reported stays null");
    }
}
