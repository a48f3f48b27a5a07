use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use sqlx::Connection;

use super::*;
use crate::InstanceName;
use crate::db::ApiKeyStore;

fn name(s: &str) -> InstanceName {
    InstanceName::new(s).unwrap()
}

fn vllm(model: &str) -> InstanceOptions {
    InstanceOptions::from_json_value(&json!({"backend_type": "vllm", "backend_options": {"model": model}})).unwrap()
}

async fn file_db(dir: &tempfile::TempDir) -> SqliteDatabase {
    SqliteDatabase::open(dir.path().join("data/llamactl.db")).await.unwrap()
}

#[tokio::test]
async fn definitions_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = file_db(&dir).await;
    let created = db.create(&name("a"), &vllm("m1")).await.unwrap();
    assert_eq!(created.runtime, RuntimeRecord::default());
    db.save(&name("a"), &vllm("m2")).await.unwrap();
    db.save(&name("b"), &vllm("m3")).await.unwrap();
    db.close().await;

    let db = file_db(&dir).await;
    let all = db.load_all().await.unwrap();
    let names: Vec<_> = all.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(all[0].options.as_ref().unwrap(), &vllm("m2"));
    assert_eq!(all[0].id, created.id, "save keeps the row");
    assert!(db.delete("a").await.unwrap());
    assert!(!db.delete("a").await.unwrap());
    assert!(db.get("a").await.unwrap().is_none());
}

#[tokio::test]
async fn creating_an_existing_name_fails_and_changes_nothing() {
    let db = SqliteDatabase::open_in_memory().await.unwrap();
    db.create(&name("a"), &vllm("first")).await.unwrap();
    let err = db.create(&name("a"), &vllm("second")).await.unwrap_err();
    assert!(matches!(err, DbError::AlreadyExists(ref n) if n == "a"), "{err}");
    assert_eq!(db.get("a").await.unwrap().unwrap().options.unwrap(), vllm("first"));
}

#[tokio::test]
async fn concurrent_creates_of_one_name_admit_exactly_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(file_db(&dir).await);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move { db.create(&name("same"), &vllm(&format!("m{i}"))).await })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(DbError::AlreadyExists(_)) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 1);
    let many: Vec<_> = (0..50)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move { db.create(&name(&format!("n{i}")), &vllm("m")).await })
        })
        .collect();
    for task in many {
        task.await.unwrap().unwrap();
    }
    assert_eq!(db.load_all().await.unwrap().len(), 51);
}

#[tokio::test]
async fn transitions_update_runtime_and_append_events() {
    let dir = tempfile::tempdir().unwrap();
    let db = file_db(&dir).await;
    db.create(&name("a"), &vllm("m")).await.unwrap();
    let runtime = RuntimeRecord {
        status: InstanceStatus::Starting,
        desired_state: DesiredState::Running,
        pid: Some(4242),
        process_start_ticks: Some(123_456),
        boot_id: Some("boot".into()),
        port: Some(8123),
        started_at: Some(Utc::now()),
        restart_count: 2,
        last_exit: ExitInfo { code: None, signal: Some(9) },
        last_error: Some("boom".into()),
        last_reason: Some(TransitionReason::OnDemand),
        ..RuntimeRecord::default()
    };
    let transition = Transition {
        from: InstanceStatus::Stopped,
        to: InstanceStatus::Starting,
        reason: TransitionReason::OnDemand,
        at: Utc::now(),
    };
    db.record_transition("a", &runtime, &transition).await.unwrap();
    let evicted = Transition {
        from: InstanceStatus::Starting,
        to: InstanceStatus::Stopped,
        reason: TransitionReason::Evicted { by: "b".into() },
        at: Utc::now(),
    };
    db.record_transition("a", &RuntimeRecord { status: InstanceStatus::Stopped, ..runtime.clone() }, &evicted)
        .await
        .unwrap();
    db.close().await;

    let db = file_db(&dir).await;
    let stored = db.get("a").await.unwrap().unwrap();
    assert_eq!(stored.runtime.status, InstanceStatus::Stopped);
    assert_eq!(stored.runtime.pid, Some(4242));
    assert_eq!(stored.runtime.port, Some(8123));
    assert_eq!(stored.runtime.restart_count, 2);
    assert_eq!(stored.runtime.last_exit.signal, Some(9));
    assert_eq!(
        stored.runtime.started_at.map(|t| t.timestamp_millis()),
        runtime.started_at.map(|t| t.timestamp_millis())
    );
    let events = db.events("a", EventQuery::default()).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].reason, TransitionReason::OnDemand);
    assert_eq!(events[1].reason, TransitionReason::Evicted { by: "b".into() });
    assert_eq!(events[1].port, Some(8123));
    let later = db.events("a", EventQuery { after_id: Some(events[0].id), limit: 10 }).await.unwrap();
    assert_eq!(later, events[1..]);

    let missing = db.record_transition("nope", &runtime, &transition).await.unwrap_err();
    assert!(matches!(missing, DbError::NotFound(_)), "{missing}");
}

#[tokio::test]
async fn events_are_append_only_and_deleted_with_their_instance() {
    let db = SqliteDatabase::open_in_memory().await.unwrap();
    db.create(&name("a"), &vllm("m")).await.unwrap();
    let t = Transition {
        from: InstanceStatus::Stopped,
        to: InstanceStatus::Starting,
        reason: TransitionReason::UserStart,
        at: Utc::now(),
    };
    db.record_transition("a", &RuntimeRecord::default(), &t).await.unwrap();
    let update = sqlx::query("UPDATE instance_events SET reason_kind = 'x'").execute(&db.pool).await;
    assert!(update.is_err(), "events must not be rewritten");
    db.delete("a").await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM instance_events").fetch_one(&db.reader).await.unwrap();
    let runtime_rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM instance_runtime").fetch_one(&db.reader).await.unwrap();
    assert_eq!((left, runtime_rows), (0, 0));
}

#[tokio::test]
async fn a_failed_second_write_leaves_no_half_made_instance() {
    let db = SqliteDatabase::open_in_memory().await.unwrap();
    // Make the runtime insert of one particular instance fail, after its instances row is in.
    sqlx::query(
        "CREATE TRIGGER fail_runtime BEFORE INSERT ON instance_runtime \
         WHEN (SELECT name FROM instances WHERE id = NEW.instance_id) = 'doomed' \
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let err = db.create(&name("doomed"), &vllm("m")).await.unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert!(db.get("doomed").await.unwrap().is_none(), "the instances row was rolled back");
    db.create(&name("fine"), &vllm("m")).await.unwrap();
}

#[tokio::test]
async fn unreadable_options_are_reported_not_dropped() {
    let db = SqliteDatabase::open_in_memory().await.unwrap();
    db.create(&name("ok"), &vllm("m")).await.unwrap();
    sqlx::query("INSERT INTO instances (name, status, created_at, updated_at, options_json) VALUES ('broken', 'stopped', 0, 0, '{\"backend_type\": 7}')")
        .execute(&db.pool)
        .await
        .unwrap();
    let all = db.load_all().await.unwrap();
    assert_eq!(all.len(), 2);
    let broken = all.iter().find(|i| i.name.as_str() == "broken").unwrap();
    assert_eq!(broken.options.as_ref().unwrap_err().field(), "backend_type");
}

#[tokio::test]
async fn closed_database_says_so() {
    let db = SqliteDatabase::open_in_memory().await.unwrap();
    db.close().await;
    assert!(matches!(db.load_all().await, Err(DbError::Closed)));
    assert!(matches!(db.ping().await, Err(DbError::Closed)));
}

/// The schema the Go llamactl v0.20 creates (instances, api_keys, key_permissions), with rows in
/// it. Its `key_permissions` has no rights columns: a row means the key may use the instance.
const GO_SCHEMA: &str = r#"
CREATE TABLE schema_migrations (version uint64, dirty bool);
INSERT INTO schema_migrations VALUES (1, 0);
CREATE TABLE instances (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK(status IN ('stopped', 'running', 'failed', 'restarting', 'shutting_down')) DEFAULT 'stopped',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    options_json TEXT NOT NULL,
    owner_user_id TEXT NULL
);
CREATE UNIQUE INDEX idx_instances_name ON instances(name);
CREATE INDEX idx_instances_status ON instances(status);
CREATE TABLE api_keys (id INTEGER PRIMARY KEY AUTOINCREMENT, key_hash TEXT NOT NULL, name TEXT NOT NULL,
    user_id TEXT NOT NULL, permission_mode TEXT NOT NULL DEFAULT 'per_instance', expires_at INTEGER NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, last_used_at INTEGER NULL);
CREATE TABLE key_permissions (key_id INTEGER NOT NULL, instance_id INTEGER NOT NULL,
    PRIMARY KEY (key_id, instance_id),
    FOREIGN KEY (key_id) REFERENCES api_keys (id) ON DELETE CASCADE,
    FOREIGN KEY (instance_id) REFERENCES instances (id) ON DELETE CASCADE);
INSERT INTO instances (name, status, created_at, updated_at, options_json) VALUES
  ('llama', 'running', 1700000000, 1700000100,
   '{"auto_restart":true,"max_restarts":3,"restart_delay":5,"on_demand_start":true,"idle_timeout":10,"backend_type":"llama_cpp","backend_options":{"model":"/m.gguf","c":4096,"ngl":0,"port":8001}}'),
  ('vllm', 'stopped', 1700000000, 1700000000,
   '{"backend_type":"vllm","backend_options":{"model":"Qwen/Qwen2-0.5B","tensor_parallel_size":1,"port":8002},"nodes":["main"]}');
INSERT INTO api_keys (key_hash, name, user_id, permission_mode, created_at, updated_at)
  VALUES ('$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA', 'k', 'u', 'per_instance', 1, 1);
INSERT INTO key_permissions VALUES (1, 1);
"#;

/// What later Go versions add to the v0.20 schema: rights columns on `key_permissions`.
const GO_LATER_COLUMNS: &str = r#"
ALTER TABLE key_permissions ADD COLUMN can_start INTEGER NOT NULL DEFAULT 1;
ALTER TABLE key_permissions ADD COLUMN can_evict INTEGER NOT NULL DEFAULT 1;
INSERT INTO schema_migrations VALUES (2, 0);
INSERT INTO api_keys (key_hash, name, user_id, permission_mode, created_at, updated_at)
  VALUES ('$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaB', 'k2', 'u', 'per_instance', 1, 1);
INSERT INTO key_permissions (key_id, instance_id, can_start, can_evict) VALUES (2, 1, 0, 1), (2, 2, 1, 0);
"#;

/// A database file made by running `sql` as the Go llamactl would have.
async fn go_database(dir: &tempfile::TempDir, sql: &[&str]) -> std::path::PathBuf {
    let path = dir.path().join("llamactl.db");
    let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    for part in sql {
        sqlx::raw_sql(sqlx::AssertSqlSafe(*part)).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    path
}

/// The structure of a table, to show it unaltered.
async fn table_sql(db: &SqliteDatabase, table: &str) -> String {
    sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?")
        .bind(table)
        .fetch_one(&db.reader)
        .await
        .unwrap()
}

#[tokio::test]
async fn go_v0_20_key_permissions_give_full_use_of_their_instance() {
    let dir = tempfile::tempdir().unwrap();
    let path = go_database(&dir, &[GO_SCHEMA]).await;
    let db = SqliteDatabase::open(&path).await.unwrap();
    let before = table_sql(&db, "key_permissions").await;
    let keys = db.legacy_api_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].rights, [rights("llama", true, true, true)], "a row means the key may use it");
    assert_eq!(db.get_api_key(keys[0].id).await.unwrap().unwrap().rights, keys[0].rights);

    // A key made here: rights the Go table can hold go there too, the rest beside it.
    let key = db
        .create_api_key(&new_key("new", vec![rights("llama", true, false, true), rights("vllm", false, true, false)]))
        .await
        .unwrap();
    assert_eq!(key.rights, [rights("llama", true, false, true), rights("vllm", false, true, false)]);
    assert_eq!(db.find_api_key("new").await.unwrap().unwrap().rights, key.rights);
    let go_rows: Vec<(i64,)> = sqlx::query_as("SELECT instance_id FROM key_permissions WHERE key_id = ?")
        .bind(key.id)
        .fetch_all(&db.reader)
        .await
        .unwrap();
    assert_eq!(go_rows, [(1,)], "the Go llamactl sees the key may use llama, and nothing of vllm");
    let listed = db.list_api_keys().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].rights, [rights("llama", true, true, true)]);
    assert_eq!(table_sql(&db, "key_permissions").await, before, "the Go table is never altered");

    // Rights go with their instance, in both tables.
    db.delete("llama").await.unwrap();
    assert_eq!(db.get_api_key(key.id).await.unwrap().unwrap().rights, [rights("vllm", false, true, false)]);
    assert!(db.legacy_api_keys().await.unwrap()[0].rights.is_empty());
}

#[tokio::test]
async fn later_go_key_permissions_are_read_from_their_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = go_database(&dir, &[GO_SCHEMA, GO_LATER_COLUMNS]).await;
    let db = SqliteDatabase::open(&path).await.unwrap();
    let before = table_sql(&db, "key_permissions").await;
    let keys = db.legacy_api_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].rights, [rights("llama", true, true, true)], "the ALTER's default for old rows");
    assert_eq!(keys[1].rights, [rights("llama", true, false, true), rights("vllm", true, true, false)]);

    let key = db
        .create_api_key(&new_key("new", vec![rights("llama", true, true, false), rights("vllm", false, false, true)]))
        .await
        .unwrap();
    assert_eq!(key.rights, [rights("llama", true, true, false), rights("vllm", false, false, true)]);
    let go_rows: Vec<(i64, i64, i64)> =
        sqlx::query_as("SELECT instance_id, can_start, can_evict FROM key_permissions WHERE key_id = ?")
            .bind(key.id)
            .fetch_all(&db.reader)
            .await
            .unwrap();
    assert_eq!(go_rows, [(1, 1, 0)], "the Go llamactl reads the same rights for llama");
    assert_eq!(table_sql(&db, "key_permissions").await, before);
    db.close().await;

    // Opened again, the same rights.
    let db = SqliteDatabase::open(&path).await.unwrap();
    assert_eq!(db.get_api_key(key.id).await.unwrap().unwrap().rights, key.rights);
}

#[tokio::test]
async fn a_go_llamactl_database_opens_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llamactl.db");
    {
        let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::raw_sql(GO_SCHEMA).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
    let db = SqliteDatabase::open(&path).await.unwrap();
    let all = db.load_all().await.unwrap();
    assert_eq!(all.len(), 2);
    let llama = &all[0];
    assert_eq!(llama.name.as_str(), "llama");
    assert_eq!(llama.created_at.timestamp(), 1_700_000_000);
    let options = llama.options.as_ref().unwrap();
    assert_eq!(options.backend.pinned_port(), Some(8001));
    assert_eq!(options.idle_timeout, Some(std::time::Duration::from_secs(600)));
    assert_eq!(llama.runtime.desired_state, DesiredState::Running, "Go restarts what it left running");
    assert_eq!(all[1].runtime.desired_state, DesiredState::Stopped);

    // Our statuses map onto the Go CHECK constraint, which is still in force.
    let runtime = RuntimeRecord { status: InstanceStatus::Starting, ..llama.runtime.clone() };
    let t = Transition {
        from: InstanceStatus::Stopped,
        to: InstanceStatus::Starting,
        reason: TransitionReason::Boot,
        at: Utc::now(),
    };
    db.record_transition("llama", &runtime, &t).await.unwrap();
    let legacy: String =
        sqlx::query_scalar("SELECT status FROM instances WHERE name = 'llama'").fetch_one(&db.reader).await.unwrap();
    assert_eq!(legacy, "running");

    // Its keys and their permissions are untouched.
    let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM key_permissions").fetch_one(&db.reader).await.unwrap();
    assert_eq!(keys, 1);

    // A row the Go llamactl adds later, without a runtime row, still loads.
    sqlx::query("INSERT INTO instances (name, status, created_at, updated_at, options_json) VALUES ('late', 'running', 1, 1, '{\"backend_type\":\"vllm\",\"backend_options\":{\"model\":\"m\"}}')")
        .execute(&db.pool)
        .await
        .unwrap();
    let late = db.get("late").await.unwrap().unwrap();
    assert_eq!(late.runtime.desired_state, DesiredState::Running);
    db.record_transition("late", &RuntimeRecord::default(), &t).await.unwrap();
}

#[tokio::test]
async fn wal_and_durability_settings_are_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let db = file_db(&dir).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&db.pool).await.unwrap();
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&db.pool).await.unwrap();
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&db.pool).await.unwrap();
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(&db.pool).await.unwrap();
    assert_eq!((mode.as_str(), sync, fk), ("wal", 2, 1));
    assert!(busy >= 5_000, "busy_timeout {busy}");
}

fn new_key(lookup: &str, rights: Vec<crate::db::InstanceRights>) -> crate::db::NewApiKey {
    crate::db::NewApiKey {
        name: format!("key {lookup}"),
        user_id: "u".into(),
        lookup_id: lookup.into(),
        sha256: format!("{lookup:0>64}"),
        permission_mode: crate::db::PermissionMode::PerInstance,
        expires_at: None,
        rights,
    }
}

fn rights(instance: &str, infer: bool, start: bool, evict: bool) -> crate::db::InstanceRights {
    crate::db::InstanceRights { instance: instance.into(), can_infer: infer, can_start: start, can_evict: evict }
}

#[tokio::test]
async fn api_keys_are_found_by_lookup_id_with_their_rights() {
    let dir = tempfile::tempdir().unwrap();
    let db = file_db(&dir).await;
    db.create(&name("a"), &vllm("m")).await.unwrap();
    db.create(&name("b"), &vllm("m")).await.unwrap();
    let key = db
        .create_api_key(&new_key("k1", vec![rights("a", true, true, false), rights("b", true, false, true)]))
        .await
        .unwrap();
    assert_eq!(key.rights, [rights("a", true, true, false), rights("b", true, false, true)]);
    db.create_api_key(&new_key("k2", vec![])).await.unwrap();

    let found = db.find_api_key("k1").await.unwrap().unwrap();
    assert_eq!(found, key);
    assert!(db.find_api_key("nope").await.unwrap().is_none());
    let all = db.list_api_keys().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].rights.len(), 2);
    assert!(all[1].rights.is_empty());

    // Rights go with their instance; the key stays.
    db.delete("b").await.unwrap();
    assert_eq!(db.get_api_key(key.id).await.unwrap().unwrap().rights, [rights("a", true, true, false)]);
    // A key's token and rights go with it.
    assert!(db.delete_api_key(key.id).await.unwrap());
    assert!(db.find_api_key("k1").await.unwrap().is_none());
    let leftover: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM key_instance_rights").fetch_one(&db.reader).await.unwrap();
    assert_eq!(leftover, 0);
}

#[tokio::test]
async fn a_key_for_an_unknown_instance_is_not_stored() {
    let db = SqliteDatabase::open_in_memory().await.unwrap();
    let err = db.create_api_key(&new_key("k", vec![rights("ghost", true, false, false)])).await.unwrap_err();
    assert!(matches!(err, DbError::NotFound(ref n) if n == "ghost"), "{err}");
    assert!(db.list_api_keys().await.unwrap().is_empty());
}

#[tokio::test]
async fn lookup_ids_are_unique() {
    let db = SqliteDatabase::open_in_memory().await.unwrap();
    db.create_api_key(&new_key("same", vec![])).await.unwrap();
    assert!(db.create_api_key(&new_key("same", vec![])).await.is_err());
    assert_eq!(db.list_api_keys().await.unwrap().len(), 1, "the failed insert left nothing");
}

#[tokio::test]
async fn go_llamactl_keys_are_legacy_until_given_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llamactl.db");
    {
        let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::raw_sql(GO_SCHEMA).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
    let db = SqliteDatabase::open(&path).await.unwrap();
    let legacy = db.legacy_api_keys().await.unwrap();
    assert_eq!(legacy.len(), 1);
    assert!(legacy[0].legacy_hash.as_deref().unwrap().starts_with("$argon2id$"));
    assert_eq!(legacy[0].rights, [rights("llama", true, true, true)], "a Go v0.20 row gives full use");
    db.set_api_key_token(legacy[0].id, "upgraded", &"f".repeat(64)).await.unwrap();
    assert!(db.legacy_api_keys().await.unwrap().is_empty());
    let upgraded = db.find_api_key("upgraded").await.unwrap().unwrap();
    assert_eq!(upgraded.id, legacy[0].id);
    assert_eq!(upgraded.legacy_hash, None);
    db.touch_api_key(upgraded.id, Utc::now()).await.unwrap();
    assert!(db.get_api_key(upgraded.id).await.unwrap().unwrap().last_used_at.is_some());
}

#[tokio::test]
async fn importing_instances_is_all_or_nothing() {
    let db = SqliteDatabase::open_in_memory().await.unwrap();
    db.create(&name("taken"), &vllm("m")).await.unwrap();
    let imported = |n: &str, desired| crate::db::ImportedInstance {
        name: name(n),
        options: vllm(n),
        created_at: chrono::DateTime::from_timestamp(1_700_000_000, 0),
        desired_state: desired,
    };
    let batch = vec![
        imported("new1", DesiredState::Running),
        imported("taken", DesiredState::Stopped),
        imported("new2", DesiredState::Stopped),
    ];
    let err = db.import_instances(&batch).await.unwrap_err();
    assert!(matches!(err, DbError::AlreadyExists(ref n) if n == "taken"), "{err}");
    assert_eq!(db.load_all().await.unwrap().len(), 1, "nothing of the batch was kept");
    db.import_instances(&[imported("new1", DesiredState::Running), imported("new2", DesiredState::Stopped)])
        .await
        .unwrap();
    let all = db.load_all().await.unwrap();
    let names: Vec<String> = all.iter().map(|i| i.name.to_string()).collect();
    assert_eq!(names, ["new1", "new2", "taken"]);
    assert_eq!(all[0].created_at.timestamp(), 1_700_000_000, "the original creation time is kept");
    assert_eq!(all[0].runtime.desired_state, DesiredState::Running);
    assert_eq!(all[1].runtime.desired_state, DesiredState::Stopped);
}

/// Writes queued together share a commit; one that fails (a duplicate name, an unknown
/// instance) is undone alone and the others of its batch are stored and answered.
#[tokio::test]
async fn concurrent_writes_share_commits_and_a_failing_one_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(file_db(&dir).await);
    let mut tasks = Vec::new();
    for i in 0..300 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let n = name(&format!("n{}", i % 150));
            if i % 7 == 0 {
                // Fails: no such instance.
                let runtime = RuntimeRecord::default();
                let result = db.save_runtime("missing", &runtime).await;
                assert!(matches!(result, Err(DbError::NotFound(_))), "{result:?}");
            }
            db.create(&n, &vllm(&format!("m{i}"))).await.map(|stored| stored.name.to_string())
        }));
    }
    let mut created = std::collections::BTreeSet::new();
    let mut duplicates = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(n) => assert!(created.insert(n), "one create per name succeeds"),
            Err(DbError::AlreadyExists(_)) => duplicates += 1,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created.len(), duplicates), (150, 150));
    db.close().await;
    let db = file_db(&dir).await;
    let stored: std::collections::BTreeSet<_> =
        db.load_all().await.unwrap().into_iter().map(|i| i.name.to_string()).collect();
    assert_eq!(stored, created, "every acknowledged create is on disk, nothing else");
}

#[tokio::test]
async fn a_database_file_has_one_owner_until_it_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llamactl.db");
    let first = SqliteDatabase::open(&path).await.unwrap();
    first.describe_holder("test owner").unwrap();
    let second = SqliteDatabase::open(&path).await.unwrap_err();
    let DbError::InUse { path: shown, holder } = &second else { panic!("{second}") };
    assert_eq!(shown, &path.display().to_string());
    assert_eq!(holder, &format!("pid {}, test owner", std::process::id()));
    assert!(second.to_string().contains("in use by another llamactl"), "{second}");
    // A clone is the same owner; a shared handle reads and writes beside it.
    let clone = first.clone();
    let shared = SqliteDatabase::open_shared(&path).await.unwrap();
    shared.create(&name("beside"), &vllm("m")).await.unwrap();
    assert_eq!(clone.load_all().await.unwrap().len(), 1);
    shared.close().await;
    first.close().await;
    let again = SqliteDatabase::open(&path).await.unwrap();
    assert_eq!(again.load_all().await.unwrap().len(), 1);
}
