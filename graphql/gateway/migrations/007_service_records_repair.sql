-- Provider records projected before this fix hold their state as a JSON array: each merge appended the new part
-- as JSON text (encoded twice) instead of merging an object, so every pathway read of them failed. Fold each such
-- array back into the one object it meant, in order, its milestones appended.
DO $$
DECLARE
    r      record;
    elem   jsonb;
    part   jsonb;
    item   jsonb;
    merged jsonb;
    stones jsonb;
BEGIN
    FOR r IN SELECT record_id, state FROM service_records WHERE jsonb_typeof(state) = 'array' LOOP
        merged := '{}'::jsonb;
        stones := '[]'::jsonb;
        FOR elem IN SELECT value FROM jsonb_array_elements(r.state) WITH ORDINALITY AS e(value, n) ORDER BY n LOOP
            part := CASE WHEN jsonb_typeof(elem) = 'string' THEN (elem #>> '{}')::jsonb ELSE elem END;
            CONTINUE WHEN jsonb_typeof(part) <> 'object';
            IF part ? 'milestones' THEN
                FOR item IN SELECT value FROM jsonb_array_elements(part -> 'milestones') WITH ORDINALITY AS m(value, n)
                            ORDER BY n LOOP
                    item := CASE WHEN jsonb_typeof(item) = 'string' THEN (item #>> '{}')::jsonb ELSE item END;
                    stones := stones || CASE WHEN jsonb_typeof(item) = 'array' THEN item ELSE jsonb_build_array(item) END;
                END LOOP;
            END IF;
            merged := merged || (part - 'milestones');
        END LOOP;
        UPDATE service_records SET state = merged || jsonb_build_object('milestones', stones)
         WHERE record_id = r.record_id;
    END LOOP;
END
$$;
