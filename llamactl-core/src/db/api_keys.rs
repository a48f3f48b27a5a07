//! Records of inference API keys. Hashing and verification are the server's business; the
//! store keeps what it is given and finds a key by its public lookup id through an index.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
