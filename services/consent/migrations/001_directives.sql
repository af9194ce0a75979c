-- Every version of every directive, with its revocation and expiry. Grantee, categories and
-- purposes are pseudonymous codes; no personal data is kept here.
CREATE TABLE directives (
    directive_id  uuid        NOT NULL,
    version       integer     NOT NULL,
    survivor_id   uuid        NOT NULL,
    directive     jsonb       NOT NULL,
    valid_until   timestamptz NOT NULL,
    superseded    boolean     NOT NULL DEFAULT false,
    revoked_at    timestamptz,
    revoked_by    text,
    expired_at    timestamptz,  -- when consent.expired was published for it
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (directive_id, version)
);
CREATE INDEX directives_survivor ON directives (survivor_id);
CREATE INDEX directives_due ON directives (valid_until)
    WHERE NOT superseded AND revoked_at IS NULL AND expired_at IS NULL;

-- What identification told us about each survivor that consent rules depend on.
CREATE TABLE survivors (
    survivor_id  uuid PRIMARY KEY,
    is_minor     boolean NOT NULL
);
