-- The audit's signed checkpoints as published (each also went to haven.audit, for the oversight body to keep).
CREATE TABLE audit_checkpoints (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    reason      text        NOT NULL,
    checkpoint  jsonb       NOT NULL
);
