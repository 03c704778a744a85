-- One response per incident, and fencing. Keep in step with ../postgres/0004.

-- The incident an alert joins: one row per (playbook, principal), naming the incident's latest
-- run. Creating or joining a run is one upsert on this key, so two replicas matching alerts for
-- the same user at once can never open two runs.
CREATE TABLE incidents (
    playbook      TEXT NOT NULL,
    principal_key TEXT NOT NULL,
    incident_id   TEXT NOT NULL,
    latest_run_id TEXT NOT NULL,
    opened_at     TEXT NOT NULL,
    PRIMARY KEY (playbook, principal_key)
);

-- A run belongs to an incident (the id of its first run); a follow-up run names the run before it.
ALTER TABLE runs ADD COLUMN incident_id TEXT;
ALTER TABLE runs ADD COLUMN follows_run_id TEXT;
CREATE INDEX runs_incident ON runs (incident_id, created_at);

-- Grows by one with every claim of the run: a journal or status write carrying an older number
-- comes from a worker that lost its lease, and is refused.
ALTER TABLE runs ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;

-- One row per tenant, locked by every blast-radius reservation so concurrent reservations on any
-- replica are counted one after another.
CREATE TABLE budget_locks (
    tenant TEXT PRIMARY KEY,
    at     TEXT NOT NULL
);
