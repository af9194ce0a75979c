-- Partners' webhook endpoints, what is queued for them, and every attempt (the delivery log).
CREATE TABLE webhooks (
    webhook_id       uuid PRIMARY KEY,
    org_id           text        NOT NULL,
    url              text        NOT NULL,
    secret           text        NOT NULL,  -- the whsec_ signing secret, shown once at registration
    event_types      text[]      NOT NULL,
    enabled          boolean     NOT NULL DEFAULT true,
    disabled_reason  text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_org ON webhooks (org_id) WHERE enabled;

CREATE TABLE webhook_deliveries (
    webhook_id        uuid        NOT NULL REFERENCES webhooks ON DELETE CASCADE,
    message_id        text        NOT NULL,  -- webhook-id: the same for every attempt, for the receiver's idempotency
    event_type        text        NOT NULL,
    payload           jsonb       NOT NULL,  -- ids and codes only
    status            text        NOT NULL DEFAULT 'pending',  -- pending, delivered, failed
    attempts          integer     NOT NULL DEFAULT 0,
    queued_at         timestamptz NOT NULL DEFAULT now(),
    first_attempt_at  timestamptz,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    PRIMARY KEY (webhook_id, message_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    webhook_id   uuid        NOT NULL,
    message_id   text        NOT NULL,
    at           timestamptz NOT NULL,
    status_code  integer,
    error        text
);
CREATE INDEX webhook_attempts_message ON webhook_attempts (webhook_id, message_id, at);
