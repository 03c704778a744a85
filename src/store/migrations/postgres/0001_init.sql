-- riposte store schema, PostgreSQL. Keep in step with ../sqlite/0001_init.sql: the same
-- tables, columns and constraints, only the types differ.

-- Alerts, stored once per (source, source_id) before they are acknowledged.
CREATE TABLE alerts (
    id            TEXT PRIMARY KEY,
    source        TEXT NOT NULL,
    source_id     TEXT NOT NULL,
    principal_key TEXT,
    body          JSONB NOT NULL,
    received_at   TIMESTAMPTZ NOT NULL,
    -- NULL until matching finished: what crash recovery re-processes.
    processed_at  TIMESTAMPTZ,
    UNIQUE (source, source_id)
);
CREATE INDEX alerts_pending ON alerts (received_at) WHERE processed_at IS NULL;

CREATE TABLE runs (
    id            TEXT PRIMARY KEY,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'planning', 'awaiting_approval',
                      'running', 'succeeded', 'failed', 'denied', 'rolled_back')),
    playbook      TEXT NOT NULL,
    principal_key TEXT,
    tenant        TEXT,
    mode          TEXT NOT NULL CHECK (mode IN ('dry-run', 'enforce')),
    requested_by  TEXT,
    plan          JSONB,
    plan_hash     TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    -- The worker holding the run and until when (§4 leases).
    lease_owner   TEXT,
    lease_until   TIMESTAMPTZ
);
CREATE INDEX runs_coalesce ON runs (playbook, principal_key, created_at);
CREATE INDEX runs_listing ON runs (created_at, id);
CREATE INDEX runs_claimable ON runs (created_at) WHERE status IN ('pending', 'planning', 'running');

CREATE TABLE run_alerts (
    run_id      TEXT NOT NULL REFERENCES runs (id),
    alert_id    TEXT NOT NULL REFERENCES alerts (id),
    attached_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, alert_id)
);
CREATE INDEX run_alerts_alert ON run_alerts (alert_id);

-- Step transitions, append-only: the truth recovery reads.
CREATE TABLE journal (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id  TEXT NOT NULL REFERENCES runs (id),
    step_id TEXT NOT NULL,
    item    BIGINT NOT NULL CHECK (item >= 0),
    state   TEXT NOT NULL CHECK (state IN ('pending', 'started', 'request_sent', 'succeeded',
                'already_satisfied', 'failed', 'skipped', 'in_doubt', 'compensated',
                'compensation_failed')),
    detail  JSONB NOT NULL,
    at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX journal_run ON journal (run_id, step_id, item, seq);

CREATE TABLE approvals (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id     TEXT NOT NULL REFERENCES runs (id),
    plan_hash  TEXT NOT NULL,
    approver   TEXT NOT NULL,
    decision   TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    expires_at TIMESTAMPTZ,
    at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX approvals_run ON approvals (run_id, seq);

-- Changes made, per tenant: the guardrails' blast-radius counters, shared by replicas.
CREATE TABLE effects (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant        TEXT NOT NULL,
    action        TEXT NOT NULL,
    principal_key TEXT NOT NULL,
    at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX effects_window ON effects (tenant, at);

CREATE TABLE evidence (
    id           TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL REFERENCES runs (id),
    step_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    size         BIGINT NOT NULL,
    content      BYTEA NOT NULL,
    at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX evidence_run ON evidence (run_id, at);

-- The hash-chained audit trail. `body` is the canonical JSON text that was hashed, kept as
-- text so the database cannot reformat it.
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    kind      TEXT NOT NULL,
    run_id    TEXT,
    actor     TEXT,
    body      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
-- One row, written in every append's transaction: it serialises appends and lets
-- verification notice a truncated tail.
CREATE TABLE audit_head (
    id        SMALLINT PRIMARY KEY CHECK (id = 1),
    count     BIGINT NOT NULL,
    head_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, count, head_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
