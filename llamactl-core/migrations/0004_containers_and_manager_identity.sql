-- Docker runtime: the container a run lives in, and a stable identity for this manager, which
-- labels its containers so that a restarted manager finds them (and never touches others').
ALTER TABLE instance_runtime ADD COLUMN container_id TEXT NULL;

CREATE TABLE manager_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
