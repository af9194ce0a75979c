-- Survivors erased: pseudonymous ids only. Every command about one of them is refused.
CREATE TABLE erased_survivors (
    survivor_id  uuid PRIMARY KEY,
    erased_at    timestamptz NOT NULL DEFAULT now()
);

-- Commands that arrived before the survivor they name was known here; run again, in order, when
-- survivor.identified (or survivor.erased) for that survivor is handled. The message is kept as it came.
CREATE TABLE parked (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    survivor_id  uuid        NOT NULL,
    seq          bigserial,
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    "offset"     bigint      NOT NULL,
    key          bytea,
    headers      jsonb       NOT NULL,
    value        bytea       NOT NULL,
    parked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX parked_survivor ON parked (consumer, survivor_id, seq);
