//! Inference API keys: the [`ApiKeyStore`] trait and its records. Hashing and verification
//! are the server's business; the store keeps what it is given and finds a key by its public
//! lookup id through an index.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::DbError;

// Defined in `llamactl-wire`, since the key routes send it too.
pub use llamactl_wire::PermissionMode;

/// A key's rights on one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRights {
    /// The instance.
    pub instance: String,
    /// Send inference requests to it.
    pub can_infer: bool,
    /// Start it on demand when it is stopped.
    pub can_start: bool,
    /// Have another instance evicted to make room for it.
    pub can_evict: bool,
}

/// A key to store. The secret itself is never stored: only its SHA-256 and lookup id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// A name for people.
    pub name: String,
    /// Owner.
    pub user_id: String,
    /// Public, unique part of the key used to find it.
    pub lookup_id: String,
    /// Hex SHA-256 of the whole key.
    pub sha256: String,
    /// What it may use.
    pub permission_mode: PermissionMode,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
    /// Per-instance rights (for [`PermissionMode::PerInstance`]).
    pub rights: Vec<InstanceRights>,
}

/// A stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Row id.
    pub id: i64,
    /// A name for people.
    pub name: String,
    /// Owner.
    pub user_id: String,
    /// What it may use.
    pub permission_mode: PermissionMode,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Last use (updated at most about once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Lookup id, when the key has a SHA-256 token.
    pub lookup_id: Option<String>,
    /// Hex SHA-256 of the key, when it has a token.
    pub sha256: Option<String>,
    /// The Go llamactl's Argon2id hash, for a key carried over and not yet used here.
    pub legacy_hash: Option<String>,
    /// Per-instance rights.
    pub rights: Vec<InstanceRights>,
}

/// Storage of inference API keys and their per-instance rights.
///
/// A key's rights name instances of the same store's [`Database`](super::Database): they go
/// with their instance when it is deleted, and a key naming an instance that does not exist
/// is refused. So an implementation is one type that implements both traits
/// ([`SqliteDatabase`](super::SqliteDatabase), [`MemoryDatabase`](super::MemoryDatabase)).
/// Object-safe (`Arc<dyn ApiKeyStore>`); every method that returns `Ok` has made its write
/// durable, and creating a key with its rights is atomic. Closing the database
/// ([`Database::close`](super::Database::close)) closes this store too.
///
/// ```
/// use std::sync::Arc;
/// use llamactl_core::db::{ApiKeyStore, NewApiKey, PermissionMode};
/// use llamactl_core::MemoryDatabase;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), llamactl_core::DbError> {
/// let keys: Arc<dyn ApiKeyStore> = Arc::new(MemoryDatabase::new());
/// let key = keys
///     .create_api_key(&NewApiKey {
///         name: "ci".into(),
///         user_id: "system".into(),
///         lookup_id: "ab12".into(),
///         sha256: "0".repeat(64),
///         permission_mode: PermissionMode::AllowAll,
///         expires_at: None,
///         rights: Vec::new(),
///     })
///     .await?;
/// assert_eq!(keys.find_api_key("ab12").await?.map(|k| k.id), Some(key.id));
/// assert!(keys.delete_api_key(key.id).await?);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait ApiKeyStore: Send + Sync + fmt::Debug {
    /// Stores an API key; fails with [`DbError::NotFound`] naming an instance in its rights that
    /// does not exist, and with [`DbError::LookupIdTaken`] if another key has its lookup id.
    async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKeyRecord, DbError>;

    /// Every API key, by id; each key's rights ordered by instance name.
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, DbError>;

    /// One API key by row id.
    async fn get_api_key(&self, id: i64) -> Result<Option<ApiKeyRecord>, DbError>;

    /// The key with this lookup id (an indexed query, whatever the number of keys).
    async fn find_api_key(&self, lookup_id: &str) -> Result<Option<ApiKeyRecord>, DbError>;

    /// Keys carried over from the Go llamactl that have no SHA-256 token yet.
    async fn legacy_api_keys(&self) -> Result<Vec<ApiKeyRecord>, DbError>;

    /// Gives a key its lookup id and SHA-256 (after verifying it once by other means), replacing
    /// any it had; fails with [`DbError::NotFound`] for a key that does not exist, and with
    /// [`DbError::LookupIdTaken`] if another key has this lookup id.
    async fn set_api_key_token(&self, id: i64, lookup_id: &str, sha256: &str) -> Result<(), DbError>;

    /// Records that a key was used (nothing happens for a key that does not exist).
    async fn touch_api_key(&self, id: i64, at: DateTime<Utc>) -> Result<(), DbError>;

    /// Deletes a key; `false` if there was none.
    async fn delete_api_key(&self, id: i64) -> Result<bool, DbError>;
}
