-- Nothing spins (issue 11): alerts get a status and, like runs, an attempt count, the time of
-- their next attempt and the last failure's reason; runs can be `cancelled`.
-- Keep in step with ../postgres/0003_attempts.sql.
--
-- SQLite cannot widen a CHECK constraint in place, so `runs` is rebuilt (the documented
-- create-copy-drop-rename procedure). That needs foreign keys off, which SQLite only allows
-- outside a transaction: this migration runs without sqlx's transaction and opens its own.
PRAGMA foreign_keys = OFF;
BEGIN;

ALTER TABLE alerts ADD COLUMN status TEXT NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'matched', 'unmatched', 'failed'));
ALTER TABLE alerts ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0);
-- NULL: due now. Matching skips a pending alert until this time passes.
ALTER TABLE alerts ADD COLUMN next_attempt_at TEXT;
ALTER TABLE alerts ADD COLUMN last_error TEXT;
-- Alerts matching already finished were matched when a run links them, else unmatched.
UPDATE alerts SET status = CASE
        WHEN EXISTS (SELECT 1 FROM run_alerts ra WHERE ra.alert_id = alerts.id) THEN 'matched'
        ELSE 'unmatched' END
    WHERE processed_at IS NOT NULL;
DROP INDEX alerts_pending;
CREATE INDEX alerts_pending ON alerts (received_at, id) WHERE status = 'pending';
CREATE INDEX alerts_listing ON alerts (status, received_at);

CREATE TABLE runs_new (
    id              TEXT PRIMARY KEY,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'planning', 'awaiting_approval',
                        'running', 'succeeded', 'failed', 'denied', 'rolled_back', 'cancelled')),
    playbook        TEXT NOT NULL,
    principal_key   TEXT,
    tenant          TEXT,
    mode            TEXT NOT NULL CHECK (mode IN ('dry-run', 'enforce')),
    requested_by    TEXT,
    plan            TEXT,
    plan_hash       TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    lease_owner     TEXT,
    lease_until     TEXT,
    spec            TEXT,
    report          TEXT,
    -- Failed planning attempts so far; after [engine] retry_attempts the run is failed.
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- NULL: due now. No worker claims the run before this time.
    next_attempt_at TEXT,
    last_error      TEXT
);
INSERT INTO runs_new (id, status, playbook, principal_key, tenant, mode, requested_by, plan,
        plan_hash, created_at, updated_at, lease_owner, lease_until, spec, report)
    SELECT id, status, playbook, principal_key, tenant, mode, requested_by, plan, plan_hash,
        created_at, updated_at, lease_owner, lease_until, spec, report FROM runs;
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;
CREATE INDEX runs_coalesce ON runs (playbook, principal_key, created_at);
CREATE INDEX runs_listing ON runs (created_at, id);
CREATE INDEX runs_claimable ON runs (created_at) WHERE status IN ('pending', 'planning', 'running');

COMMIT;
PRAGMA foreign_keys = ON;
