-- Review-page sessions. The primary key is the sha256 of the session id the cookie carries,
-- so a copy of this table signs nobody in. Expired rows are deleted when a session opens.
-- Keep in step with ../sqlite/0006.
CREATE TABLE sessions (
    id_sha256 TEXT PRIMARY KEY,
    caller TEXT NOT NULL,
    role TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
