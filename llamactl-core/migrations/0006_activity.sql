-- Activity: one row per proxied request (llamactl's own table; the Go llamactl has none).
-- Times are Unix milliseconds; token counts and speeds are NULL where the backend reported
-- nothing. No foreign key to instances: a record outlives the instance it names.
CREATE TABLE activity (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    instance TEXT NULL,
    model TEXT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    key_id INTEGER NULL,
    key_name TEXT NULL,
    client TEXT NULL,
    duration_ms REAL NOT NULL,
    ttfb_ms REAL NULL,
    queue_ms REAL NULL,
    streamed INTEGER NOT NULL,
    prompt_tokens INTEGER NULL,
    completion_tokens INTEGER NULL,
    cached_tokens INTEGER NULL,
    prompt_tps REAL NULL,
    generation_tps REAL NULL,
    outcome TEXT NOT NULL,
    error TEXT NULL
);
CREATE INDEX activity_at ON activity (at_ms);
CREATE INDEX activity_instance ON activity (instance, id);
CREATE INDEX activity_key ON activity (key_name, id);
