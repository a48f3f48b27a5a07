//! [`Database`] (and, in `api_keys`, [`ApiKeyStore`](super::ApiKeyStore)) on SQLite (sqlx): WAL journal, `synchronous=FULL` so that every acknowledged
//! write survives a crash or power loss, a busy timeout, foreign keys on, and the migrations of
//! the workspace's `migrations/` folder embedded in the binary.
//!
//! Writes go through a single connection (one writer, as SQLite allows), so concurrent writers
//! queue in-process instead of spinning in SQLite's busy handler, and writes queued together
//! share one commit (see `group_commit`); reads use their own pool.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::{FutureExt, TryStreamExt};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};

mod activity;
mod api_keys;
mod group_commit;
mod lock;
mod resource_history;
mod sub_model_events;

use api_keys::PermissionColumns;
use group_commit::Writer;
use lock::DatabaseLock;

use super::{
    Database, DbError, EventQuery, ImportedInstance, InstanceEvent, RuntimeRecord, StoredInstance, Transition,
};
use crate::{DesiredState, ExitInfo, InstanceName, InstanceOptions, InstanceStatus, TransitionReason};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite implementation of [`Database`] and of [`ApiKeyStore`](super::ApiKeyStore).
///
/// ```
/// use llamactl_core::SqliteDatabase;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), llamactl_core::DbError> {
/// let dir = std::env::temp_dir().join(format!("llamactl-doc-{}", std::process::id()));
/// let db = SqliteDatabase::open(dir.join("llamactl.db")).await?;
/// assert_eq!(db.path(), Some(dir.join("llamactl.db").as_path()));
/// # use llamactl_core::Database; db.close().await; std::fs::remove_dir_all(dir).ok();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteDatabase {
    pool: SqlitePool,
    writer: Writer,
    reader: SqlitePool,
    path: Option<PathBuf>,
    /// The shape of `key_permissions` in this file (the Go llamactl's versions differ).
    permission_columns: PermissionColumns,
    /// The file's lock, held from `open` until `close` (shared by clones); `None` in memory
    /// and for [`SqliteDatabase::open_shared`].
    lock: Arc<Mutex<Option<DatabaseLock>>>,
}

fn open_error(path: &str, source: impl std::error::Error + Send + Sync + 'static) -> DbError {
    DbError::Open { path: path.to_owned(), source: Box::new(source) }
}

impl SqliteDatabase {
    /// Opens (creating it and its parent folders if needed) the database file at `path` and
    /// applies pending migrations. A database file of the Go llamactl opens too.
    ///
    /// The file is this handle's (and its clones') alone until [`Database::close`] or the end
    /// of the process, however it ends: a second `open` of the same file, in this process or
    /// another, fails with [`DbError::InUse`] naming the holder, because two managers on one
    /// database would supervise every instance twice. The lock is `<path>.lock` beside it.
    ///
    /// ```
    /// use llamactl_core::{Database, DbError, SqliteDatabase};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), DbError> {
    /// let dir = std::env::temp_dir().join(format!("llamactl-doc-lock-{}", std::process::id()));
    /// let db = SqliteDatabase::open(dir.join("llamactl.db")).await?;
    /// db.describe_holder("my service")?;
    /// let second = SqliteDatabase::open(dir.join("llamactl.db")).await;
    /// assert!(matches!(second, Err(DbError::InUse { ref holder, .. }) if holder.ends_with(", my service")));
    /// db.close().await; // releases it
    /// SqliteDatabase::open(dir.join("llamactl.db")).await?.close().await;
    /// # std::fs::remove_dir_all(dir).ok();
    /// # Ok(()) }
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, DbError> {
        Self::open_with(path.as_ref(), true).await
    }

    /// Opens the database file at `path` like [`SqliteDatabase::open`] but without its lock,
    /// beside whoever holds it: for tools and tests that read or repair a database in use.
    /// SQLite keeps concurrent writes consistent, but never hand such a handle to a
    /// [`crate::Manager`]: two managers on one file start, adopt and evict the same instances.
    pub async fn open_shared(path: impl AsRef<Path>) -> Result<Self, DbError> {
        Self::open_with(path.as_ref(), false).await
    }

    async fn open_with(path: &Path, exclusive: bool) -> Result<Self, DbError> {
        let path = path.to_path_buf();
        let shown = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_error(&shown, e))?;
        }
        let lock = if exclusive { Some(DatabaseLock::acquire(&path)?) } else { None };
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(|e| open_error(&shown, e))?;
        MIGRATOR.run(&writer).await.map_err(|e| open_error(&shown, e))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(|e| open_error(&shown, e))?;
        let permission_columns = PermissionColumns::read(&writer).await.map_err(|e| open_error(&shown, e))?;
        Ok(Self {
            writer: Writer::start(writer.clone()),
            pool: writer,
            reader,
            path: Some(path),
            permission_columns,
            lock: Arc::new(Mutex::new(lock)),
        })
    }

    /// Says in the lock file what holds the database (after the pid, which is always there),
    /// so that a refused second opener can name it: `llamactl-server at http://127.0.0.1:8080`.
    /// Does nothing for a database without a lock (in memory, or opened shared).
    pub fn describe_holder(&self, what: &str) -> Result<(), DbError> {
        let held = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match held.as_ref() {
            Some(lock) => lock.describe(Some(what)).map_err(|e| open_error(&self.shown_path(), e)),
            None => Ok(()),
        }
    }

    fn shown_path(&self) -> String {
        self.path.as_deref().map(|p| p.display().to_string()).unwrap_or_else(|| ":memory:".to_owned())
    }

    /// A private in-memory database (for tests and benchmarks; nothing is persisted).
    pub async fn open_in_memory() -> Result<Self, DbError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|e| open_error(":memory:", e))?
            .foreign_keys(true);
        // One connection that never expires: a second connection would see another database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|e| open_error(":memory:", e))?;
        MIGRATOR.run(&pool).await.map_err(|e| open_error(":memory:", e))?;
        let permission_columns = PermissionColumns::read(&pool).await.map_err(|e| open_error(":memory:", e))?;
        Ok(Self {
            writer: Writer::start(pool.clone()),
            pool: pool.clone(),
            reader: pool,
            path: None,
            permission_columns,
            lock: Arc::new(Mutex::new(None)),
        })
    }

    /// The database file, `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

fn map_err(error: sqlx::Error) -> DbError {
    match error {
        sqlx::Error::PoolClosed => DbError::Closed,
        other => DbError::Sqlx(other),
    }
}

fn now_seconds() -> i64 {
    Utc::now().timestamp()
}

fn millis(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(|t| t.timestamp_millis())
}

fn from_millis(value: Option<i64>) -> Option<DateTime<Utc>> {
    value.and_then(DateTime::from_timestamp_millis)
}

fn options_json(options: &InstanceOptions) -> Result<String, DbError> {
    serde_json::to_string(options).map_err(|e| DbError::Corrupt(format!("cannot serialise options: {e}")))
}

/// `SELECT` of an instance joined with its runtime row, followed by `$tail`.
macro_rules! select_instances {
    ($tail:literal) => {
        concat!(
            "SELECT i.id, i.name, i.status AS legacy_status, i.created_at, i.updated_at, i.options_json, ",
            "r.status, r.desired_state, r.pid, r.process_start_ticks, r.boot_id, r.port, r.container_id, r.started_at, ",
            "r.ready_at, r.command_hash, r.output_path, ",
            "r.stopped_at, r.restart_count, r.last_exit_code, r.last_signal, r.last_error, r.last_reason ",
            "FROM instances i LEFT JOIN instance_runtime r ON r.instance_id = i.id ",
            $tail
        )
    };
}

fn runtime_from_row(row: &SqliteRow) -> Result<RuntimeRecord, DbError> {
    let corrupt = |what: &str, detail: String| DbError::Corrupt(format!("instance_runtime.{what}: {detail}"));
    let status: Option<String> = row.try_get("status")?;
    let Some(status) = status else {
        // No runtime row: an instance added by the Go llamactl after this database was
        // migrated. Derive the state the way the migration does.
        let legacy: String = row.try_get("legacy_status")?;
        let desired = if matches!(legacy.as_str(), "running" | "restarting") {
            DesiredState::Running
        } else {
            DesiredState::Stopped
        };
        let status = if legacy == "failed" { InstanceStatus::Failed } else { InstanceStatus::Stopped };
        return Ok(RuntimeRecord { status, desired_state: desired, ..RuntimeRecord::default() });
    };
    let desired: String = row.try_get("desired_state")?;
    let port: Option<i64> = row.try_get("port")?;
    let ticks: Option<i64> = row.try_get("process_start_ticks")?;
    let restarts: i64 = row.try_get("restart_count")?;
    let reason: Option<String> = row.try_get("last_reason")?;
    Ok(RuntimeRecord {
        status: status.parse().map_err(|e| corrupt("status", format!("{e}")))?,
        desired_state: desired.parse().map_err(|e| corrupt("desired_state", format!("{e}")))?,
        pid: row.try_get("pid")?,
        process_start_ticks: ticks.map(|t| u64::try_from(t).unwrap_or_default()),
        boot_id: row.try_get("boot_id")?,
        port: port.and_then(|p| u16::try_from(p).ok()),
        container_id: row.try_get("container_id")?,
        command_hash: row.try_get("command_hash")?,
        output_path: row.try_get::<Option<String>, _>("output_path")?.map(std::path::PathBuf::from),
        started_at: from_millis(row.try_get("started_at")?),
        ready_at: from_millis(row.try_get("ready_at")?),
        stopped_at: from_millis(row.try_get("stopped_at")?),
        restart_count: u32::try_from(restarts).unwrap_or(u32::MAX),
        last_exit: ExitInfo { code: row.try_get("last_exit_code")?, signal: row.try_get("last_signal")? },
        last_error: row.try_get("last_error")?,
        // An unreadable reason (from a newer version) is dropped rather than failing the load.
        last_reason: reason.and_then(|r| serde_json::from_str(&r).ok()),
    })
}

fn instance_from_row(row: &SqliteRow) -> Result<Option<StoredInstance>, DbError> {
    let name: String = row.try_get("name")?;
    let Ok(name) = InstanceName::new(name.clone()) else {
        tracing::warn!(name, "skipping a stored instance whose name is not valid");
        return Ok(None);
    };
    let json: String = row.try_get("options_json")?;
    let created: i64 = row.try_get("created_at")?;
    let updated: i64 = row.try_get("updated_at")?;
    Ok(Some(StoredInstance {
        id: row.try_get("id")?,
        options: InstanceOptions::from_json(&json),
        name,
        created_at: DateTime::from_timestamp(created, 0).unwrap_or_default(),
        updated_at: DateTime::from_timestamp(updated, 0).unwrap_or_default(),
        runtime: runtime_from_row(row)?,
    }))
}

async fn fetch_instance(
    executor: impl sqlx::SqliteExecutor<'_>,
    name: &str,
) -> Result<Option<StoredInstance>, DbError> {
    let row = sqlx::query(select_instances!("WHERE i.name = ?"))
        .bind(name)
        .fetch_optional(executor)
        .await
        .map_err(map_err)?;
    match row {
        Some(row) => instance_from_row(&row),
        None => Ok(None),
    }
}

async fn write_runtime(tx: &mut SqliteConnection, id: i64, runtime: &RuntimeRecord) -> Result<(), DbError> {
    let reason = runtime.last_reason.as_ref().map(|r| serde_json::to_string(r).unwrap_or_default());
    sqlx::query(
        "INSERT INTO instance_runtime (instance_id, status, desired_state, pid, process_start_ticks, boot_id, port, \
           container_id, started_at, ready_at, stopped_at, restart_count, last_exit_code, last_signal, last_error, \
           last_reason, updated_at, command_hash, output_path) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT(instance_id) DO UPDATE SET status = excluded.status, desired_state = excluded.desired_state, \
           pid = excluded.pid, process_start_ticks = excluded.process_start_ticks, boot_id = excluded.boot_id, \
           port = excluded.port, container_id = excluded.container_id, started_at = excluded.started_at, \
           ready_at = excluded.ready_at, \
           stopped_at = excluded.stopped_at, restart_count = excluded.restart_count, \
           last_exit_code = excluded.last_exit_code, last_signal = excluded.last_signal, \
           last_error = excluded.last_error, last_reason = excluded.last_reason, updated_at = excluded.updated_at, \
           command_hash = excluded.command_hash, output_path = excluded.output_path",
    )
    .bind(id)
    .bind(runtime.status.as_str())
    .bind(runtime.desired_state.as_str())
    .bind(runtime.pid)
    .bind(runtime.process_start_ticks.map(|t| i64::try_from(t).unwrap_or(i64::MAX)))
    .bind(runtime.boot_id.as_deref())
    .bind(runtime.port.map(i64::from))
    .bind(runtime.container_id.as_deref())
    .bind(millis(runtime.started_at))
    .bind(millis(runtime.ready_at))
    .bind(millis(runtime.stopped_at))
    .bind(i64::from(runtime.restart_count))
    .bind(runtime.last_exit.code)
    .bind(runtime.last_exit.signal)
    .bind(runtime.last_error.as_deref())
    .bind(reason)
    .bind(Utc::now().timestamp_millis())
    .bind(runtime.command_hash.as_deref())
    .bind(runtime.output_path.as_ref().map(|p| p.display().to_string()))
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Updates the Go-compatible status column and returns the instance id.
async fn set_legacy_status(tx: &mut SqliteConnection, name: &str, status: InstanceStatus) -> Result<i64, DbError> {
    let id: Option<i64> = sqlx::query_scalar("UPDATE instances SET status = ? WHERE name = ? RETURNING id")
        .bind(status.legacy_status())
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
    id.ok_or_else(|| DbError::NotFound(name.to_owned()))
}

/// Inserts a new instance (refused as [`DbError::AlreadyExists`] if the name is taken) with its
/// runtime row; returns its id.
async fn insert_new(
    tx: &mut SqliteConnection,
    name: &InstanceName,
    created_at: i64,
    now: i64,
    json: &str,
    runtime: &RuntimeRecord,
) -> Result<i64, DbError> {
    let inserted = sqlx::query_scalar::<_, i64>(
        "INSERT INTO instances (name, status, created_at, updated_at, options_json) VALUES (?, 'stopped', ?, ?, ?) RETURNING id",
    )
    .bind(name.as_str())
    .bind(created_at)
    .bind(now)
    .bind(json)
    .fetch_one(&mut *tx)
    .await;
    let id = match inserted {
        Ok(id) => id,
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(DbError::AlreadyExists(name.to_string()));
        }
        Err(e) => return Err(map_err(e)),
    };
    write_runtime(tx, id, runtime).await?;
    Ok(id)
}

async fn create_instance(
    tx: &mut SqliteConnection,
    name: InstanceName,
    json: String,
) -> Result<StoredInstance, DbError> {
    let now = now_seconds();
    insert_new(tx, &name, now, now, &json, &RuntimeRecord::default()).await?;
    fetch_instance(&mut *tx, name.as_str()).await?.ok_or_else(|| DbError::NotFound(name.to_string()))
}

async fn save_instance(tx: &mut SqliteConnection, name: InstanceName, json: String) -> Result<StoredInstance, DbError> {
    let now = now_seconds();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO instances (name, status, created_at, updated_at, options_json) VALUES (?, 'stopped', ?, ?, ?) \
         ON CONFLICT(name) DO UPDATE SET options_json = excluded.options_json, updated_at = excluded.updated_at \
         RETURNING id",
    )
    .bind(name.as_str())
    .bind(now)
    .bind(now)
    .bind(&json)
    .fetch_one(&mut *tx)
    .await
    .map_err(map_err)?;
    sqlx::query(
        "INSERT INTO instance_runtime (instance_id, updated_at) VALUES (?, ?) ON CONFLICT(instance_id) DO NOTHING",
    )
    .bind(id)
    .bind(Utc::now().timestamp_millis())
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    fetch_instance(&mut *tx, name.as_str()).await?.ok_or_else(|| DbError::NotFound(name.to_string()))
}

async fn insert_transition(
    tx: &mut SqliteConnection,
    name: String,
    runtime: RuntimeRecord,
    transition: Transition,
    reason: String,
) -> Result<(), DbError> {
    let id = set_legacy_status(tx, &name, runtime.status).await?;
    write_runtime(tx, id, &runtime).await?;
    sqlx::query(
        "INSERT INTO instance_events (instance_id, at, from_status, to_status, reason_kind, reason, pid, port) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(transition.at.timestamp_millis())
    .bind(transition.from.as_str())
    .bind(transition.to.as_str())
    .bind(transition.reason.kind())
    .bind(reason)
    .bind(runtime.pid)
    .bind(runtime.port.map(i64::from))
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn import_all(tx: &mut SqliteConnection, instances: Vec<ImportedInstance>) -> Result<(), DbError> {
    let now = now_seconds();
    for ImportedInstance { name, options, created_at, desired_state } in instances {
        let runtime = RuntimeRecord { desired_state, ..RuntimeRecord::default() };
        let json = options_json(&options)?;
        insert_new(tx, &name, created_at.map_or(now, |t| t.timestamp()), now, &json, &runtime).await?;
    }
    Ok(())
}

/// Runs a `DELETE` with one parameter; whether it removed a row.
async fn deleted<T>(tx: &mut SqliteConnection, sql: &'static str, key: T) -> Result<bool, DbError>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send + 'static,
{
    let result = sqlx::query(sql).bind(key).execute(&mut *tx).await.map_err(map_err)?;
    Ok(result.rows_affected() > 0)
}

#[async_trait]
impl Database for SqliteDatabase {
    async fn create(&self, name: &InstanceName, options: &InstanceOptions) -> Result<StoredInstance, DbError> {
        let (name, json) = (name.clone(), options_json(options)?);
        self.writer.write(move |tx| create_instance(tx, name, json).boxed()).await
    }

    async fn save(&self, name: &InstanceName, options: &InstanceOptions) -> Result<StoredInstance, DbError> {
        let (name, json) = (name.clone(), options_json(options)?);
        self.writer.write(move |tx| save_instance(tx, name, json).boxed()).await
    }

    async fn delete(&self, name: &str) -> Result<bool, DbError> {
        let name = name.to_owned();
        self.writer.write(move |tx| deleted(tx, "DELETE FROM instances WHERE name = ?", name).boxed()).await
    }

    async fn get(&self, name: &str) -> Result<Option<StoredInstance>, DbError> {
        fetch_instance(&self.reader, name).await
    }

    async fn load_all(&self) -> Result<Vec<StoredInstance>, DbError> {
        // Row by row: holding every row at once would cost several times the instances' own
        // memory at boot, and the allocator keeps most of that peak afterwards.
        let mut rows = sqlx::query(select_instances!("ORDER BY i.name")).fetch(&self.reader);
        let mut out = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(map_err)? {
            out.extend(instance_from_row(&row)?);
        }
        Ok(out)
    }

    async fn record_transition(
        &self,
        name: &str,
        runtime: &RuntimeRecord,
        transition: &Transition,
    ) -> Result<(), DbError> {
        let reason = serde_json::to_string(&transition.reason).map_err(|e| DbError::Corrupt(e.to_string()))?;
        let (name, runtime, transition) = (name.to_owned(), runtime.clone(), transition.clone());
        self.writer.write(move |tx| insert_transition(tx, name, runtime, transition, reason).boxed()).await
    }

    async fn save_runtime(&self, name: &str, runtime: &RuntimeRecord) -> Result<(), DbError> {
        let (name, runtime) = (name.to_owned(), runtime.clone());
        self.writer
            .write(move |tx| {
                async move {
                    let id = set_legacy_status(tx, &name, runtime.status).await?;
                    write_runtime(tx, id, &runtime).await
                }
                .boxed()
            })
            .await
    }

    async fn events(&self, name: &str, query: EventQuery) -> Result<Vec<InstanceEvent>, DbError> {
        let rows = sqlx::query(
            "SELECT e.id, e.at, e.from_status, e.to_status, e.reason, e.pid, e.port FROM instance_events e \
             JOIN instances i ON i.id = e.instance_id WHERE i.name = ? AND e.id > ? ORDER BY e.id LIMIT ?",
        )
        .bind(name)
        .bind(query.after_id.unwrap_or(0))
        .bind(i64::from(query.limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let corrupt =
                    |what: &str, e: &dyn std::fmt::Display| DbError::Corrupt(format!("instance_events.{what}: {e}"));
                let from: String = row.try_get("from_status")?;
                let to: String = row.try_get("to_status")?;
                let reason: String = row.try_get("reason")?;
                let port: Option<i64> = row.try_get("port")?;
                Ok(InstanceEvent {
                    id: row.try_get("id")?,
                    instance: name.to_owned(),
                    from: from.parse().map_err(|e| corrupt("from_status", &e))?,
                    to: to.parse().map_err(|e| corrupt("to_status", &e))?,
                    reason: serde_json::from_str::<TransitionReason>(&reason).map_err(|e| corrupt("reason", &e))?,
                    at: from_millis(row.try_get("at")?).unwrap_or_default(),
                    pid: row.try_get("pid")?,
                    port: port.and_then(|p| u16::try_from(p).ok()),
                })
            })
            .collect()
    }

    async fn import_instances(&self, instances: &[ImportedInstance]) -> Result<(), DbError> {
        let instances = instances.to_vec();
        self.writer.write(move |tx| import_all(tx, instances).boxed()).await
    }

    async fn manager_id(&self) -> Result<String, DbError> {
        // Insert-if-absent, then read: two managers racing on one file agree on the first id.
        let candidate = uuid::Uuid::new_v4().simple().to_string();
        self.writer
            .write(move |tx| {
                async move {
                    sqlx::query("INSERT OR IGNORE INTO manager_meta (key, value) VALUES ('manager_id', ?)")
                        .bind(&candidate)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    sqlx::query_scalar("SELECT value FROM manager_meta WHERE key = 'manager_id'")
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(map_err)
                }
                .boxed()
            })
            .await
    }

    async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.reader).await.map_err(map_err)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
        self.reader.close().await;
        // Only now may another open the file.
        self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    }
}

#[cfg(test)]
mod tests;
