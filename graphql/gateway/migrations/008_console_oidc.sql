-- Console sessions opened through the organisation's identity provider (OIDC code flow with PKCE) hold the
-- organisation and role it vouched for, until the ID token expires, instead of an API key's hash.
ALTER TABLE console_sessions ALTER COLUMN key_hash DROP NOT NULL;
ALTER TABLE console_sessions ADD COLUMN org_id text;
ALTER TABLE console_sessions ADD COLUMN role text;
ALTER TABLE console_sessions ADD COLUMN expires_at timestamptz;

-- A sign-in under way: what the callback must match (state), prove (the PKCE verifier) and find in the token (nonce).
CREATE TABLE console_logins (
    state       text        PRIMARY KEY,
    verifier    text        NOT NULL,
    nonce       text        NOT NULL,
    language    text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
