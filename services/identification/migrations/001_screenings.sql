-- Survivors identified here and their screenings. Personal parts are stored only sealed,
-- exactly as they travel; the keys are in the keyring schema.
CREATE TABLE survivors (
    survivor_id        uuid PRIMARY KEY,
    is_minor           boolean     NOT NULL,
    first_screened_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE screenings (
    screening_id     uuid PRIMARY KEY,
    survivor_id      uuid        NOT NULL REFERENCES survivors ON DELETE CASCADE,
    screener_org     text        NOT NULL,
    idempotency_key  text        NOT NULL,
    command          jsonb       NOT NULL,  -- the clear parts of the command
    profile          jsonb       NOT NULL,  -- the sealed parts
    needs            jsonb       NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (screener_org, idempotency_key)
);
CREATE INDEX screenings_survivor ON screenings (survivor_id);
