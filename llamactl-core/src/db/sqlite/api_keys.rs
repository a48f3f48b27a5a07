//! [`ApiKeyStore`] on SQLite: the Go llamactl's `api_keys` and `key_permissions`, with
//! llamactl's `api_key_tokens` and `key_instance_rights` beside them.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqliteExecutor};

use super::{SqliteDatabase, deleted, map_err};
use crate::db::{ApiKeyRecord, ApiKeyStore, DbError, InstanceRights, NewApiKey, PermissionMode};

#[async_trait]
impl ApiKeyStore for SqliteDatabase {
    async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKeyRecord, DbError> {
        let (key, columns) = (key.clone(), self.permission_columns);
        let id = self.writer.write(move |tx| async move { create(tx, columns, &key).await }.boxed()).await?;
        get(&self.reader, columns, id).await?.ok_or_else(|| DbError::NotFound(format!("api key {id}")))
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, DbError> {
        list(&self.reader, self.permission_columns).await
    }

    async fn get_api_key(&self, id: i64) -> Result<Option<ApiKeyRecord>, DbError> {
        get(&self.reader, self.permission_columns, id).await
    }

    async fn find_api_key(&self, lookup_id: &str) -> Result<Option<ApiKeyRecord>, DbError> {
        find(&self.reader, self.permission_columns, lookup_id).await
    }

    async fn legacy_api_keys(&self) -> Result<Vec<ApiKeyRecord>, DbError> {
        legacy(&self.reader, self.permission_columns).await
    }

    async fn set_api_key_token(&self, id: i64, lookup_id: &str, sha256: &str) -> Result<(), DbError> {
        let (lookup_id, sha256) = (lookup_id.to_owned(), sha256.to_owned());
        self.writer.write(move |tx| async move { set_token(tx, id, &lookup_id, &sha256).await }.boxed()).await
    }

    async fn touch_api_key(&self, id: i64, at: DateTime<Utc>) -> Result<(), DbError> {
        self.writer
            .write(move |tx| {
                async move {
                    sqlx::query("UPDATE api_keys SET last_used_at = ? WHERE id = ?")
                        .bind(at.timestamp())
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    Ok(())
                }
                .boxed()
            })
            .await
    }

    async fn delete_api_key(&self, id: i64) -> Result<bool, DbError> {
        self.writer.write(move |tx| deleted(tx, "DELETE FROM api_keys WHERE id = ?", id).boxed()).await
    }
}

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

/// The columns of `key_permissions` that differ between the schemas that create it.
///
/// The table belongs to whoever made the database first, and its structure is never altered:
/// - the Go llamactl v0.20: `(key_id, instance_id)` only; a row means the key may use the
///   instance: infer, and start and evict it (later Go versions give such rows 1 for both);
/// - later Go versions: `can_start` and `can_evict` added (`NOT NULL DEFAULT 1`); a row
///   still means the key may infer;
/// - llamactl on a new database: `can_infer`; start and evict live in `key_instance_rights`.
///
/// llamactl always writes its own keys' rights to `key_instance_rights` as well, and those win
/// over `key_permissions` for start and evict: so a right a Go table cannot hold (start without
/// infer) is kept, and a Go key (which has no such row) reads as the Go llamactl reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PermissionColumns {
    can_infer: bool,
    can_start: bool,
    can_evict: bool,
}

impl PermissionColumns {
    /// Reads which columns the table in this database has.
    pub(super) async fn read(executor: impl SqliteExecutor<'_>) -> Result<Self, DbError> {
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('key_permissions')")
            .fetch_all(executor)
            .await
            .map_err(map_err)?;
        let has = |column: &str| names.iter().any(|n| n.eq_ignore_ascii_case(column));
        Ok(Self { can_infer: has("can_infer"), can_start: has("can_start"), can_evict: has("can_evict") })
    }

    /// The `SELECT` of `(key_id, name, can_infer, can_start, can_evict)` from `key_permissions`
    /// in this schema, joined with the instance's name, each right 0 or 1.
    fn select(self) -> QueryBuilder<Sqlite> {
        // A missing column means what the row means in its schema (see the type's docs).
        let implied = if self.can_infer { "0" } else { "1" };
        let mut query = QueryBuilder::new("SELECT p.key_id, i.name, ");
        query.push(if self.can_infer { "(p.can_infer != 0)" } else { "1" }).push(" AS can_infer, ");
        query.push(if self.can_start { "(p.can_start != 0)" } else { implied }).push(" AS can_start, ");
        query.push(if self.can_evict { "(p.can_evict != 0)" } else { implied }).push(" AS can_evict ");
        query.push("FROM key_permissions p JOIN instances i ON i.id = p.instance_id WHERE ?1 IS NULL OR p.key_id = ?1");
        query
    }

    /// The `INSERT` of one key's rights on one instance into `key_permissions` in this schema,
    /// or `None` where a row would say more than the rights (a Go table's row means "may
    /// infer", so a key that may not gets no row there).
    fn insert(self, key_id: i64, instance_id: i64, rights: &InstanceRights) -> Option<QueryBuilder<Sqlite>> {
        if !self.can_infer && !rights.can_infer {
            return None;
        }
        let mut query = QueryBuilder::new("INSERT INTO key_permissions (key_id, instance_id");
        let present = [
            (self.can_infer, ", can_infer", rights.can_infer),
            (self.can_start, ", can_start", rights.can_start),
            (self.can_evict, ", can_evict", rights.can_evict),
        ];
        for (_, column, _) in present.iter().filter(|(has, ..)| *has) {
            query.push(*column);
        }
        query.push(") VALUES (").push_bind(key_id).push(", ").push_bind(instance_id);
        for (.., value) in present.iter().filter(|(has, ..)| *has) {
            query.push(", ").push_bind(*value);
        }
        query.push(")");
        Some(query)
    }
}

/// One key's rights on one instance, from the rows of both tables.
#[derive(Debug, Default)]
struct RightsRows {
    /// `(can_infer, can_start, can_evict)` of the `key_permissions` row.
    permissions: Option<(bool, bool, bool)>,
    /// `(can_start, can_evict)` of the `key_instance_rights` row.
    llamactl: Option<(bool, bool)>,
}

impl RightsRows {
    /// The rights these rows give: infer from `key_permissions`, start and evict from
    /// llamactl's own row where there is one, else from `key_permissions`.
    fn rights(&self, instance: String) -> InstanceRights {
        let (can_infer, go_start, go_evict) = self.permissions.unwrap_or_default();
        let (can_start, can_evict) = self.llamactl.unwrap_or((go_start, go_evict));
        InstanceRights { instance, can_infer, can_start, can_evict }
    }
}

/// Loads the rights of `keys` (of one key, or of every key for listings) and attaches them.
async fn with_rights(
    executor: impl SqliteExecutor<'_> + Copy,
    columns: PermissionColumns,
    mut keys: Vec<ApiKeyRecord>,
) -> Result<Vec<ApiKeyRecord>, DbError> {
    if keys.is_empty() {
        return Ok(keys);
    }
    let single = (keys.len() == 1).then(|| keys[0].id);
    let flag = |row: &SqliteRow, column: &str| row.try_get::<i64, _>(column).map(|v| v != 0);
    let mut rows: BTreeMap<(i64, String), RightsRows> = BTreeMap::new();
    let mut select = columns.select();
    for row in select.build().bind(single).fetch_all(executor).await.map_err(map_err)? {
        let entry = rows.entry((row.try_get("key_id")?, row.try_get("name")?)).or_default();
        entry.permissions = Some((flag(&row, "can_infer")?, flag(&row, "can_start")?, flag(&row, "can_evict")?));
    }
    let own = sqlx::query(
        "SELECT r.key_id, i.name, r.can_start, r.can_evict FROM key_instance_rights r \
         JOIN instances i ON i.id = r.instance_id WHERE ?1 IS NULL OR r.key_id = ?1",
    )
    .bind(single)
    .fetch_all(executor)
    .await
    .map_err(map_err)?;
    for row in own {
        let entry = rows.entry((row.try_get("key_id")?, row.try_get("name")?)).or_default();
        entry.llamactl = Some((flag(&row, "can_start")?, flag(&row, "can_evict")?));
    }
    // In (key, name) order: each key's rights come out sorted by instance name.
    let mut by_key: BTreeMap<i64, Vec<InstanceRights>> = BTreeMap::new();
    for ((key, name), found) in rows {
        by_key.entry(key).or_default().push(found.rights(name));
    }
    for key in &mut keys {
        key.rights = by_key.remove(&key.id).unwrap_or_default();
    }
    Ok(keys)
}

async fn create(tx: &mut SqliteConnection, columns: PermissionColumns, key: &NewApiKey) -> Result<i64, DbError> {
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
        if let Some(mut insert) = columns.insert(id, instance, rights) {
            insert.build().execute(&mut *tx).await.map_err(map_err)?;
        }
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

/// Gives key `id` its token: [`DbError::LookupIdTaken`] if another key has `lookup_id`,
/// [`DbError::NotFound`] if there is no such key.
async fn set_token(tx: &mut SqliteConnection, id: i64, lookup_id: &str, sha256: &str) -> Result<(), DbError> {
    let stored = sqlx::query(
        "INSERT INTO api_key_tokens (api_key_id, lookup_id, sha256) VALUES (?, ?, ?) \
         ON CONFLICT(api_key_id) DO UPDATE SET lookup_id = excluded.lookup_id, sha256 = excluded.sha256",
    )
    .bind(id)
    .bind(lookup_id)
    .bind(sha256)
    .execute(&mut *tx)
    .await;
    match stored {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(DbError::LookupIdTaken(lookup_id.to_owned())),
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
            Err(DbError::NotFound(format!("api key {id}")))
        }
        Err(e) => Err(map_err(e)),
    }
}

async fn list(
    executor: impl SqliteExecutor<'_> + Copy,
    columns: PermissionColumns,
) -> Result<Vec<ApiKeyRecord>, DbError> {
    let rows = sqlx::query(select_keys!("ORDER BY k.id")).fetch_all(executor).await.map_err(map_err)?;
    let keys = rows.iter().map(key_from_row).collect::<Result<Vec<_>, _>>()?;
    with_rights(executor, columns, keys).await
}

async fn get(
    executor: impl SqliteExecutor<'_> + Copy,
    columns: PermissionColumns,
    id: i64,
) -> Result<Option<ApiKeyRecord>, DbError> {
    let row = sqlx::query(select_keys!("WHERE k.id = ?")).bind(id).fetch_optional(executor).await.map_err(map_err)?;
    one(executor, columns, row).await
}

async fn find(
    executor: impl SqliteExecutor<'_> + Copy,
    columns: PermissionColumns,
    lookup_id: &str,
) -> Result<Option<ApiKeyRecord>, DbError> {
    let row = sqlx::query(select_keys!("WHERE t.lookup_id = ?"))
        .bind(lookup_id)
        .fetch_optional(executor)
        .await
        .map_err(map_err)?;
    one(executor, columns, row).await
}

async fn one(
    executor: impl SqliteExecutor<'_> + Copy,
    columns: PermissionColumns,
    row: Option<SqliteRow>,
) -> Result<Option<ApiKeyRecord>, DbError> {
    match row {
        Some(row) => Ok(with_rights(executor, columns, vec![key_from_row(&row)?]).await?.pop()),
        None => Ok(None),
    }
}

async fn legacy(
    executor: impl SqliteExecutor<'_> + Copy,
    columns: PermissionColumns,
) -> Result<Vec<ApiKeyRecord>, DbError> {
    let rows = sqlx::query(select_keys!("WHERE t.api_key_id IS NULL ORDER BY k.id"))
        .fetch_all(executor)
        .await
        .map_err(map_err)?;
    let keys = rows.iter().map(key_from_row).collect::<Result<Vec<_>, _>>()?;
    with_rights(executor, columns, keys).await
}
