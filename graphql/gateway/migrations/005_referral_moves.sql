-- The order in which referrals moved, for the referralUpdates subscription's cursor.
CREATE SEQUENCE referral_move_seq;
ALTER TABLE referrals ADD COLUMN moved_seq bigint;
CREATE INDEX referrals_moved ON referrals (moved_seq);
