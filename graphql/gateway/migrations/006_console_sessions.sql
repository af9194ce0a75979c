-- The partner console's server-side sessions. The cookie holds a random id; only its hash is stored. A session
-- acts as the API key it was opened with (by the key's hash): revoking the key ends the session too.
CREATE TABLE console_sessions (
    session_hash  text        PRIMARY KEY,
    key_hash      text        NOT NULL,
    csrf          text        NOT NULL,
    language      text        NOT NULL DEFAULT 'en',
    created_at    timestamptz NOT NULL DEFAULT now(),
    seen_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_sessions_seen ON console_sessions (seen_at);
