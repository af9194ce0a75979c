"""The care team as the gateway sees it (``events.care`` over its read model): who may write about a
survivor and read their ledger. The owning services decide again; this refuses early and hides
whether a survivor exists from everyone else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from events.care import CareLink, in_care_team
from services.kernel.db import Connection, Pool

LINKS = """
SELECT s.screener_org, r.referrer_org, r.recipient_org, r.status, r.accepted_ever, r.updated_at
  FROM gateway.survivors s LEFT JOIN gateway.referrals r USING (survivor_id)
 WHERE s.survivor_id = $1"""


def _links(rows: list[Any]) -> list[CareLink]:
    return [
        CareLink.of_referral(r["referrer_org"], r["recipient_org"], r["status"], r["accepted_ever"], r["updated_at"])
        for r in rows
        if r["referrer_org"] is not None
    ]


async def is_member(db: Pool | Connection, survivor_id: UUID, org_id: str, grace: timedelta) -> bool:
    """Whether ``org_id`` is in the care team of ``survivor_id`` now; False for a survivor the gateway does not know."""
    rows = list(await db.fetch(LINKS, survivor_id))
    if not rows:
        return False
    return in_care_team(org_id, rows[0]["screener_org"], _links(rows), datetime.now(UTC), grace)
