//! [`MemoryDatabase`]: [`Database`], [`ApiKeyStore`], [`ActivityStore`](super::ActivityStore) and
//! [`ResourceHistoryStore`](super::ResourceHistoryStore) in plain memory, for embedders' own
//! tests. It keeps what SQLite keeps, rounded as SQLite rounds it, and answers as
//! [`SqliteDatabase`](super::SqliteDatabase) answers wherever the conformance suite
//! (`llamactl_core::testing::conformance`, feature `testing`) checks.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

mod activity;
mod resource_history;
mod sub_model_events;

use super::{
    ActivityRecord, ApiKeyRecord, ApiKeyStore, Database, DbError, EventQuery, ImportedInstance, InstanceEvent,
    InstanceRights, NewApiKey, RuntimeRecord, StoredInstance, Transition,
};
use crate::{InstanceName, InstanceOptions};

/// An in-memory [`Database`] and [`ApiKeyStore`]: nothing touches the disk, nothing survives
/// the value (clones share it), and there is no lock, no SQL and no background task.
///
/// Meant for tests of code that takes an `Arc<dyn Database>` or `Arc<dyn ApiKeyStore>` — a
/// [`Manager`](crate::Manager) included. It behaves as [`SqliteDatabase`](super::SqliteDatabase)
/// does where the conformance suite checks: ids that are never reused, the same errors
/// ([`DbError::AlreadyExists`], [`DbError::NotFound`], [`DbError::LookupIdTaken`],
/// [`DbError::Closed`] after [`Database::close`]), events in id order, times rounded as SQLite
/// stores them (instance and key times to the second, runtime and event times to the
/// millisecond), rights that go with their instance, and one `manager_id` for its life. It
/// never holds keys of the Go llamactl, so [`ApiKeyStore::legacy_api_keys`] is always empty.
///
/// ```
/// use std::sync::Arc;
/// use llamactl_core::{Database, InstanceOptions, Manager, ManagerConfig, MemoryDatabase};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let db = Arc::new(MemoryDatabase::new());
/// let manager = Manager::open(ManagerConfig::default(), db.clone()).await?;
/// let options = InstanceOptions::from_json(r#"{"backend_type":"vllm","backend_options":{"model":"m"}}"#)?;
/// manager.create("v".parse()?, options).await?;
/// // What the manager wrote is in the database, as it would be in SQLite.
/// let stored = db.get("v").await?.ok_or("not stored")?;
/// assert_eq!(stored.name.as_str(), "v");
/// manager.shutdown().await;
/// db.close().await;
/// assert!(db.load_all().await.is_err());
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct MemoryDatabase {
    state: Arc<Mutex<State>>,
}

impl MemoryDatabase {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state, or [`DbError::Closed`] once closed.
    fn open(&self) -> Result<MutexGuard<'_, State>, DbError> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.closed { Err(DbError::Closed) } else { Ok(state) }
    }
}

impl fmt::Debug for MemoryDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("MemoryDatabase")
            .field("instances", &state.instances.len())
            .field("events", &state.events.len())
            .field("api_keys", &state.keys.len())
            .field("closed", &state.closed)
            .finish()
    }
}

/// Everything stored. Ids count up from 1 and are never reused, as `AUTOINCREMENT` does.
#[derive(Debug, Default)]
struct State {
    closed: bool,
    /// By name (so `load_all` comes out in name order).
    instances: BTreeMap<String, Instance>,
    last_instance_id: i64,
    /// In id order.
    events: Vec<Event>,
    last_event_id: i64,
    /// By id.
    keys: BTreeMap<i64, Key>,
    last_key_id: i64,
    /// Key id by lookup id.
    lookup_ids: HashMap<String, i64>,
    manager_id: Option<String>,
    /// Request records by id.
    activity: BTreeMap<i64, ActivityRecord>,
    /// Resource samples in the order recorded.
    resource_samples: Vec<super::ResourceSample>,
    /// Sub-model events in id order.
    sub_model_events: Vec<super::SubModelEvent>,
    last_sub_model_event_id: i64,
}

#[derive(Debug)]
struct Instance {
    id: i64,
    name: InstanceName,
    /// The options as SQLite keeps them: JSON, read back on each load.
    options_json: String,
    created_at: i64,
    updated_at: i64,
    runtime: RuntimeRecord,
}

#[derive(Debug)]
struct Event {
    instance_id: i64,
    event: InstanceEvent,
}

#[derive(Debug)]
struct Key {
    /// The record, its rights left empty (they are `rights`, by instance id).
    record: ApiKeyRecord,
    rights: BTreeMap<i64, InstanceRights>,
}

fn now_seconds() -> i64 {
    Utc::now().timestamp()
}

fn from_seconds(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

/// A time as SQLite's integer seconds give it back.
fn to_second(at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    at.and_then(|t| DateTime::from_timestamp(t.timestamp(), 0))
}

/// A time as SQLite's integer milliseconds give it back.
fn to_milli(at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    at.and_then(|t| DateTime::from_timestamp_millis(t.timestamp_millis()))
}

/// A runtime record as it reads back from its SQLite row.
fn as_stored(runtime: &RuntimeRecord) -> RuntimeRecord {
    RuntimeRecord {
        process_start_ticks: runtime.process_start_ticks.map(|t| t.min(i64::MAX.unsigned_abs())),
        output_path: runtime.output_path.as_ref().map(|p| PathBuf::from(p.display().to_string())),
        started_at: to_milli(runtime.started_at),
        ready_at: to_milli(runtime.ready_at),
        stopped_at: to_milli(runtime.stopped_at),
        ..runtime.clone()
    }
}

fn options_json(options: &InstanceOptions) -> Result<String, DbError> {
    serde_json::to_string(options).map_err(|e| DbError::Corrupt(format!("cannot serialise options: {e}")))
}

impl Instance {
    fn stored(&self) -> StoredInstance {
        StoredInstance {
            id: self.id,
            name: self.name.clone(),
            options: InstanceOptions::from_json(&self.options_json),
            created_at: from_seconds(self.created_at),
            updated_at: from_seconds(self.updated_at),
            runtime: self.runtime.clone(),
        }
    }
}

impl State {
    fn insert_instance(&mut self, name: &InstanceName, json: String, created_at: i64, runtime: RuntimeRecord) {
        self.last_instance_id += 1;
        let instance = Instance {
            id: self.last_instance_id,
            name: name.clone(),
            options_json: json,
            created_at,
            updated_at: now_seconds(),
            runtime,
        };
        self.instances.insert(name.to_string(), instance);
    }

    fn instance(&self, name: &str) -> Result<&Instance, DbError> {
        self.instances.get(name).ok_or_else(|| DbError::NotFound(name.to_owned()))
    }

    fn instance_mut(&mut self, name: &str) -> Result<&mut Instance, DbError> {
        self.instances.get_mut(name).ok_or_else(|| DbError::NotFound(name.to_owned()))
    }

    /// A key with its rights, named by their instances and in name order.
    fn key_record(&self, key: &Key) -> ApiKeyRecord {
        let names: HashMap<i64, &str> = self.instances.values().map(|i| (i.id, i.name.as_str())).collect();
        let mut rights: Vec<InstanceRights> = key
            .rights
            .iter()
            .filter_map(|(id, rights)| {
                let instance = names.get(id)?;
                Some(InstanceRights { instance: (*instance).to_owned(), ..rights.clone() })
            })
            .collect();
        rights.sort_by(|a, b| a.instance.cmp(&b.instance));
        ApiKeyRecord { rights, ..key.record.clone() }
    }

    fn lookup_taken(&self, lookup_id: &str, by_other_than: Option<i64>) -> bool {
        self.lookup_ids.get(lookup_id).is_some_and(|holder| Some(*holder) != by_other_than)
    }
}

#[async_trait]
impl Database for MemoryDatabase {
    async fn create(&self, name: &InstanceName, options: &InstanceOptions) -> Result<StoredInstance, DbError> {
        let json = options_json(options)?;
        let mut state = self.open()?;
        if state.instances.contains_key(name.as_str()) {
            return Err(DbError::AlreadyExists(name.to_string()));
        }
        state.insert_instance(name, json, now_seconds(), RuntimeRecord::default());
        Ok(state.instance(name.as_str())?.stored())
    }

    async fn save(&self, name: &InstanceName, options: &InstanceOptions) -> Result<StoredInstance, DbError> {
        let json = options_json(options)?;
        let mut state = self.open()?;
        match state.instances.get_mut(name.as_str()) {
            Some(instance) => {
                instance.options_json = json;
                instance.updated_at = now_seconds();
            }
            None => state.insert_instance(name, json, now_seconds(), RuntimeRecord::default()),
        }
        Ok(state.instance(name.as_str())?.stored())
    }

    async fn delete(&self, name: &str) -> Result<bool, DbError> {
        let mut state = self.open()?;
        let Some(instance) = state.instances.remove(name) else { return Ok(false) };
        state.events.retain(|e| e.instance_id != instance.id);
        for key in state.keys.values_mut() {
            key.rights.remove(&instance.id);
        }
        Ok(true)
    }

    async fn get(&self, name: &str) -> Result<Option<StoredInstance>, DbError> {
        Ok(self.open()?.instances.get(name).map(Instance::stored))
    }

    async fn load_all(&self) -> Result<Vec<StoredInstance>, DbError> {
        Ok(self.open()?.instances.values().map(Instance::stored).collect())
    }

    async fn record_transition(
        &self,
        name: &str,
        runtime: &RuntimeRecord,
        transition: &Transition,
    ) -> Result<(), DbError> {
        let mut state = self.open()?;
        let instance = state.instance_mut(name)?;
        instance.runtime = as_stored(runtime);
        let instance_id = instance.id;
        state.last_event_id += 1;
        let event = InstanceEvent {
            id: state.last_event_id,
            instance: name.to_owned(),
            from: transition.from,
            to: transition.to,
            reason: transition.reason.clone(),
            at: to_milli(Some(transition.at)).unwrap_or_default(),
            pid: runtime.pid,
            port: runtime.port,
        };
        state.events.push(Event { instance_id, event });
        Ok(())
    }

    async fn save_runtime(&self, name: &str, runtime: &RuntimeRecord) -> Result<(), DbError> {
        self.open()?.instance_mut(name)?.runtime = as_stored(runtime);
        Ok(())
    }

    async fn events(&self, name: &str, query: EventQuery) -> Result<Vec<InstanceEvent>, DbError> {
        let state = self.open()?;
        let Some(instance) = state.instances.get(name) else { return Ok(Vec::new()) };
        let after = query.after_id.unwrap_or(0);
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        Ok(state
            .events
            .iter()
            .filter(|e| e.instance_id == instance.id && e.event.id > after)
            .take(limit)
            .map(|e| e.event.clone())
            .collect())
    }

    async fn import_instances(&self, instances: &[ImportedInstance]) -> Result<(), DbError> {
        let jsons = instances.iter().map(|i| options_json(&i.options)).collect::<Result<Vec<_>, _>>()?;
        let mut state = self.open()?;
        // All or none: refuse before anything is inserted, naming the first name that is taken
        // (by the store or by an earlier definition of the batch).
        let mut seen = std::collections::HashSet::new();
        for instance in instances {
            if state.instances.contains_key(instance.name.as_str()) || !seen.insert(instance.name.as_str()) {
                return Err(DbError::AlreadyExists(instance.name.to_string()));
            }
        }
        let now = now_seconds();
        for (instance, json) in instances.iter().zip(jsons) {
            let runtime = RuntimeRecord { desired_state: instance.desired_state, ..RuntimeRecord::default() };
            let created_at = instance.created_at.map_or(now, |t| t.timestamp());
            state.insert_instance(&instance.name, json, created_at, runtime);
        }
        Ok(())
    }

    async fn manager_id(&self) -> Result<String, DbError> {
        let mut state = self.open()?;
        Ok(state.manager_id.get_or_insert_with(|| uuid::Uuid::new_v4().simple().to_string()).clone())
    }

    async fn ping(&self) -> Result<(), DbError> {
        self.open().map(drop)
    }

    async fn close(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
    }
}

#[async_trait]
impl ApiKeyStore for MemoryDatabase {
    async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKeyRecord, DbError> {
        let mut state = self.open()?;
        if state.lookup_taken(&key.lookup_id, None) {
            return Err(DbError::LookupIdTaken(key.lookup_id.clone()));
        }
        let mut rights = BTreeMap::new();
        for given in &key.rights {
            let instance = state.instance(&given.instance)?;
            rights.insert(instance.id, given.clone());
        }
        state.last_key_id += 1;
        let id = state.last_key_id;
        let now = from_seconds(now_seconds());
        let record = ApiKeyRecord {
            id,
            name: key.name.clone(),
            user_id: key.user_id.clone(),
            permission_mode: key.permission_mode,
            expires_at: to_second(key.expires_at),
            created_at: now,
            updated_at: now,
            last_used_at: None,
            lookup_id: Some(key.lookup_id.clone()),
            sha256: Some(key.sha256.clone()),
            legacy_hash: None,
            rights: Vec::new(),
        };
        state.lookup_ids.insert(key.lookup_id.clone(), id);
        let key = Key { record, rights };
        let stored = state.key_record(&key);
        state.keys.insert(id, key);
        Ok(stored)
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, DbError> {
        let state = self.open()?;
        Ok(state.keys.values().map(|k| state.key_record(k)).collect())
    }

    async fn get_api_key(&self, id: i64) -> Result<Option<ApiKeyRecord>, DbError> {
        let state = self.open()?;
        Ok(state.keys.get(&id).map(|k| state.key_record(k)))
    }

    async fn find_api_key(&self, lookup_id: &str) -> Result<Option<ApiKeyRecord>, DbError> {
        let state = self.open()?;
        Ok(state.lookup_ids.get(lookup_id).and_then(|id| state.keys.get(id)).map(|k| state.key_record(k)))
    }

    async fn legacy_api_keys(&self) -> Result<Vec<ApiKeyRecord>, DbError> {
        let state = self.open()?;
        Ok(state.keys.values().filter(|k| k.record.sha256.is_none()).map(|k| state.key_record(k)).collect())
    }

    async fn set_api_key_token(&self, id: i64, lookup_id: &str, sha256: &str) -> Result<(), DbError> {
        let mut state = self.open()?;
        if !state.keys.contains_key(&id) {
            return Err(DbError::NotFound(format!("api key {id}")));
        }
        if state.lookup_taken(lookup_id, Some(id)) {
            return Err(DbError::LookupIdTaken(lookup_id.to_owned()));
        }
        let old = state.keys.get_mut(&id).and_then(|key| {
            key.record.sha256 = Some(sha256.to_owned());
            key.record.legacy_hash = None;
            key.record.lookup_id.replace(lookup_id.to_owned())
        });
        if let Some(old) = old {
            state.lookup_ids.remove(&old);
        }
        state.lookup_ids.insert(lookup_id.to_owned(), id);
        Ok(())
    }

    async fn touch_api_key(&self, id: i64, at: DateTime<Utc>) -> Result<(), DbError> {
        if let Some(key) = self.open()?.keys.get_mut(&id) {
            key.record.last_used_at = to_second(Some(at));
        }
        Ok(())
    }

    async fn delete_api_key(&self, id: i64) -> Result<bool, DbError> {
        let mut state = self.open()?;
        let Some(key) = state.keys.remove(&id) else { return Ok(false) };
        if let Some(lookup_id) = key.record.lookup_id {
            state.lookup_ids.remove(&lookup_id);
        }
        Ok(true)
    }
}
