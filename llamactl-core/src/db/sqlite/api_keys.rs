//! SQL for API keys: the Go llamactl's `api_keys` and `key_permissions`, with llamactl's
//! `api_key_tokens` and `key_instance_rights` beside them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqliteExecutor};

use super::map_err;
use crate::db::{ApiKeyRecord, DbError, InstanceRights, NewApiKey, PermissionMode};

/// `SELECT` of keys with their token, followed by `$tail`.
macro_rules! select_keys {
    ($tail:literal) => {
        concat!(
            "SELECT k.id, k.key_hash, k.name, k.user_id, k.permission_mode, k.expires_at, k.created_at, k.updated_at, ",
            "k.last_used_at, t.lookup_id, t.sha256 FROM api_keys k LEFT JOIN api_key_tokens t ON t.api_key_id = k.id ",
            $tail
        )
    };
}

fn seconds(value: Option<i64>) -> Option<DateTime<Utc>> {
    value.and_then(|s| DateTime::from_timestamp(s, 0))
}

fn key_from_row(row: &SqliteRow) -> Result<ApiKeyRecord, DbError> {
    let mode: String = row.try_get("permission_mode")?;
    let hash: String = row.try_get("key_hash")?;
    let sha256: Option<String> = row.try_get("sha256")?;
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        user_id: row.try_get("user_id")?,
        permission_mode: if mode == "allow_all" { PermissionMode::AllowAll } else { PermissionMode::PerInstance },
        expires_at: seconds(row.try_get("expires_at")?),
        created_at: seconds(row.try_get("created_at")?).unwrap_or_default(),
        updated_at: seconds(row.try_get("updated_at")?).unwrap_or_default(),
        last_used_at: seconds(row.try_get("last_used_at")?),
        lookup_id: row.try_get("lookup_id")?,
        legacy_hash: (sha256.is_none() && hash.starts_with("$argon2")).then_some(hash),
        sha256,
        rights: Vec::new(),
    })
}

/// Loads the rights of `keys` (one query) and attaches them.
async fn with_rights(
    executor: impl SqliteExecutor<'_>,
    mut keys: Vec<ApiKeyRecord>,
) -> Result<Vec<ApiKeyRecord>, DbError> {
    if keys.is_empty() {
        return Ok(keys);
    }
    // Rights of one key, or of every key (listings): one query either way.
    let single = (keys.len() == 1).then(|| keys[0].id);
    let rows = sqlx::query(
        "SELECT r.key_id, i.name, MAX(r.can_infer) AS can_infer, MAX(r.can_start) AS can_start, MAX(r.can_evict) AS can_evict \
         FROM (SELECT key_id, instance_id, can_infer, 0 AS can_start, 0 AS can_evict FROM key_permissions \
               UNION ALL SELECT key_id, instance_id, 0, can_start, can_evict FROM key_instance_rights) r \
         JOIN instances i ON i.id = r.instance_id \
         WHERE ?1 IS NULL OR r.key_id = ?1 \
         GROUP BY r.key_id, r.instance_id ORDER BY i.name",
    )
    .bind(single)
    .fetch_all(executor)
    .await
    .map_err(map_err)?;
    let mut by_key: BTreeMap<i64, Vec<InstanceRights>> = BTreeMap::new();
    for row in &rows {
        let flag = |column: &str| row.try_get::<i64, _>(column).map(|v| v != 0);
        by_key.entry(row.try_get("key_id")?).or_default().push(InstanceRights {
            instance: row.try_get("name")?,
            can_infer: flag("can_infer")?,
            can_start: flag("can_start")?,
            can_evict: flag("can_evict")?,
        });
    }
    for key in &mut keys {
        key.rights = by_key.remove(&key.id).unwrap_or_default();
    }
    Ok(keys)
}

pub(super) async fn create(tx: &mut SqliteConnection, key: &NewApiKey) -> Result<i64, DbError> {
    let now = Utc::now().timestamp();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_keys (key_hash, name, user_id, permission_mode, expires_at, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(format!("sha256:{}", key.sha256))
    .bind(&key.name)
    .bind(&key.user_id)
    .bind(key.permission_mode.as_str())
    .bind(key.expires_at.map(|t| t.timestamp()))
    .bind(now)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(map_err)?;
    set_token(tx, id, &key.lookup_id, &key.sha256).await?;
    for rights in &key.rights {
        let instance: Option<i64> = sqlx::query_scalar("SELECT id FROM instances WHERE name = ?")
            .bind(&rights.instance)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let instance = instance.ok_or_else(|| DbError::NotFound(rights.instance.clone()))?;
        sqlx::query("INSERT INTO key_permissions (key_id, instance_id, can_infer) VALUES (?, ?, ?)")
            .bind(id)
            .bind(instance)
            .bind(rights.can_infer)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("INSERT INTO key_instance_rights (key_id, instance_id, can_start, can_evict) VALUES (?, ?, ?, ?)")
            .bind(id)
            .bind(instance)
            .bind(rights.can_start)
            .bind(rights.can_evict)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
    }
    Ok(id)
}

pub(super) async fn set_token(
    tx: &mut SqliteConnection,
    id: i64,
    lookup_id: &str,
    sha256: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO api_key_tokens (api_key_id, lookup_id, sha256) VALUES (?, ?, ?) \
         ON CONFLICT(api_key_id) DO UPDATE SET lookup_id = excluded.lookup_id, sha256 = excluded.sha256",
    )
    .bind(id)
    .bind(lookup_id)
    .bind(sha256)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

pub(super) async fn list(executor: impl SqliteExecutor<'_> + Copy) -> Result<Vec<ApiKeyRecord>, DbError> {
    let rows = sqlx::query(select_keys!("ORDER BY k.id")).fetch_all(executor).await.map_err(map_err)?;
    let keys = rows.iter().map(key_from_row).collect::<Result<Vec<_>, _>>()?;
    with_rights(executor, keys).await
}

pub(super) async fn get(executor: impl SqliteExecutor<'_> + Copy, id: i64) -> Result<Option<ApiKeyRecord>, DbError> {
    let row = sqlx::query(select_keys!("WHERE k.id = ?")).bind(id).fetch_optional(executor).await.map_err(map_err)?;
    one(executor, row).await
}

pub(super) async fn find(
    executor: impl SqliteExecutor<'_> + Copy,
    lookup_id: &str,
) -> Result<Option<ApiKeyRecord>, DbError> {
    let row = sqlx::query(select_keys!("WHERE t.lookup_id = ?"))
        .bind(lookup_id)
        .fetch_optional(executor)
        .await
        .map_err(map_err)?;
    one(executor, row).await
}

async fn one(executor: impl SqliteExecutor<'_>, row: Option<SqliteRow>) -> Result<Option<ApiKeyRecord>, DbError> {
    match row {
        Some(row) => Ok(with_rights(executor, vec![key_from_row(&row)?]).await?.pop()),
        None => Ok(None),
    }
}

pub(super) async fn legacy(executor: impl SqliteExecutor<'_> + Copy) -> Result<Vec<ApiKeyRecord>, DbError> {
    let rows = sqlx::query(select_keys!("WHERE t.api_key_id IS NULL ORDER BY k.id"))
        .fetch_all(executor)
        .await
        .map_err(map_err)?;
    let keys = rows.iter().map(key_from_row).collect::<Result<Vec<_>, _>>()?;
    with_rights(executor, keys).await
}
