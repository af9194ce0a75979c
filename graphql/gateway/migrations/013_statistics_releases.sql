-- De-identified statistics releases, as the statistics service published them: coded figures only, no ids.
CREATE TABLE statistics_releases (
    release_id    uuid PRIMARY KEY,
    requested_by  text        NOT NULL,
    dimensions    text[]      NOT NULL,
    period        text        NOT NULL,
    cells         jsonb       NOT NULL,   -- [{"values": {dimension: value}, "count": n | null}]
    released_at   timestamptz NOT NULL
);
