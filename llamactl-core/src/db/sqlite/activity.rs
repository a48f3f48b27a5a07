//! [`ActivityStore`] on SQLite: the `activity` table, written in one multi-row insert per
//! batch through the store's one writer.

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use futures::FutureExt;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{SqliteDatabase, map_err};
use crate::db::{ActivityGroupBy, ActivityQuery, ActivityRecord, ActivityStats, ActivityStore, DbError};

mod stats;

/// Most rows per `INSERT` (20 bound values each, under SQLite's 32,766): a power of two, see
/// [`insert_sizes`].
const ROWS_PER_INSERT: usize = 512;

/// The sizes of the `INSERT`s that write `rows` rows: full ones, then the rest as powers of two.
/// Each size is one statement text, prepared once and then taken from the connection's
/// statement cache; a batch of any length thus uses at most ten distinct statements.
fn insert_sizes(rows: usize) -> impl Iterator<Item = usize> {
    let full = std::iter::repeat_n(ROWS_PER_INSERT, rows / ROWS_PER_INSERT);
    let rest = rows % ROWS_PER_INSERT;
    let powers = (0..usize::BITS).rev().map(|bit| 1usize << bit).filter(move |size| rest & size != 0);
    full.chain(powers)
}

const COLUMNS: &str = "id, at_ms, instance, model, path, status, key_id, key_name, client, duration_ms, ttfb_ms, \
     queue_ms, streamed, prompt_tokens, completion_tokens, cached_tokens, prompt_tps, generation_tps, outcome, error";

#[async_trait]
impl ActivityStore for SqliteDatabase {
    async fn record_activity(&self, records: &[ActivityRecord]) -> Result<(), DbError> {
        if records.is_empty() {
            return Ok(());
        }
        let records = records.to_vec();
        self.writer
            .write(move |tx| {
                async move {
                    let mut rest = records.as_slice();
                    for size in insert_sizes(records.len()) {
                        let (chunk, after) = rest.split_at(size);
                        rest = after;
                        let mut insert =
                            QueryBuilder::<Sqlite>::new(format!("INSERT OR REPLACE INTO activity ({COLUMNS}) "));
                        // Bound by reference: the batch is copied once, into the closure.
                        insert.push_values(chunk, |mut row, r| {
                            row.push_bind(r.id)
                                .push_bind(r.at.timestamp_millis())
                                .push_bind(r.instance.as_deref())
                                .push_bind(r.model.as_deref())
                                .push_bind(r.path.as_str())
                                .push_bind(i64::from(r.status))
                                .push_bind(r.key_id)
                                .push_bind(r.key_name.as_deref())
                                .push_bind(r.client.as_deref())
                                .push_bind(r.duration_ms)
                                .push_bind(r.ttfb_ms)
                                .push_bind(r.queue_ms)
                                .push_bind(r.streamed)
                                .push_bind(r.prompt_tokens.map(saturating_i64))
                                .push_bind(r.completion_tokens.map(saturating_i64))
                                .push_bind(r.cached_tokens.map(saturating_i64))
                                .push_bind(r.prompt_tps)
                                .push_bind(r.generation_tps)
                                .push_bind(r.outcome.as_str())
                                .push_bind(r.error.as_deref());
                        });
                        insert.build().execute(&mut *tx).await.map_err(map_err)?;
                    }
                    Ok(())
                }
                .boxed()
            })
            .await
    }

    async fn activity(&self, query: &ActivityQuery) -> Result<Vec<ActivityRecord>, DbError> {
        let mut select = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM activity WHERE 1 = 1"));
        push_filters(&mut select, query);
        if let Some(before) = query.before_id {
            select.push(" AND id < ").push_bind(before);
        }
        select.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(query.limit));
        let rows = select.build().fetch_all(&self.reader).await.map_err(map_err)?;
        rows.iter().map(record_of).collect()
    }

    async fn activity_stats(
        &self,
        since: Option<DateTime<Utc>>,
        group_by: ActivityGroupBy,
    ) -> Result<Vec<ActivityStats>, DbError> {
        stats::summarise_in_sql(&self.reader, since, group_by).await
    }

    async fn prune_activity(&self, keep: u64, older_than: DateTime<Utc>) -> Result<u64, DbError> {
        let keep = saturating_i64(keep);
        self.writer
            .write(move |tx| {
                async move {
                    let old = sqlx::query("DELETE FROM activity WHERE at_ms < ?")
                        .bind(older_than.timestamp_millis())
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    let over = sqlx::query(
                        "DELETE FROM activity WHERE id <= (SELECT id FROM activity ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    )
                    .bind(keep)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    Ok(old.rows_affected() + over.rows_affected())
                }
                .boxed()
            })
            .await
    }

    async fn max_activity_id(&self) -> Result<i64, DbError> {
        let row =
            sqlx::query("SELECT COALESCE(MAX(id), 0) FROM activity").fetch_one(&self.reader).await.map_err(map_err)?;
        row.try_get(0).map_err(map_err)
    }
}

fn push_filters(select: &mut QueryBuilder<Sqlite>, query: &ActivityQuery) {
    if let Some(instance) = &query.instance {
        select.push(" AND instance = ").push_bind(instance.clone());
    }
    if let Some(key_id) = query.key_id {
        select.push(" AND key_id = ").push_bind(key_id);
    }
    if let Some(key_name) = &query.key_name {
        select.push(" AND key_name = ").push_bind(key_name.clone());
    }
    if let Some(status) = query.status {
        select.push(" AND status = ").push_bind(i64::from(status));
    }
    if let Some(since) = query.since {
        select.push(" AND at_ms >= ").push_bind(since.timestamp_millis());
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn tokens(row: &SqliteRow, column: &str) -> Result<Option<u64>, DbError> {
    let value: Option<i64> = row.try_get(column).map_err(map_err)?;
    Ok(value.map(|n| u64::try_from(n).unwrap_or(0)))
}

fn record_of(row: &SqliteRow) -> Result<ActivityRecord, DbError> {
    let at_ms: i64 = row.try_get("at_ms").map_err(map_err)?;
    let status: i64 = row.try_get("status").map_err(map_err)?;
    let outcome: String = row.try_get("outcome").map_err(map_err)?;
    Ok(ActivityRecord {
        id: row.try_get("id").map_err(map_err)?,
        at: Utc.timestamp_millis_opt(at_ms).single().unwrap_or_default(),
        instance: row.try_get("instance").map_err(map_err)?,
        model: row.try_get("model").map_err(map_err)?,
        path: row.try_get("path").map_err(map_err)?,
        status: u16::try_from(status).map_err(|_| DbError::Corrupt(format!("activity status {status}")))?,
        key_id: row.try_get("key_id").map_err(map_err)?,
        key_name: row.try_get("key_name").map_err(map_err)?,
        client: row.try_get("client").map_err(map_err)?,
        duration_ms: row.try_get("duration_ms").map_err(map_err)?,
        ttfb_ms: row.try_get("ttfb_ms").map_err(map_err)?,
        queue_ms: row.try_get("queue_ms").map_err(map_err)?,
        streamed: row.try_get("streamed").map_err(map_err)?,
        prompt_tokens: tokens(row, "prompt_tokens")?,
        completion_tokens: tokens(row, "completion_tokens")?,
        cached_tokens: tokens(row, "cached_tokens")?,
        prompt_tps: row.try_get("prompt_tps").map_err(map_err)?,
        generation_tps: row.try_get("generation_tps").map_err(map_err)?,
        outcome: outcome.parse().map_err(|_| DbError::Corrupt(format!("activity outcome {outcome:?}")))?,
        error: row.try_get("error").map_err(map_err)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_are_full_then_powers_of_two_covering_every_row() {
        assert_eq!(insert_sizes(0).collect::<Vec<_>>(), Vec::<usize>::new());
        assert_eq!(insert_sizes(1).collect::<Vec<_>>(), vec![1]);
        assert_eq!(insert_sizes(1300).collect::<Vec<_>>(), vec![512, 512, 256, 16, 4]);
        for rows in [0, 1, 7, 511, 512, 513, 1024, 5000] {
            let sizes: Vec<usize> = insert_sizes(rows).collect();
            assert_eq!(sizes.iter().sum::<usize>(), rows, "{rows}");
            assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= ROWS_PER_INSERT), "{rows}: {sizes:?}");
        }
    }
}
