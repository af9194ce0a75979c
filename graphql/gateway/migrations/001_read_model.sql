-- The gateway's read model, projected from every topic. Personal data stays sealed here too;
-- it is opened per field, per request, only where consent permits.

-- Partners and their keys (hashed: a leaked table reveals no key).
CREATE TABLE organisations (
    org_id    text PRIMARY KEY,
    name      text NOT NULL,
    org_type  text NOT NULL,
    profile   jsonb,
    capacity  jsonb NOT NULL DEFAULT '{}'::jsonb  -- "service/unit" -> {status, available}
);
CREATE TABLE api_keys (
    key_hash    text PRIMARY KEY,
    org_id      text        NOT NULL,
    role        text        NOT NULL,
    label       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE survivors (
    survivor_id    uuid PRIMARY KEY,
    outcome        text        NOT NULL,
    is_minor       boolean     NOT NULL,
    screener_org   text        NOT NULL,
    profile        jsonb       NOT NULL,  -- sealed identity / contact / narrative
    needs          jsonb       NOT NULL DEFAULT '[]'::jsonb,
    identified_at  timestamptz NOT NULL
);

CREATE TABLE consent_directives (
    survivor_id   uuid    NOT NULL,
    directive_id  uuid    NOT NULL,
    version       integer NOT NULL,
    directive     jsonb   NOT NULL,
    revoked_at    timestamptz,
    PRIMARY KEY (directive_id, version)
);
CREATE INDEX consent_directives_survivor ON consent_directives (survivor_id);

CREATE TABLE referrals (
    referral_id    uuid PRIMARY KEY,
    survivor_id    uuid        NOT NULL,
    referrer_org   text        NOT NULL,
    recipient_org  text        NOT NULL,
    referral_type  text        NOT NULL,
    urgency        text        NOT NULL,
    status         text        NOT NULL,
    deadline       timestamptz NOT NULL,
    parent_referral_id uuid,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    seq            bigserial   -- stable cursor order
);
CREATE INDEX referrals_survivor ON referrals (survivor_id);
CREATE INDEX referrals_recipient ON referrals (recipient_org, seq);
CREATE INDEX referrals_referrer ON referrals (referrer_org, seq);

CREATE TABLE transitions (
    event_id     uuid PRIMARY KEY,
    referral_id  uuid        NOT NULL,
    survivor_id  uuid        NOT NULL,
    status       text        NOT NULL,
    actor_org    text        NOT NULL,
    reason       text,
    at           timestamptz NOT NULL
);
CREATE INDEX transitions_referral ON transitions (referral_id, at);

-- What providers report: kind (placement, legal_matter, health, employment), coded and sealed parts.
CREATE TABLE service_records (
    record_id    text PRIMARY KEY,  -- kind/id
    survivor_id  uuid        NOT NULL,
    kind         text        NOT NULL,
    org_id       text        NOT NULL,
    referral_id  uuid,
    state        jsonb       NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX service_records_survivor ON service_records (survivor_id);

-- Every read of survivor data: who, which survivor, which categories, why, when. Hash-chained.
CREATE TABLE audit_log (
    seq          bigserial PRIMARY KEY,
    at           timestamptz NOT NULL,
    org_id       text        NOT NULL,
    role         text        NOT NULL,
    survivor_id  uuid        NOT NULL,
    categories   text[]      NOT NULL,
    purpose      text        NOT NULL,
    prev_hash    text        NOT NULL,
    hash         text        NOT NULL
);
CREATE INDEX audit_log_survivor ON audit_log (survivor_id, seq);
