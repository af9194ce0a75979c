-- The care team: who screened the survivor, and which referrals were ever accepted.
ALTER TABLE survivors ADD COLUMN screener_org text;
ALTER TABLE referrals ADD COLUMN accepted_ever boolean NOT NULL DEFAULT false;
-- What the survivor's consent did not share with the recipient when the referral was made.
ALTER TABLE referrals ADD COLUMN withheld text[] NOT NULL DEFAULT '{}';
