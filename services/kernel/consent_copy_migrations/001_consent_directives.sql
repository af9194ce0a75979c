-- A service's own copy of survivors' consent, projected from the consent topic, as decide() takes it
-- (services/kernel/consent_copy.py).
CREATE TABLE IF NOT EXISTS consent_directives (
    survivor_id   uuid    NOT NULL,
    directive_id  uuid    NOT NULL,
    version       integer NOT NULL,
    directive     jsonb   NOT NULL,
    revoked_at    timestamptz,
    PRIMARY KEY (directive_id, version)
);
CREATE INDEX IF NOT EXISTS consent_directives_survivor ON consent_directives (survivor_id);
