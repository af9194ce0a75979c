-- Referrals and their transitions. No personal data: pseudonymous ids, codes, organisations.
CREATE TABLE referrals (
    referral_id         uuid PRIMARY KEY,
    survivor_id         uuid        NOT NULL,
    referrer_org        text        NOT NULL,
    recipient_org       text        NOT NULL,
    referral_type       text        NOT NULL,
    urgency             text        NOT NULL,
    purpose             text        NOT NULL,
    categories          text[]      NOT NULL,
    status              text        NOT NULL,
    deadline            timestamptz NOT NULL,
    allow_reroute       boolean     NOT NULL,
    parent_referral_id  uuid REFERENCES referrals ON DELETE CASCADE,
    root_referral_id    uuid        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX referrals_survivor ON referrals (survivor_id);
CREATE INDEX referrals_root ON referrals (root_referral_id);
CREATE INDEX referrals_referrer ON referrals (referrer_org, updated_at DESC);
CREATE INDEX referrals_recipient ON referrals (recipient_org, updated_at DESC);

-- Every transition: who, when, from what to what, and the coded reason.
CREATE TABLE transitions (
    referral_id  uuid        NOT NULL REFERENCES referrals ON DELETE CASCADE,
    seq          integer     NOT NULL,
    from_status  text,
    to_status    text        NOT NULL,
    actor_org    text        NOT NULL,
    reason       text,
    note         text,
    at           timestamptz NOT NULL,
    PRIMARY KEY (referral_id, seq)
);

-- The service directory, projected from the directory topic.
CREATE TABLE organisations (
    org_id        text PRIMARY KEY,
    org_type      text   NOT NULL,
    services      text[] NOT NULL,
    jurisdictions text[] NOT NULL,
    profile       jsonb  NOT NULL
);
CREATE TABLE capacity (
    org_id      text    NOT NULL,
    service     text    NOT NULL,
    unit_type   text    NOT NULL DEFAULT '-',
    status      text    NOT NULL,
    available   integer NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, service, unit_type)
);

-- The survivors' consent, projected from the consent topic, as decide() takes it.
CREATE TABLE consent_directives (
    survivor_id   uuid    NOT NULL,
    directive_id  uuid    NOT NULL,
    version       integer NOT NULL,
    directive     jsonb   NOT NULL,
    revoked_at    timestamptz,
    PRIMARY KEY (directive_id, version)
);
CREATE INDEX consent_directives_survivor ON consent_directives (survivor_id);

-- Coded statistics identification shares in clear, for eligibility when re-routing.
CREATE TABLE survivors (
    survivor_id  uuid PRIMARY KEY,
    age_band     text NOT NULL,
    gender       text NOT NULL
);
