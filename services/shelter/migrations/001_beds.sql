-- A shelter's own data. The address stays here: it leaves only sealed with a survivor's key.
CREATE TABLE sites (
    org_id   text PRIMARY KEY,
    address  text
);

CREATE TABLE beds (
    bed_id     bigserial PRIMARY KEY,
    org_id     text NOT NULL,
    unit_type  text NOT NULL,
    retired    boolean NOT NULL DEFAULT false
);
CREATE INDEX beds_free ON beds (org_id, unit_type) WHERE NOT retired;

CREATE TABLE placements (
    referral_id     uuid PRIMARY KEY,
    survivor_id     uuid        NOT NULL,
    org_id          text        NOT NULL,
    bed_id          bigint      NOT NULL REFERENCES beds,
    unit_type       text        NOT NULL,
    status          text        NOT NULL,  -- reserved, checked_in, checked_out, released
    destination     text,
    reserved_at     timestamptz NOT NULL DEFAULT now(),
    checked_in_at   timestamptz,
    checked_out_at  timestamptz
);
CREATE INDEX placements_survivor ON placements (survivor_id);
-- The guarantee: a bed holds at most one reserved or occupied placement, whatever the concurrency.
CREATE UNIQUE INDEX one_placement_per_bed ON placements (bed_id) WHERE status IN ('reserved', 'checked_in');
