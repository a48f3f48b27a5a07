//! The same checks against SQLite (a real file, reopened) and memory.

use chrono::{DateTime, TimeZone, Utc};
use llamactl_wire::{SubModelReason, SubModelStatus};

use super::*;
use crate::{Database, MemoryDatabase, SqliteDatabase};

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_700_000_000_000 + seconds * 1_000 + 123).single().unwrap()
}

fn change(instance: &str, model: &str, seconds: i64, to: SubModelStatus, reason: SubModelReason) -> SubModelNotice {
    let from = (seconds > 0).then_some(SubModelStatus::Loading);
    SubModelNotice { instance: instance.into(), model: model.into(), from, to, reason, at: at(seconds) }
}

async fn check(store: &dyn SubModelEventStore) {
    store.record_sub_model_events(&[]).await.unwrap();
    let first = [
        change("r", "alpha", 0, SubModelStatus::Unloaded, SubModelReason::Discovered),
        change("s", "alpha", 0, SubModelStatus::Unloaded, SubModelReason::Discovered),
        change("r", "alpha", 1, SubModelStatus::Failed, SubModelReason::Crashed { exit_code: Some(137) }),
    ];
    store.record_sub_model_events(&first).await.unwrap();
    let evicted = change("r", "org/m:Q4", 2, SubModelStatus::Unloaded, SubModelReason::Evicted { by: "alpha".into() });
    store.record_sub_model_events(std::slice::from_ref(&evicted)).await.unwrap();

    let r = store.sub_model_events("r", EventQuery::default()).await.unwrap();
    let changes: Vec<&SubModelNotice> = r.iter().map(|e| &e.change).collect();
    assert_eq!(changes, [&first[0], &first[2], &evicted], "oldest first, typed reasons and times kept");
    assert!(r.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    let page = store.sub_model_events("r", EventQuery { after_id: Some(r[0].id), limit: 1 }).await.unwrap();
    assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [r[1].id]);
    assert_eq!(store.sub_model_events("s", EventQuery::default()).await.unwrap().len(), 1);

    // Only the newest are kept, per instance.
    let many: Vec<SubModelNotice> = (0..SUB_MODEL_EVENTS_KEPT as i64 + 5)
        .map(|i| change("r", "beta", 10 + i, SubModelStatus::Loaded, SubModelReason::Ready))
        .collect();
    store.record_sub_model_events(&many).await.unwrap();
    let all = store.sub_model_events("r", EventQuery { after_id: None, limit: u32::MAX }).await.unwrap();
    assert_eq!(all.len(), SUB_MODEL_EVENTS_KEPT);
    assert_eq!(all.last().map(|e| &e.change), many.last());
    assert_eq!(
        store.sub_model_events("s", EventQuery::default()).await.unwrap().len(),
        1,
        "another instance keeps its own"
    );

    assert_eq!(store.delete_sub_model_events("s").await.unwrap(), 1);
    assert!(store.sub_model_events("s", EventQuery::default()).await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_keeps_sub_model_events_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llamactl.db");
    let db = SqliteDatabase::open(&path).await.unwrap();
    check(&db).await;
    db.close().await;
    let db = SqliteDatabase::open(&path).await.unwrap();
    let kept = db.sub_model_events("r", EventQuery { after_id: None, limit: 5 }).await.unwrap();
    assert_eq!(kept.len(), 5, "what was written is in the file");
    db.close().await;
}

#[tokio::test]
async fn memory_answers_as_sqlite_does() {
    check(&MemoryDatabase::new()).await;
}
