-- What a run runs and what it did, on the run itself (issue: the run spec is stored).
-- `spec`: the playbook text and its sha256, or the action and its parameters, plus inputs.
-- `report`: the execution report, once the run executed.
ALTER TABLE runs ADD COLUMN spec TEXT;
ALTER TABLE runs ADD COLUMN report TEXT;
-- Who delivered the alert (`token:<name>`): the identity an alert-triggered run records.
ALTER TABLE alerts ADD COLUMN ingested_by TEXT;
