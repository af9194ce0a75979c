-- Per-survivor data keys, each wrapped (AES-256-GCM) by the master key. Deleting a row
-- crypto-shreds everything sealed with that key, wherever the ciphertext still lies.
CREATE TABLE data_keys (
    survivor_id  uuid PRIMARY KEY,
    kid          text        NOT NULL UNIQUE,
    wrapped_key  bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Which survivors were erased, and when: pseudonymous ids only, so "erased" can be told
-- apart from "never existed" without keeping anything personal.
CREATE TABLE erased (
    survivor_id  uuid PRIMARY KEY,
    erased_at    timestamptz NOT NULL DEFAULT now()
);
