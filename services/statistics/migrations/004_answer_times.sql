-- When each survivor's first referral was requested and accepted, for releases by time to acceptance (in bands).
ALTER TABLE first_referrals ADD COLUMN requested_at timestamptz, ADD COLUMN accepted_at timestamptz;
