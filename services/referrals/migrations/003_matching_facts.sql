-- What a referral carries to its recipient for matching: whether the survivor is a minor, and the coded facts
-- (age band, gender, disability) sealed with the survivor's key, as identification sealed them (never opened here).
ALTER TABLE survivors ADD COLUMN is_minor boolean;
ALTER TABLE survivors ADD COLUMN statistics jsonb;
