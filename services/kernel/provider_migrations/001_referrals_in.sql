-- The referrals addressed to this provider service, as the referral events describe them.
CREATE TABLE referrals_in (
    referral_id    uuid PRIMARY KEY,
    survivor_id    uuid        NOT NULL,
    referrer_org   text        NOT NULL,
    recipient_org  text        NOT NULL,
    referral_type  text        NOT NULL,
    status         text        NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX referrals_in_survivor ON referrals_in (survivor_id);

-- Coded facts identification shares in clear, for matching a survivor to a service.
CREATE TABLE survivor_facts (
    survivor_id  uuid PRIMARY KEY,
    is_minor     boolean NOT NULL,
    age_band     text    NOT NULL,
    gender       text    NOT NULL,
    disability   boolean
);
