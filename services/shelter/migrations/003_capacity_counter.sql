-- Free beds per unit, counted as beds change, not over every bed on each referral: `beds` (not retired) and `held`
-- (a reserved or checked-in placement) kept by triggers, whatever path changes a bed or a placement.
CREATE TABLE capacity (
    org_id     text    NOT NULL,
    unit_type  text    NOT NULL,
    beds       integer NOT NULL DEFAULT 0,
    held       integer NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, unit_type)
);

INSERT INTO capacity (org_id, unit_type, beds, held)
SELECT b.org_id, b.unit_type, count(*) FILTER (WHERE NOT b.retired),
       count(p.bed_id) FILTER (WHERE NOT b.retired)
FROM beds b LEFT JOIN placements p ON p.bed_id = b.bed_id AND p.status IN ('reserved', 'checked_in')
GROUP BY b.org_id, b.unit_type;

CREATE FUNCTION count_beds() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change integer := (CASE WHEN TG_OP <> 'DELETE' AND NOT NEW.retired THEN 1 ELSE 0 END)
                    - (CASE WHEN TG_OP <> 'INSERT' AND NOT OLD.retired THEN 1 ELSE 0 END);
    bed beds := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
    IF change <> 0 THEN
        INSERT INTO capacity (org_id, unit_type, beds) VALUES (bed.org_id, bed.unit_type, change)
        ON CONFLICT (org_id, unit_type) DO UPDATE SET beds = capacity.beds + change;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION count_held() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change integer := (CASE WHEN TG_OP <> 'DELETE' AND NEW.status IN ('reserved', 'checked_in') THEN 1 ELSE 0 END)
                    - (CASE WHEN TG_OP <> 'INSERT' AND OLD.status IN ('reserved', 'checked_in') THEN 1 ELSE 0 END);
    placement placements := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
    IF change <> 0 THEN
        INSERT INTO capacity (org_id, unit_type, held) VALUES (placement.org_id, placement.unit_type, change)
        ON CONFLICT (org_id, unit_type) DO UPDATE SET held = capacity.held + change;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER beds_counted AFTER INSERT OR DELETE OR UPDATE OF retired ON beds
    FOR EACH ROW EXECUTE FUNCTION count_beds();
CREATE TRIGGER placements_counted AFTER INSERT OR DELETE OR UPDATE OF status ON placements
    FOR EACH ROW EXECUTE FUNCTION count_held();
