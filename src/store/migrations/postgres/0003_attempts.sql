-- Nothing spins (issue 11): alerts get a status and, like runs, an attempt count, the time of
-- their next attempt and the last failure's reason; runs can be `cancelled`.
-- Keep in step with ../sqlite/0003_attempts.sql.
ALTER TABLE alerts ADD COLUMN status TEXT NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'matched', 'unmatched', 'failed'));
ALTER TABLE alerts ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0);
-- NULL: due now. Matching skips a pending alert until this time passes.
ALTER TABLE alerts ADD COLUMN next_attempt_at TIMESTAMPTZ;
ALTER TABLE alerts ADD COLUMN last_error TEXT;
-- Alerts matching already finished were matched when a run links them, else unmatched.
UPDATE alerts SET status = CASE
        WHEN EXISTS (SELECT 1 FROM run_alerts ra WHERE ra.alert_id = alerts.id) THEN 'matched'
        ELSE 'unmatched' END
    WHERE processed_at IS NOT NULL;
DROP INDEX alerts_pending;
CREATE INDEX alerts_pending ON alerts (received_at, id) WHERE status = 'pending';
CREATE INDEX alerts_listing ON alerts (status, received_at);

ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check CHECK (status IN ('pending', 'planning',
    'awaiting_approval', 'running', 'succeeded', 'failed', 'denied', 'rolled_back', 'cancelled'));
-- Failed planning attempts so far; after [engine] retry_attempts the run is failed.
ALTER TABLE runs ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0);
-- NULL: due now. No worker claims the run before this time.
ALTER TABLE runs ADD COLUMN next_attempt_at TIMESTAMPTZ;
ALTER TABLE runs ADD COLUMN last_error TEXT;
