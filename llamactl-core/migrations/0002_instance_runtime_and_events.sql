-- Runtime state of each instance: what runs, where, since when, and why it last changed.
-- Written by the manager at every status transition; the static options in instances are never
-- rewritten at runtime. Timestamps are unix milliseconds.
CREATE TABLE instance_runtime (
    instance_id INTEGER PRIMARY KEY REFERENCES instances(id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'stopped'
        CHECK (status IN ('stopped', 'starting', 'running', 'stopping', 'restarting', 'failed')),
    desired_state TEXT NOT NULL DEFAULT 'stopped' CHECK (desired_state IN ('stopped', 'running')),
    pid INTEGER NULL,
    process_start_ticks INTEGER NULL, -- start time of pid, in clock ticks after boot (/proc/PID/stat)
    boot_id TEXT NULL,                -- /proc/sys/kernel/random/boot_id when pid was recorded
    port INTEGER NULL CHECK (port IS NULL OR port BETWEEN 1 AND 65535),
    started_at INTEGER NULL,
    ready_at INTEGER NULL,
    stopped_at INTEGER NULL,
    restart_count INTEGER NOT NULL DEFAULT 0 CHECK (restart_count >= 0),
    last_exit_code INTEGER NULL,
    last_signal INTEGER NULL,
    last_error TEXT NULL,
    last_reason TEXT NULL,            -- JSON of the last TransitionReason
    updated_at INTEGER NOT NULL
);

-- Instances created by the Go llamactl: it restarts those it left running, and so do we.
INSERT INTO instance_runtime (instance_id, status, desired_state, updated_at)
SELECT id,
       CASE status WHEN 'failed' THEN 'failed' ELSE 'stopped' END,
       CASE WHEN status IN ('running', 'restarting') THEN 'running' ELSE 'stopped' END,
       updated_at * 1000
FROM instances;

-- Every status transition with its typed reason. Append-only.
CREATE TABLE instance_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    reason_kind TEXT NOT NULL,
    reason TEXT NOT NULL, -- JSON of the TransitionReason
    pid INTEGER NULL,
    port INTEGER NULL
);

CREATE INDEX idx_instance_events_instance ON instance_events(instance_id, id);

CREATE TRIGGER instance_events_append_only BEFORE UPDATE ON instance_events
BEGIN
    SELECT RAISE(ABORT, 'instance_events is append-only');
END;
