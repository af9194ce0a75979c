-- Each survivor's first referral and where it stands, so that releases can count survivors by referral type and
-- outcome (one row per survivor: a table's figures still add up, and each counts survivors, not referrals).
CREATE TABLE first_referrals (
    survivor_id    uuid PRIMARY KEY,
    referral_id    uuid        NOT NULL UNIQUE,
    referral_type  text        NOT NULL,
    outcome        text        NOT NULL DEFAULT 'awaiting_answer'
);
