-- Inference API keys. api_keys and key_permissions are the Go llamactl's tables, created only
-- where they do not exist yet, so its keys carry over; their structure is never altered.
-- What llamactl adds lives in tables of its own:
--   api_key_tokens      the indexed lookup id and SHA-256 of a key (new keys, and Go keys once
--                       they have been verified with their Argon2 hash one time)
--   key_instance_rights can_start / can_evict per key and instance
CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    permission_mode TEXT NOT NULL CHECK(permission_mode IN ('allow_all', 'per_instance')) DEFAULT 'per_instance',
    expires_at INTEGER NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_used_at INTEGER NULL
);

CREATE TABLE IF NOT EXISTS key_permissions (
    key_id INTEGER NOT NULL,
    instance_id INTEGER NOT NULL,
    can_infer INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, instance_id),
    FOREIGN KEY (key_id) REFERENCES api_keys (id) ON DELETE CASCADE,
    FOREIGN KEY (instance_id) REFERENCES instances (id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS idx_api_keys_user_id ON api_keys(user_id);
CREATE INDEX IF NOT EXISTS idx_api_keys_expires_at ON api_keys(expires_at);
CREATE INDEX IF NOT EXISTS idx_key_permissions_instance_id ON key_permissions(instance_id);

CREATE TABLE api_key_tokens (
    api_key_id INTEGER PRIMARY KEY REFERENCES api_keys(id) ON DELETE CASCADE,
    lookup_id TEXT NOT NULL UNIQUE, -- public part of the key, found by index
    sha256 TEXT NOT NULL            -- hex SHA-256 of the whole key
);

CREATE TABLE key_instance_rights (
    key_id INTEGER NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    instance_id INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    can_start INTEGER NOT NULL DEFAULT 0,
    can_evict INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, instance_id)
);
