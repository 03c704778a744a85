-- What a run runs and what it did, on the run itself. Keep in step with ../sqlite/0002.
ALTER TABLE runs ADD COLUMN spec JSONB;
ALTER TABLE runs ADD COLUMN report JSONB;
ALTER TABLE alerts ADD COLUMN ingested_by TEXT;
