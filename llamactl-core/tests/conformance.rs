//! The conformance suite (`llamactl_core::testing::conformance`) against both implementations
//! that ship, and against deliberately broken ones, to show that it can fail. The feature is on
//! for this crate's own tests (a dev-dependency on itself); the published crate's tests need
//! `--features testing`.
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use llamactl_core::db::{
    ActivityGroupBy, ActivityQuery, ActivityRecord, ActivityStats, ActivityStore, ApiKeyRecord, ApiKeyStore, NewApiKey,
};
use llamactl_core::testing::conformance::{
    activity_store_conformance, api_key_store_conformance, check_activity_store, check_api_key_store, check_database,
    database_conformance,
};
use llamactl_core::{
    Database, DbError, EventQuery, ImportedInstance, InstanceEvent, InstanceName, InstanceOptions, MemoryDatabase,
    RuntimeRecord, SqliteDatabase, StoredInstance, Transition,
};

/// Opens a new database file in `dir` at each call.
async fn sqlite_file(dir: &tempfile::TempDir, count: &AtomicUsize) -> SqliteDatabase {
    let n = count.fetch_add(1, Ordering::Relaxed);
    SqliteDatabase::open(dir.path().join(format!("conformance-{n}.db"))).await.unwrap()
}

#[tokio::test]
async fn sqlite_on_a_file_keeps_the_database_rules() {
    let (dir, count) = (tempfile::tempdir().unwrap(), AtomicUsize::new(0));
    database_conformance(async || sqlite_file(&dir, &count).await).await;
}

#[tokio::test]
async fn sqlite_on_a_file_keeps_the_api_key_rules() {
    let (dir, count) = (tempfile::tempdir().unwrap(), AtomicUsize::new(0));
    api_key_store_conformance(async || sqlite_file(&dir, &count).await).await;
}

#[tokio::test]
async fn sqlite_on_a_file_keeps_the_activity_rules() {
    let (dir, count) = (tempfile::tempdir().unwrap(), AtomicUsize::new(0));
    activity_store_conformance(async || sqlite_file(&dir, &count).await).await;
}

#[tokio::test]
async fn the_memory_database_keeps_the_activity_rules() {
    activity_store_conformance(async || MemoryDatabase::new()).await;
}

#[tokio::test]
async fn the_memory_database_keeps_the_database_rules() {
    database_conformance(async || MemoryDatabase::new()).await;
}

#[tokio::test]
async fn the_memory_database_keeps_the_api_key_rules() {
    api_key_store_conformance(async || MemoryDatabase::new()).await;
}

/// A [`MemoryDatabase`] with one defect: `delete` says it deleted and keeps everything.
#[derive(Debug, Default)]
struct DeleteDoesNothing(MemoryDatabase);

#[async_trait]
impl Database for DeleteDoesNothing {
    async fn create(&self, name: &InstanceName, options: &InstanceOptions) -> Result<StoredInstance, DbError> {
        self.0.create(name, options).await
    }
    async fn save(&self, name: &InstanceName, options: &InstanceOptions) -> Result<StoredInstance, DbError> {
        self.0.save(name, options).await
    }
    async fn delete(&self, _name: &str) -> Result<bool, DbError> {
        Ok(true)
    }
    async fn get(&self, name: &str) -> Result<Option<StoredInstance>, DbError> {
        self.0.get(name).await
    }
    async fn load_all(&self) -> Result<Vec<StoredInstance>, DbError> {
        self.0.load_all().await
    }
    async fn record_transition(&self, name: &str, runtime: &RuntimeRecord, t: &Transition) -> Result<(), DbError> {
        self.0.record_transition(name, runtime, t).await
    }
    async fn save_runtime(&self, name: &str, runtime: &RuntimeRecord) -> Result<(), DbError> {
        self.0.save_runtime(name, runtime).await
    }
    async fn events(&self, name: &str, query: EventQuery) -> Result<Vec<InstanceEvent>, DbError> {
        self.0.events(name, query).await
    }
    async fn import_instances(&self, instances: &[ImportedInstance]) -> Result<(), DbError> {
        self.0.import_instances(instances).await
    }
    async fn manager_id(&self) -> Result<String, DbError> {
        self.0.manager_id().await
    }
    async fn ping(&self) -> Result<(), DbError> {
        self.0.ping().await
    }
    async fn close(&self) {
        self.0.close().await;
    }
}

#[tokio::test]
#[should_panic(expected = "database rule delete_removes_the_instance")]
async fn the_suite_fails_a_database_whose_delete_does_nothing() {
    database_conformance(async || DeleteDoesNothing::default()).await;
}

#[tokio::test]
async fn the_suite_names_exactly_the_rules_a_broken_delete_breaks() {
    let broken: Vec<&str> =
        check_database(async || DeleteDoesNothing::default()).await.iter().map(|v| v.rule).collect();
    assert_eq!(broken, ["ids_are_never_reused", "delete_removes_the_instance", "delete_takes_the_events_with_it"]);
    assert!(check_database(async || MemoryDatabase::new()).await.is_empty());
}

/// A [`MemoryDatabase`] whose key lookups forget the rights and whose touches are lost.
#[derive(Debug, Default)]
struct ForgetfulKeys(MemoryDatabase);

#[async_trait]
impl ApiKeyStore for ForgetfulKeys {
    async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKeyRecord, DbError> {
        self.0.create_api_key(key).await
    }
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, DbError> {
        self.0.list_api_keys().await
    }
    async fn get_api_key(&self, id: i64) -> Result<Option<ApiKeyRecord>, DbError> {
        self.0.get_api_key(id).await
    }
    async fn find_api_key(&self, lookup_id: &str) -> Result<Option<ApiKeyRecord>, DbError> {
        let found = self.0.find_api_key(lookup_id).await?;
        Ok(found.map(|key| ApiKeyRecord { rights: Vec::new(), ..key }))
    }
    async fn legacy_api_keys(&self) -> Result<Vec<ApiKeyRecord>, DbError> {
        self.0.legacy_api_keys().await
    }
    async fn set_api_key_token(&self, id: i64, lookup_id: &str, sha256: &str) -> Result<(), DbError> {
        self.0.set_api_key_token(id, lookup_id, sha256).await
    }
    async fn touch_api_key(&self, _id: i64, _at: DateTime<Utc>) -> Result<(), DbError> {
        Ok(())
    }
    async fn delete_api_key(&self, id: i64) -> Result<bool, DbError> {
        self.0.delete_api_key(id).await
    }
}

/// The instance store of [`ForgetfulKeys`], unchanged.
#[async_trait]
impl Database for ForgetfulKeys {
    async fn create(&self, name: &InstanceName, options: &InstanceOptions) -> Result<StoredInstance, DbError> {
        self.0.create(name, options).await
    }
    async fn save(&self, name: &InstanceName, options: &InstanceOptions) -> Result<StoredInstance, DbError> {
        self.0.save(name, options).await
    }
    async fn delete(&self, name: &str) -> Result<bool, DbError> {
        self.0.delete(name).await
    }
    async fn get(&self, name: &str) -> Result<Option<StoredInstance>, DbError> {
        self.0.get(name).await
    }
    async fn load_all(&self) -> Result<Vec<StoredInstance>, DbError> {
        self.0.load_all().await
    }
    async fn record_transition(&self, name: &str, runtime: &RuntimeRecord, t: &Transition) -> Result<(), DbError> {
        self.0.record_transition(name, runtime, t).await
    }
    async fn save_runtime(&self, name: &str, runtime: &RuntimeRecord) -> Result<(), DbError> {
        self.0.save_runtime(name, runtime).await
    }
    async fn events(&self, name: &str, query: EventQuery) -> Result<Vec<InstanceEvent>, DbError> {
        self.0.events(name, query).await
    }
    async fn import_instances(&self, instances: &[ImportedInstance]) -> Result<(), DbError> {
        self.0.import_instances(instances).await
    }
    async fn manager_id(&self) -> Result<String, DbError> {
        self.0.manager_id().await
    }
    async fn ping(&self) -> Result<(), DbError> {
        self.0.ping().await
    }
    async fn close(&self) {
        self.0.close().await;
    }
}

#[tokio::test]
#[should_panic(expected = "API key store rule touch_records_the_last_use")]
async fn the_suite_fails_a_key_store_that_loses_touches() {
    api_key_store_conformance(async || ForgetfulKeys::default()).await;
}

#[tokio::test]
async fn the_suite_names_the_key_rules_a_forgetful_store_breaks() {
    let broken: Vec<&str> =
        check_api_key_store(async || ForgetfulKeys::default()).await.iter().map(|v| v.rule).collect();
    assert_eq!(
        broken,
        [
            "a_created_key_is_found_by_id_and_lookup_id",
            "rights_come_back_as_given_in_name_order",
            "a_new_token_replaces_the_lookup_id",
            "touch_records_the_last_use",
            "rights_go_with_their_instance",
        ]
    );
}

/// A [`MemoryDatabase`] whose statistics take the median for the 95th percentile and whose
/// pruning ignores the age.
#[derive(Debug, Default)]
struct SloppyActivity(MemoryDatabase);

/// Every [`Database`] method of `$ty` answered by its `.0`.
macro_rules! database_of_inner {
    ($ty:ty) => {
        #[async_trait]
        impl Database for $ty {
            async fn create(&self, name: &InstanceName, o: &InstanceOptions) -> Result<StoredInstance, DbError> {
                self.0.create(name, o).await
            }
            async fn save(&self, name: &InstanceName, o: &InstanceOptions) -> Result<StoredInstance, DbError> {
                self.0.save(name, o).await
            }
            async fn delete(&self, name: &str) -> Result<bool, DbError> {
                self.0.delete(name).await
            }
            async fn get(&self, name: &str) -> Result<Option<StoredInstance>, DbError> {
                self.0.get(name).await
            }
            async fn load_all(&self) -> Result<Vec<StoredInstance>, DbError> {
                self.0.load_all().await
            }
            async fn record_transition(&self, n: &str, r: &RuntimeRecord, t: &Transition) -> Result<(), DbError> {
                self.0.record_transition(n, r, t).await
            }
            async fn save_runtime(&self, name: &str, runtime: &RuntimeRecord) -> Result<(), DbError> {
                self.0.save_runtime(name, runtime).await
            }
            async fn events(&self, name: &str, query: EventQuery) -> Result<Vec<InstanceEvent>, DbError> {
                self.0.events(name, query).await
            }
            async fn import_instances(&self, instances: &[ImportedInstance]) -> Result<(), DbError> {
                self.0.import_instances(instances).await
            }
            async fn manager_id(&self) -> Result<String, DbError> {
                self.0.manager_id().await
            }
            async fn ping(&self) -> Result<(), DbError> {
                self.0.ping().await
            }
            async fn close(&self) {
                self.0.close().await;
            }
        }
    };
}

database_of_inner!(SloppyActivity);

#[async_trait]
impl ActivityStore for SloppyActivity {
    async fn record_activity(&self, records: &[ActivityRecord]) -> Result<(), DbError> {
        self.0.record_activity(records).await
    }
    async fn activity(&self, query: &ActivityQuery) -> Result<Vec<ActivityRecord>, DbError> {
        self.0.activity(query).await
    }
    async fn activity_stats(
        &self,
        since: Option<DateTime<Utc>>,
        group_by: ActivityGroupBy,
    ) -> Result<Vec<ActivityStats>, DbError> {
        let mut stats = self.0.activity_stats(since, group_by).await?;
        for group in &mut stats {
            group.duration_p95_ms = group.duration_p50_ms;
        }
        Ok(stats)
    }
    async fn prune_activity(&self, keep: u64, _older_than: DateTime<Utc>) -> Result<u64, DbError> {
        self.0.prune_activity(keep, DateTime::<Utc>::MIN_UTC).await
    }
    async fn max_activity_id(&self) -> Result<i64, DbError> {
        self.0.max_activity_id().await
    }
}

#[tokio::test]
async fn the_suite_names_the_activity_rules_a_sloppy_store_breaks() {
    let broken: Vec<&str> =
        check_activity_store(async || SloppyActivity::default()).await.iter().map(|v| v.rule).collect();
    assert_eq!(broken, ["stats_are_the_summary_of_the_records", "prune_keeps_the_newest"]);
}
