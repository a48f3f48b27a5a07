-- Resource history: samples of the host's, each running instance's and each GPU's CPU and
-- memory (llamactl's own table). `scope` is host, instance or gpu; `scope_key` the instance's
-- name or the GPU's index ('' for the host). Times are Unix milliseconds. No foreign key to
-- instances: a sample outlives the instance it names, until pruned by age.
CREATE TABLE resource_samples (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    scope TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    cpu_percent REAL NULL,
    memory_used_bytes INTEGER NULL,
    memory_total_bytes INTEGER NULL,
    memory_available_bytes INTEGER NULL,
    load1 REAL NULL
);
CREATE INDEX resource_samples_at ON resource_samples (at_ms);
CREATE INDEX resource_samples_scope ON resource_samples (scope, scope_key, at_ms);
