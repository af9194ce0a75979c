CREATE TABLE enrolments (
    enrolment_id       uuid PRIMARY KEY,
    referral_id        uuid        NOT NULL UNIQUE,
    survivor_id        uuid        NOT NULL,
    program_org        text        NOT NULL,
    program_type       text        NOT NULL,
    employed           boolean,
    wage_band          text,
    retained_3_months  boolean,
    retained_6_months  boolean,
    enrolled_at        timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX enrolments_survivor ON enrolments (survivor_id);
