-- The events log of router instances' models (llamactl's own table): every status change of a
-- llama.cpp router's model, with its typed reason as JSON (`reason_kind` repeats its kind for
-- queries). `from_status` is NULL when the model was first seen. Times are Unix milliseconds.
-- Keyed by the instance's name; removed with the instance and kept to the newest 1,000 per
-- instance.
CREATE TABLE sub_model_events (
    id INTEGER PRIMARY KEY,
    instance TEXT NOT NULL,
    model TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    from_status TEXT NULL,
    to_status TEXT NOT NULL,
    reason_kind TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX sub_model_events_instance ON sub_model_events (instance, id);
