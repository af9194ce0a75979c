-- Claiming a free bed looked at each bed in turn for an active placement: the fuller the shelter, the longer (8 ms a
-- claim once a few dozen beds were taken). Each bed now says which referral holds it, kept by the placements
-- trigger, and the free beds of a unit are an index of their own: a claim reads one entry.
ALTER TABLE beds ADD COLUMN held_by uuid;
UPDATE beds b SET held_by = p.referral_id FROM placements p
 WHERE p.bed_id = b.bed_id AND p.status IN ('reserved', 'checked_in');
CREATE INDEX beds_free_now ON beds (org_id, unit_type, bed_id) WHERE NOT retired AND held_by IS NULL;

CREATE OR REPLACE FUNCTION count_held() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_held boolean := TG_OP <> 'INSERT' AND OLD.status IN ('reserved', 'checked_in');
    now_held boolean := TG_OP <> 'DELETE' AND NEW.status IN ('reserved', 'checked_in');
    change integer := now_held::integer - was_held::integer;
    placement placements := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
    IF change <> 0 THEN
        INSERT INTO capacity (org_id, unit_type, held) VALUES (placement.org_id, placement.unit_type, change)
        ON CONFLICT (org_id, unit_type) DO UPDATE SET held = capacity.held + change;
        UPDATE beds SET held_by = CASE WHEN now_held THEN placement.referral_id END WHERE bed_id = placement.bed_id;
    END IF;
    RETURN NULL;
END $$;
