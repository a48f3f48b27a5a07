-- The instances table exactly as the Go llamactl creates it, so that its database files open
-- unchanged: on such a file this migration finds the table and does nothing.
-- instances.status keeps the Go vocabulary (see InstanceStatus::legacy_status); the full
-- runtime status lives in instance_runtime.
CREATE TABLE IF NOT EXISTS instances (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK(status IN ('stopped', 'running', 'failed', 'restarting', 'shutting_down')) DEFAULT 'stopped',
    created_at INTEGER NOT NULL, -- unix seconds
    updated_at INTEGER NOT NULL, -- unix seconds, last change of the options
    options_json TEXT NOT NULL,
    owner_user_id TEXT NULL
);

CREATE UNIQUE INDEX IF NOT EXISTS idx_instances_name ON instances(name);
CREATE INDEX IF NOT EXISTS idx_instances_status ON instances(status);
