-- Engagement in care per referral. Clinical detail is kept only sealed, as it arrived.
CREATE TABLE engagements (
    referral_id      uuid PRIMARY KEY,
    survivor_id      uuid        NOT NULL,
    provider_org     text        NOT NULL,
    service          text        NOT NULL,
    engaged          boolean     NOT NULL,
    clinical_detail  jsonb,
    discharged_with  text,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX engagements_survivor ON engagements (survivor_id);
