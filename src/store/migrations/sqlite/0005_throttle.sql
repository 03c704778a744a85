-- Throttle holds shared by replicas: when Microsoft tells one replica to back off (429 with
-- Retry-After), every replica waits until then. Keep in step with ../postgres/0005.
CREATE TABLE throttle (
    budget_key TEXT NOT NULL,
    api        TEXT NOT NULL,
    held_until TEXT NOT NULL,
    PRIMARY KEY (budget_key, api)
);
