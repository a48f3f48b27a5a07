//! [`ResourceHistoryStore`] on SQLite: the `resource_samples` table, one multi-row insert per
//! tick through the store's one writer.

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use futures::FutureExt;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{SqliteDatabase, map_err};
use crate::db::{DbError, ResourceHistoryStore, ResourceSample, ResourceScope};

/// Rows per `INSERT` (8 bound values each, under SQLite's 32,766).
const ROWS_PER_INSERT: usize = 1_000;

const COLUMNS: &str =
    "at_ms, scope, scope_key, cpu_percent, memory_used_bytes, memory_total_bytes, memory_available_bytes, load1";

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl ResourceHistoryStore for SqliteDatabase {
    async fn record_resource_samples(&self, samples: &[ResourceSample]) -> Result<(), DbError> {
        if samples.is_empty() {
            return Ok(());
        }
        let samples = samples.to_vec();
        self.writer
            .write(move |tx| {
                async move {
                    for chunk in samples.chunks(ROWS_PER_INSERT) {
                        let mut insert =
                            QueryBuilder::<Sqlite>::new(format!("INSERT INTO resource_samples ({COLUMNS}) "));
                        insert.push_values(chunk, |mut row, s| {
                            row.push_bind(s.at.timestamp_millis())
                                .push_bind(s.scope.kind())
                                .push_bind(s.scope.key())
                                .push_bind(s.cpu_percent)
                                .push_bind(s.memory_used_bytes.map(saturating_i64))
                                .push_bind(s.memory_total_bytes.map(saturating_i64))
                                .push_bind(s.memory_available_bytes.map(saturating_i64))
                                .push_bind(s.load1);
                        });
                        insert.build().execute(&mut *tx).await.map_err(map_err)?;
                    }
                    Ok(())
                }
                .boxed()
            })
            .await
    }

    async fn resource_samples(
        &self,
        since: DateTime<Utc>,
        scope: Option<&ResourceScope>,
    ) -> Result<Vec<ResourceSample>, DbError> {
        let mut select = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM resource_samples WHERE at_ms >= "));
        select.push_bind(since.timestamp_millis());
        if let Some(scope) = scope {
            select.push(" AND scope = ").push_bind(scope.kind()).push(" AND scope_key = ").push_bind(scope.key());
        }
        select.push(" ORDER BY at_ms, id");
        let rows = select.build().fetch_all(&self.reader).await.map_err(map_err)?;
        rows.iter().map(sample_of).collect()
    }

    async fn prune_resource_samples(&self, older_than: DateTime<Utc>) -> Result<u64, DbError> {
        self.writer
            .write(move |tx| {
                async move {
                    let done = sqlx::query("DELETE FROM resource_samples WHERE at_ms < ?")
                        .bind(older_than.timestamp_millis())
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    Ok(done.rows_affected())
                }
                .boxed()
            })
            .await
    }
}

fn bytes(row: &SqliteRow, column: &str) -> Result<Option<u64>, DbError> {
    let value: Option<i64> = row.try_get(column).map_err(map_err)?;
    Ok(value.map(|n| u64::try_from(n).unwrap_or(0)))
}

fn sample_of(row: &SqliteRow) -> Result<ResourceSample, DbError> {
    let at_ms: i64 = row.try_get("at_ms").map_err(map_err)?;
    let kind: String = row.try_get("scope").map_err(map_err)?;
    let key: String = row.try_get("scope_key").map_err(map_err)?;
    let scope = ResourceScope::from_stored(&kind, &key)
        .ok_or_else(|| DbError::Corrupt(format!("resource sample scope {kind:?} {key:?}")))?;
    Ok(ResourceSample {
        at: Utc.timestamp_millis_opt(at_ms).single().unwrap_or_default(),
        scope,
        cpu_percent: row.try_get("cpu_percent").map_err(map_err)?,
        memory_used_bytes: bytes(row, "memory_used_bytes")?,
        memory_total_bytes: bytes(row, "memory_total_bytes")?,
        memory_available_bytes: bytes(row, "memory_available_bytes")?,
        load1: row.try_get("load1").map_err(map_err)?,
    })
}
