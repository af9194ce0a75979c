-- A release's scope (an organisation's own figures, for its admins alone; null: national, for oversight bodies) and
-- the need a NEED table counts.
ALTER TABLE statistics_releases ADD COLUMN organisation text, ADD COLUMN need text;
