-- Per-key rate limits shared by every gateway instance: one token bucket per API key (by its hash). Unlogged: a
-- crash forgets the buckets (every key starts full again), which costs nothing worth a WAL write per request.
CREATE UNLOGGED TABLE rate_buckets (
    key_hash text PRIMARY KEY,
    tokens   double precision NOT NULL,
    stamp    timestamptz NOT NULL,
    allowed  boolean NOT NULL
);
