//! [`SubModelEventStore`] on SQLite: the `sub_model_events` table, written through the store's
//! one writer.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use futures::FutureExt;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{SqliteDatabase, map_err};
use crate::db::{DbError, EventQuery, SUB_MODEL_EVENTS_KEPT, SubModelEvent, SubModelEventStore};
use crate::router::SubModelNotice;

/// Rows per `INSERT` (7 bound values each, under SQLite's 32,766).
const ROWS_PER_INSERT: usize = 1_000;

#[async_trait]
impl SubModelEventStore for SqliteDatabase {
    async fn record_sub_model_events(&self, changes: &[SubModelNotice]) -> Result<(), DbError> {
        if changes.is_empty() {
            return Ok(());
        }
        let rows: Vec<(String, String, i64, Option<&'static str>, &'static str, &'static str, String)> = changes
            .iter()
            .map(|c| {
                let reason = serde_json::to_string(&c.reason).map_err(|e| DbError::Corrupt(e.to_string()))?;
                Ok((
                    c.instance.clone(),
                    c.model.clone(),
                    c.at.timestamp_millis(),
                    c.from.map(|s| s.as_str()),
                    c.to.as_str(),
                    c.reason.kind(),
                    reason,
                ))
            })
            .collect::<Result<_, DbError>>()?;
        let instances: BTreeSet<String> = changes.iter().map(|c| c.instance.clone()).collect();
        self.writer
            .write(move |tx| {
                async move {
                    for chunk in rows.chunks(ROWS_PER_INSERT) {
                        let mut insert = QueryBuilder::<Sqlite>::new(
                            "INSERT INTO sub_model_events (instance, model, at_ms, from_status, to_status, reason_kind, reason) ",
                        );
                        insert.push_values(chunk, |mut row, r| {
                            row.push_bind(&r.0)
                                .push_bind(&r.1)
                                .push_bind(r.2)
                                .push_bind(r.3)
                                .push_bind(r.4)
                                .push_bind(r.5)
                                .push_bind(&r.6);
                        });
                        insert.build().execute(&mut *tx).await.map_err(map_err)?;
                    }
                    for instance in &instances {
                        sqlx::query(
                            "DELETE FROM sub_model_events WHERE instance = ?1 AND id <= \
                             (SELECT id FROM sub_model_events WHERE instance = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                        )
                        .bind(instance)
                        .bind(i64::try_from(SUB_MODEL_EVENTS_KEPT).unwrap_or(i64::MAX))
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    }
                    Ok(())
                }
                .boxed()
            })
            .await
    }

    async fn sub_model_events(&self, instance: &str, query: EventQuery) -> Result<Vec<SubModelEvent>, DbError> {
        let rows = sqlx::query(
            "SELECT id, instance, model, at_ms, from_status, to_status, reason FROM sub_model_events \
             WHERE instance = ? AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(instance)
        .bind(query.after_id.unwrap_or(0))
        .bind(i64::from(query.limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(event_of).collect()
    }

    async fn delete_sub_model_events(&self, instance: &str) -> Result<u64, DbError> {
        let instance = instance.to_owned();
        self.writer
            .write(move |tx| {
                async move {
                    let done = sqlx::query("DELETE FROM sub_model_events WHERE instance = ?")
                        .bind(instance)
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

fn event_of(row: &SqliteRow) -> Result<SubModelEvent, DbError> {
    let corrupt = |what: &str, value: &str| DbError::Corrupt(format!("sub-model event {what} {value:?}"));
    let at_ms: i64 = row.try_get("at_ms").map_err(map_err)?;
    let from: Option<String> = row.try_get("from_status").map_err(map_err)?;
    let to: String = row.try_get("to_status").map_err(map_err)?;
    let reason: String = row.try_get("reason").map_err(map_err)?;
    Ok(SubModelEvent {
        id: row.try_get("id").map_err(map_err)?,
        change: SubModelNotice {
            instance: row.try_get("instance").map_err(map_err)?,
            model: row.try_get("model").map_err(map_err)?,
            from: from.map(|f| f.parse().map_err(|_| corrupt("status", &f))).transpose()?,
            to: to.parse().map_err(|_| corrupt("status", &to))?,
            reason: serde_json::from_str(&reason).map_err(|_| corrupt("reason", &reason))?,
            at: Utc.timestamp_millis_opt(at_ms).single().unwrap_or_default(),
        },
    })
}
