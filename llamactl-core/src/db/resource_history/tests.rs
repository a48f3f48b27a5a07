//! The same checks against SQLite (a real file, reopened) and memory.

use chrono::{Duration, TimeZone};

use super::*;
use crate::{Database, MemoryDatabase, SqliteDatabase};

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_700_000_000_000 + seconds * 1_000 + 123).single().unwrap()
}

fn tick(seconds: i64) -> Vec<ResourceSample> {
    let mut host = ResourceSample::new(at(seconds), ResourceScope::Host);
    host.cpu_percent = Some(12.5);
    host.memory_used_bytes = Some(3 << 30);
    host.memory_total_bytes = Some(16 << 30);
    host.memory_available_bytes = Some(13 << 30);
    host.load1 = Some(0.75);
    let mut a = ResourceSample::new(at(seconds), ResourceScope::Instance("a".into()));
    a.cpu_percent = Some(180.0);
    a.memory_used_bytes = Some(1 << 40);
    let mut b = ResourceSample::new(at(seconds), ResourceScope::Instance("b".into()));
    b.memory_used_bytes = Some(1);
    let mut gpu = ResourceSample::new(at(seconds), ResourceScope::Gpu(1));
    gpu.cpu_percent = Some(99.0);
    vec![host, a, b, gpu]
}

async fn check(store: &dyn ResourceHistoryStore) {
    store.record_resource_samples(&[]).await.unwrap();
    for seconds in [0, 10, 20] {
        store.record_resource_samples(&tick(seconds)).await.unwrap();
    }
    let all = store.resource_samples(at(0), None).await.unwrap();
    assert_eq!(all.len(), 12);
    assert_eq!(all[..4], tick(0)[..], "a tick comes back in the order recorded");
    let recent = store.resource_samples(at(10), None).await.unwrap();
    assert_eq!(recent.len(), 8, "since is inclusive");
    let a = store.resource_samples(at(0), Some(&ResourceScope::Instance("a".into()))).await.unwrap();
    assert_eq!(a.iter().map(|s| s.at).collect::<Vec<_>>(), [at(0), at(10), at(20)]);
    let gpu = store.resource_samples(at(0), Some(&ResourceScope::Gpu(1))).await.unwrap();
    assert_eq!((gpu.len(), gpu[0].cpu_percent), (3, Some(99.0)));
    assert!(store.resource_samples(at(0), Some(&ResourceScope::Gpu(0))).await.unwrap().is_empty());
    assert!(store.resource_samples(at(21), None).await.unwrap().is_empty());

    let mut huge = ResourceSample::new(at(-5), ResourceScope::Instance("huge".into()));
    huge.memory_used_bytes = Some(u64::MAX);
    store.record_resource_samples(&[huge]).await.unwrap();
    let huge = store.resource_samples(at(-5), Some(&ResourceScope::Instance("huge".into()))).await.unwrap();
    assert_eq!(huge[0].memory_used_bytes, Some(i64::MAX as u64), "bytes beyond i64 are kept as i64::MAX");

    assert_eq!(store.prune_resource_samples(at(10)).await.unwrap(), 5);
    assert_eq!(store.prune_resource_samples(at(10)).await.unwrap(), 0);
    let left = store.resource_samples(at(0) - Duration::days(1), None).await.unwrap();
    assert_eq!(left.first().map(|s| s.at), Some(at(10)));
    assert_eq!(left.len(), 8);
}

#[tokio::test]
async fn sqlite_keeps_samples_across_reopening_and_prunes_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llamactl.db");
    let db = SqliteDatabase::open(&path).await.unwrap();
    check(&db).await;
    db.close().await;
    let db = SqliteDatabase::open(&path).await.unwrap();
    let kept = db.resource_samples(at(0), None).await.unwrap();
    assert_eq!(kept.len(), 8, "what was written is in the file");
    assert_eq!(kept[..4], tick(10)[..]);
    db.close().await;
}

#[tokio::test]
async fn memory_answers_as_sqlite_does() {
    let db = MemoryDatabase::new();
    check(&db).await;
    let mut late = ResourceSample::new(at(5) + Duration::microseconds(700), ResourceScope::Host);
    late.load1 = Some(1.0);
    db.record_resource_samples(&[late]).await.unwrap();
    let read = db.resource_samples(at(5), Some(&ResourceScope::Host)).await.unwrap();
    assert_eq!(read[0].at, at(5), "kept to the millisecond, and sorted by time");
    db.close().await;
    assert!(matches!(db.resource_samples(at(0), None).await, Err(DbError::Closed)));
}
