-- What became of each command a partner sent: pending until its service decides, then applied or refused.
-- Written pending in the same transaction as the command's outbox row; decided from haven.outcomes.
CREATE SEQUENCE outcome_seq;
CREATE TABLE command_outcomes (
    command_id    uuid PRIMARY KEY,
    org_id        text        NOT NULL,
    command_type  text        NOT NULL,
    status        text        NOT NULL DEFAULT 'pending',
    code          text,
    field         text,
    message       text,
    sent_at       timestamptz NOT NULL DEFAULT now(),
    decided_at    timestamptz,
    decided_seq   bigint      -- order of decisions, for the subscription's cursor
);
CREATE INDEX command_outcomes_decided ON command_outcomes (org_id, decided_seq) WHERE decided_seq IS NOT NULL;
