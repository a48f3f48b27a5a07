-- Adoption: what a running backend runs (a hash of its command line, or of its options for a
-- container) and the file its output goes to, so that a restarted manager can check it and
-- take it over instead of starting it again.
ALTER TABLE instance_runtime ADD COLUMN command_hash TEXT NULL;
ALTER TABLE instance_runtime ADD COLUMN output_path TEXT NULL;
