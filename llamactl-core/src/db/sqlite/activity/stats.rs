//! The activity statistics computed by SQLite: counts and sums by `GROUP BY`, percentiles by
//! window functions that return only the rows at the wanted ranks, so that summarising 100,000
//! records moves a few rows out of SQLite, not 100,000. The answer is the one
//! [`summarise`](crate::db::summarise) gives for the same records (the conformance suite checks).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row, SqlitePool};

use super::super::map_err;
use crate::db::{ActivityGroupBy, ActivityOutcome, ActivityStats, DbError, nearest_rank};

/// The median and the 95th percentile.
const P50: f64 = 0.5;
const P95: f64 = 0.95;

/// The column records are grouped by.
fn group_column(group_by: ActivityGroupBy) -> &'static str {
    match group_by {
        ActivityGroupBy::Instance => "instance",
        ActivityGroupBy::Model => "model",
        ActivityGroupBy::Key => "key_name",
    }
}

/// Statistics of the records that arrived at or after `since`, per group, in
/// [`summarise`](crate::db::summarise)'s order (by group, records without one last).
pub(super) async fn summarise_in_sql(
    reader: &SqlitePool,
    since: Option<DateTime<Utc>>,
    group_by: ActivityGroupBy,
) -> Result<Vec<ActivityStats>, DbError> {
    let group = group_column(group_by);
    let since_ms = since.map(|s| s.timestamp_millis());
    let window = window(since_ms);
    // Only fixed column names are formatted into the SQL; values are bound.
    let totals = sqlx::query(AssertSqlSafe(format!(
        "SELECT {group} AS grp, COUNT(*) AS requests, SUM(status >= 400 OR outcome = ?2) AS errors, \
         COALESCE(SUM(prompt_tokens), 0) AS prompt, COALESCE(SUM(completion_tokens), 0) AS completion \
         FROM activity WHERE {window} GROUP BY grp"
    )))
    .bind(since_ms)
    .bind(ActivityOutcome::Error.as_str())
    .fetch_all(reader)
    .await
    .map_err(map_err)?;
    let mut groups: BTreeMap<(bool, Option<String>), ActivityStats> = BTreeMap::new();
    for row in &totals {
        let name: Option<String> = row.try_get("grp").map_err(map_err)?;
        let count = |column: &str| -> Result<u64, DbError> {
            let n: i64 = row.try_get(column).map_err(map_err)?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        let stats = ActivityStats {
            group: name.clone(),
            requests: count("requests")?,
            errors: count("errors")?,
            prompt_tokens: count("prompt")?,
            completion_tokens: count("completion")?,
            duration_p50_ms: 0.0,
            duration_p95_ms: 0.0,
            ttfb_p50_ms: None,
            generation_tps_p50: None,
        };
        groups.insert((name.is_none(), name), stats);
    }
    for (name, rank, value) in ranked(reader, group, "duration_ms", since_ms).await? {
        let Some(stats) = groups.get_mut(&(name.is_none(), name)) else { continue };
        if rank.p50 {
            stats.duration_p50_ms = value;
        }
        if rank.p95 {
            stats.duration_p95_ms = value;
        }
    }
    for (name, rank, value) in ranked(reader, group, "ttfb_ms", since_ms).await? {
        if let (true, Some(stats)) = (rank.p50, groups.get_mut(&(name.is_none(), name))) {
            stats.ttfb_p50_ms = Some(value);
        }
    }
    for (name, rank, value) in ranked(reader, group, "generation_tps", since_ms).await? {
        if let (true, Some(stats)) = (rank.p50, groups.get_mut(&(name.is_none(), name))) {
            stats.generation_tps_p50 = Some(value);
        }
    }
    Ok(groups.into_values().collect())
}

/// The condition on the records' time, `since_ms` bound as `?1`. For all records it is none:
/// SQLite then reads the table in order, where a range over the time index would look each row
/// up through the index (over 100,000 records: 1,397 ms against 1,561 ms in one run of
/// `scripts/bench.sh activity store`).
fn window(since_ms: Option<i64>) -> &'static str {
    if since_ms.is_some() { "at_ms >= ?1" } else { "?1 IS NULL" }
}

/// Which of the wanted percentiles a value is.
#[derive(Debug, Clone, Copy)]
struct Rank {
    p50: bool,
    p95: bool,
}

/// Per group, the values of `column` (where not null) at the ranks of the median and the 95th
/// percentile.
async fn ranked(
    reader: &SqlitePool,
    group: &'static str,
    column: &'static str,
    since_ms: Option<i64>,
) -> Result<Vec<(Option<String>, Rank, f64)>, DbError> {
    // ceil(q * n) in SQLite's doubles, as `nearest_rank` takes it in Rust's; rank 1 at least.
    let rank_of = |q: &str| format!("MAX(1, CAST({q} * n AS INTEGER) + ({q} * n > CAST({q} * n AS INTEGER)))");
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT grp, v, rn, n FROM (\
           SELECT {group} AS grp, {column} AS v, \
                  ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY {column}) AS rn, \
                  COUNT(*) OVER (PARTITION BY {group}) AS n \
           FROM activity WHERE {} AND {column} IS NOT NULL) \
         WHERE rn = {} OR rn = {}",
        window(since_ms),
        rank_of("?2"),
        rank_of("?3")
    )))
    .bind(since_ms)
    .bind(P50)
    .bind(P95)
    .fetch_all(reader)
    .await
    .map_err(map_err)?;
    rows.iter()
        .map(|row| {
            let (rn, n): (i64, i64) = (row.try_get("rn").map_err(map_err)?, row.try_get("n").map_err(map_err)?);
            let (rn, n) = (usize::try_from(rn).unwrap_or(0), usize::try_from(n).unwrap_or(0));
            let rank = Rank { p50: rn == nearest_rank(P50, n), p95: rn == nearest_rank(P95, n) };
            Ok((row.try_get("grp").map_err(map_err)?, rank, row.try_get("v").map_err(map_err)?))
        })
        .collect()
}
