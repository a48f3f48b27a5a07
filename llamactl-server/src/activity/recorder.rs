//! The recorder's task: takes finished requests from the bounded queue, reads their token
//! usage, counts them in the metrics, publishes them to the event stream and writes them in
//! batches; prunes by count and age once a minute.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use llamactl_core::db::{ActivityRecord, ActivityStore};
use tokio::sync::{broadcast, mpsc};

use super::usage::{Usage, UsageTap};

/// Most records written together.
const MAX_BATCH: usize = 1024;
/// How long the recorder lets records gather after the first one arrives.
const GATHER_FOR: Duration = Duration::from_millis(100);
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
///
/// It sleeps on the queue while nothing comes; the first record that arrives wakes it, and it
/// then lets the batch gather for 100 ms before it takes everything queued. Requests
/// thus wake it at most once per interval, not once each (a wake-up of another task costs the
/// request path more than the record's whole handling).
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
        let first = match tokio::time::timeout(PRUNE_EVERY, queue.recv()).await {
            Err(_) => continue,
            Ok(None) => break,
            Ok(Some(first)) => first,
        };
        batch.push(first);
        tokio::time::sleep(GATHER_FOR).await;
        while let Ok(finished) = queue.try_recv() {
            batch.push(finished);
            if batch.len() == MAX_BATCH {
                write(store.as_ref(), &events, &mut batch).await;
            }
        }
        write(store.as_ref(), &events, &mut batch).await;
    }
}

/// Reads the usage of the finished requests in `batch`, counts and publishes them, and writes
/// them in one go; `batch` is left empty.
async fn write(store: &dyn ActivityStore, events: &broadcast::Sender<Arc<ActivityRecord>>, batch: &mut Vec<Finished>) {
    if batch.is_empty() {
        return;
    }
    let records: Vec<ActivityRecord> = batch
        .drain(..)
        .map(|finished| {
            let usage = finished.tap.as_ref().map(UsageTap::usage).unwrap_or_default();
            let record = with_usage(finished.record, usage, finished.streaming_for);
            if events.receiver_count() > 0 {
                let _ = events.send(Arc::new(record.clone()));
            }
            record
        })
        .collect();
    count_in_metrics(&records);
    if let Err(error) = store.record_activity(&records).await {
        metrics::counter!(WRITE_ERRORS).increment(records.len() as u64);
        tracing::warn!(%error, records = records.len(), "cannot write request records");
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

/// Tokens of one kind or another, as the metrics count them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    requests: u64,
    prompt: u64,
    completion: u64,
    cached: u64,
}

impl Counts {
    fn add(&mut self, record: &ActivityRecord) {
        self.requests += 1;
        self.prompt += record.prompt_tokens.unwrap_or(0);
        self.completion += record.completion_tokens.unwrap_or(0);
        self.cached += record.cached_tokens.unwrap_or(0);
    }

    fn kinds(self) -> [(&'static str, u64); 3] {
        [("prompt", self.prompt), ("completion", self.completion), ("cached", self.cached)]
    }
}

/// The batch's counts per key name and per instance: the metrics are then looked up once per
/// key and instance in a batch, not once per record.
fn tally(records: &[ActivityRecord]) -> (HashMap<&str, Counts>, HashMap<&str, Counts>) {
    let (mut keys, mut instances) = (HashMap::<&str, Counts>::new(), HashMap::<&str, Counts>::new());
    for record in records {
        keys.entry(record.key_name.as_deref().unwrap_or("none")).or_default().add(record);
        if let Some(instance) = &record.instance {
            instances.entry(instance).or_default().add(record);
        }
    }
    (keys, instances)
}

fn count_in_metrics(records: &[ActivityRecord]) {
    let (keys, instances) = tally(records);
    for (key, counts) in keys {
        metrics::counter!(KEY_REQUESTS, "key" => key.to_owned()).increment(counts.requests);
        for (kind, tokens) in counts.kinds().into_iter().filter(|(_, n)| *n > 0) {
            metrics::counter!(KEY_TOKENS, "key" => key.to_owned(), "kind" => kind).increment(tokens);
        }
    }
    for (instance, counts) in instances {
        for (kind, tokens) in counts.kinds().into_iter().filter(|(_, n)| *n > 0) {
            metrics::counter!(TOKENS, "instance" => instance.to_owned(), "kind" => kind).increment(tokens);
        }
    }
    let mut ttfb = HashMap::<&str, metrics::Histogram>::new();
    for record in records {
        if let (Some(instance), Some(ms)) = (record.instance.as_deref(), record.ttfb_ms) {
            ttfb.entry(instance)
                .or_insert_with(|| metrics::histogram!(TTFB, "instance" => instance.to_owned()))
                .record(ms / 1000.0);
        }
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

    #[test]
    fn a_batch_is_counted_per_key_and_instance() {
        let record = |key: Option<&str>, instance: Option<&str>, prompt: Option<u64>| {
            let mut r = ActivityRecord::new(1, Utc::now(), "/v1/chat/completions");
            (r.key_name, r.instance, r.prompt_tokens) = (key.map(Into::into), instance.map(Into::into), prompt);
            r
        };
        let batch = [
            record(Some("ci"), Some("a"), Some(3)),
            record(Some("ci"), Some("b"), None),
            record(None, Some("a"), Some(4)),
        ];
        let (keys, instances) = tally(&batch);
        assert_eq!(keys["ci"], Counts { requests: 2, prompt: 3, ..Counts::default() });
        assert_eq!(keys["none"], Counts { requests: 1, prompt: 4, ..Counts::default() }, "no key counts as none");
        assert_eq!(instances["a"], Counts { requests: 2, prompt: 7, ..Counts::default() });
        assert_eq!(instances["b"].prompt, 0, "no tokens reported adds none");
    }
}
