-- The border a referral crossed (the survivor's jurisdictions and the recipient's), when it crossed one.
ALTER TABLE referrals ADD COLUMN border jsonb;
