-- The care team (events.care): which referrals were ever accepted. What each referral shares with
-- its recipient, and what the survivor's consent withheld (so the referrer sees it).
ALTER TABLE referrals ADD COLUMN accepted_ever boolean NOT NULL DEFAULT false;
ALTER TABLE referrals ADD COLUMN shared text[] NOT NULL DEFAULT '{}';
ALTER TABLE referrals ADD COLUMN withheld text[] NOT NULL DEFAULT '{}';
CREATE INDEX audit_log_org ON audit_log (org_id, seq);
