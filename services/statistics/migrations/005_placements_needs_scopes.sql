-- When each survivor first checked in to a shelter bed, for releases by time from identification to placement.
CREATE TABLE placements (
    survivor_id    uuid PRIMARY KEY,
    checked_in_at  timestamptz NOT NULL
);
-- The referral types each survivor's latest needs assessment named (coded needs, no free text).
CREATE TABLE needs (
    survivor_id    uuid NOT NULL,
    referral_type  text NOT NULL,
    PRIMARY KEY (survivor_id, referral_type)
);
-- Every organisation each survivor was referred to: an organisation's own release counts these survivors only.
CREATE TABLE referred_to (
    survivor_id  uuid NOT NULL,
    org_id       text NOT NULL,
    PRIMARY KEY (org_id, survivor_id)
);
CREATE INDEX referred_to_survivor ON referred_to (survivor_id);
-- Whether the first referral missed its deadline (escalated), and whether Haven sent it on.
ALTER TABLE first_referrals ADD COLUMN escalated boolean NOT NULL DEFAULT false,
                            ADD COLUMN rerouted boolean NOT NULL DEFAULT false;
-- A release's scope (an organisation's own, or null: every survivor) and the need a NEED table counts. A release is
-- checked for differencing against the earlier releases of its own scope, which only that scope's readers see.
ALTER TABLE releases ADD COLUMN organisation text, ADD COLUMN need text;
