-- What a command makes that its sender acts on next (the survivor a screening identifies, the referral a request
-- creates): its outcome reads APPLIED only once that can be read back here, not merely once the service decided.
ALTER TABLE command_outcomes ADD COLUMN made uuid;
