"""What partners ask of referrals: who has capacity (anonymously), my referrals' outcomes, a chain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from events.consent import Category, Party, Purpose, decide
from events.directory import Offer, Seeker, rank, serves
from events.needs import ReferralType
from services.kernel.db import Connection
from services.referrals import repository


async def find_providers(
    conn: Connection, service: ReferralType, *, jurisdiction: str | None = None, seeker: Seeker | None = None
) -> list[Offer]:
    """An anonymous capacity query: no survivor, no consent needed; eligible providers, best first."""
    seeker = seeker or Seeker()
    return rank(offer for org, offer in await repository.offers(conn, service, jurisdiction) if serves(org, seeker))


async def history(conn: Connection, referral_id: UUID) -> list[Any]:
    """Every transition of the referral: who moved it, when, from what to what, and why."""
    return list(
        await conn.fetch(
            "SELECT seq, from_status, to_status, actor_org, reason, note, at FROM transitions"
            " WHERE referral_id = $1 ORDER BY seq",
            referral_id,
        )
    )


async def referrals_made_by(conn: Connection, referrer_org: str, limit: int = 100) -> list[Any]:
    """The referrer's referrals, newest first, each with its current state: the referrer always sees outcomes."""
    return list(
        await conn.fetch(
            "SELECT referral_id, survivor_id, recipient_org, referral_type, status, deadline, updated_at"
            " FROM referrals WHERE referrer_org = $1 ORDER BY updated_at DESC LIMIT $2",
            referrer_org,
            limit,
        )
    )


@dataclass(frozen=True)
class Chain:
    visible: list[Any]
    hidden: int


async def chain(conn: Connection, referral_id: UUID, viewer: Party, at: datetime) -> Chain:
    """The referral's whole chain (re-routes and onward referrals) as far as consent lets ``viewer`` see.

    A viewer sees the links it is party to; others only where the survivor's consent permits it
    the case status for service delivery. What it may not see is only counted.
    """
    root = await conn.fetchval("SELECT root_referral_id FROM referrals WHERE referral_id = $1", referral_id)
    rows = await conn.fetch(
        "SELECT referral_id, parent_referral_id, survivor_id, referrer_org, recipient_org, referral_type, status"
        " FROM referrals WHERE root_referral_id = $1 ORDER BY created_at",
        root,
    )
    if not rows:
        return Chain([], 0)
    records = await repository.consent_records(conn, rows[0]["survivor_id"])
    may_see_status = decide(records, viewer, Category.CASE_STATUS, Purpose.SERVICE_DELIVERY, at).permitted
    visible = [r for r in rows if viewer.org_id in (r["referrer_org"], r["recipient_org"]) or may_see_status]
    return Chain(visible, len(rows) - len(visible))
