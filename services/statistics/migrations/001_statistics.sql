-- Statistics keeps what it counts sealed, as identification sealed it: it opens a survivor's coded facts only when
-- a release is made, and only under statistics consent. No release record holds a survivor id.

CREATE TABLE survivors (
    survivor_id    uuid PRIMARY KEY,
    identified_at  timestamptz NOT NULL,
    screener_org   text        NOT NULL,
    statistics     jsonb                   -- sealed (STATISTICS); null if the screening carried none
);
CREATE INDEX survivors_identified ON survivors (identified_at);

CREATE TABLE organisations (
    org_id         text PRIMARY KEY,
    org_type       text   NOT NULL,
    jurisdictions  text[] NOT NULL
);

-- Each release as published, with what later releases are checked against: its period, its table's dimensions
-- and vocabularies, every figure it had and the ones it showed. How many survivors it counted stays here.
CREATE TABLE releases (
    release_id    uuid PRIMARY KEY,
    requested_by  text        NOT NULL,
    dimensions    text[]      NOT NULL,
    period        text        NOT NULL,
    period_start  integer     NOT NULL,   -- months since year 0
    period_end    integer     NOT NULL,
    vocabulary    jsonb       NOT NULL,   -- dimension -> the values the table had
    shown         jsonb       NOT NULL,   -- [[[dimension, value] ...], count] for each figure published
    contributors  integer     NOT NULL,
    released_at   timestamptz NOT NULL
);
