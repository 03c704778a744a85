-- Followers of the audit trail (the notifier): how far each has read, and which worker reads
-- it now. One lease per cursor, so with replicas exactly one of them posts each event.
-- Keep in step with ../sqlite/0007.
CREATE TABLE cursors (
    name        TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    owner       TEXT,
    lease_until TIMESTAMPTZ
);
