-- Counting and claiming free beds asks "does this bed have an active placement?" once per bed. The
-- partial unique index cannot answer that for a status list passed as a parameter, so a cached plan
-- scanned all placements for every bed (beds × placements per referral). These answer it directly.
CREATE INDEX placements_by_bed ON placements (bed_id, status);
CREATE INDEX placements_by_org ON placements (org_id, status);
