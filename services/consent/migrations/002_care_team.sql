-- Who screened each survivor, and the referrals that make organisations part of their care team
-- (projected from referral events). Pseudonymous ids and organisation slugs only.
ALTER TABLE survivors ADD COLUMN screener_org text;

CREATE TABLE care_links (
    referral_id    uuid PRIMARY KEY,
    survivor_id    uuid    NOT NULL,
    referrer_org   text    NOT NULL,
    recipient_org  text    NOT NULL,
    open           boolean NOT NULL,
    accepted       boolean NOT NULL DEFAULT false,
    closed_at      timestamptz
);
CREATE INDEX care_links_survivor ON care_links (survivor_id);
