CREATE TABLE clinics (
    org_id            text PRIMARY KEY,
    max_open_matters  integer NOT NULL
);

CREATE TABLE matters (
    matter_id    uuid PRIMARY KEY,
    referral_id  uuid        NOT NULL UNIQUE,
    survivor_id  uuid        NOT NULL,
    clinic_org   text        NOT NULL,
    matter_type  text        NOT NULL,
    outcome      text,                 -- null while open
    opened_at    timestamptz NOT NULL DEFAULT now(),
    closed_at    timestamptz
);
CREATE INDEX matters_open ON matters (clinic_org) WHERE outcome IS NULL;
CREATE INDEX matters_survivor ON matters (survivor_id);

CREATE TABLE milestones (
    matter_id     uuid        NOT NULL REFERENCES matters ON DELETE CASCADE,
    seq           integer     NOT NULL,
    milestone     text        NOT NULL,
    hearing_date  date,
    at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (matter_id, seq)
);
