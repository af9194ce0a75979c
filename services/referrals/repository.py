"""Referrals' tables (asyncpg)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from events.care import CareLink
from events.directory import CapacityChanged, CapacityStatus, Offer, Organisation
from events.needs import ReferralType
from events.referrals import ReferralRequested, ReferralStatus
from events.types import Sealed
from services.kernel import consent_copy
from services.kernel.db import Connection


async def insert(conn: Connection, event: ReferralRequested, root: UUID, status: ReferralStatus) -> None:
    await conn.execute(
        """
        INSERT INTO referrals (referral_id, survivor_id, referrer_org, recipient_org, referral_type, urgency,
                               purpose, categories, withheld, status, deadline, allow_reroute, parent_referral_id,
                               root_referral_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $14, $10, $11, $12, $13)
        """,
        event.referral_id, event.survivor_id, event.referrer_org, event.recipient_org, event.referral_type,
        event.urgency, event.purpose, sorted(event.categories), sorted(event.withheld), event.deadline,
        event.allow_reroute, event.parent_referral_id, root, status,
    )  # fmt: skip


async def lock(conn: Connection, referral_id: UUID) -> Any:
    """The referral's row, locked until the transaction ends: concurrent moves queue here."""
    return await conn.fetchrow("SELECT * FROM referrals WHERE referral_id = $1 FOR UPDATE", referral_id)


async def record_transition(
    conn: Connection,
    referral_id: UUID,
    previous: ReferralStatus | None,
    status: ReferralStatus,
    actor: str,
    reason: str | None,
    note: Sealed | None,
    at: datetime,
) -> None:
    await conn.execute(
        "UPDATE referrals SET status = $2, updated_at = $3, accepted_ever = accepted_ever OR $2 = 'accepted'"
        " WHERE referral_id = $1",
        referral_id, status, at,
    )  # fmt: skip
    await add_transition(conn, referral_id, previous, status, actor, reason, note, at)


async def add_transition(
    conn: Connection,
    referral_id: UUID,
    previous: ReferralStatus | None,
    status: ReferralStatus,
    actor: str,
    reason: str | None,
    note: Sealed | None,
    at: datetime,
) -> None:
    """The move's line in the referral's history (``record_transition`` also moves the referral itself)."""
    await conn.execute(
        """
        INSERT INTO transitions (referral_id, seq, from_status, to_status, actor_org, reason, note, at)
        SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4, $5, $6, $7 FROM transitions WHERE referral_id = $1
        """,
        referral_id, previous, status, actor, reason, note.model_dump_json() if note else None, at,
    )  # fmt: skip


async def tried_in_chain(conn: Connection, root: UUID) -> set[str]:
    rows = await conn.fetch("SELECT recipient_org FROM referrals WHERE root_referral_id = $1", root)
    return {r["recipient_org"] for r in rows}


async def open_referrals(conn: Connection, survivor_id: UUID, open_states: frozenset[ReferralStatus]) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT * FROM referrals WHERE survivor_id = $1 AND status = ANY($2::text[]) FOR UPDATE",
            survivor_id,
            list(open_states),
        )
    )


async def organisation(conn: Connection, org_id: str) -> Organisation | None:
    profile = await conn.fetchval("SELECT profile FROM organisations WHERE org_id = $1", org_id)
    return Organisation.model_validate(profile) if profile is not None else None


async def home(conn: Connection, survivor_id: UUID) -> frozenset[str]:
    """The survivor's own jurisdictions: those of the organisation that screened them (empty if not known)."""
    found = await conn.fetchval(
        "SELECT o.jurisdictions FROM survivors s JOIN organisations o ON o.org_id = s.screener_org"
        " WHERE s.survivor_id = $1",
        survivor_id,
    )
    return frozenset(found or ())


async def save_organisation(conn: Connection, org: Organisation) -> None:
    await conn.execute(
        """
        INSERT INTO organisations (org_id, org_type, services, jurisdictions, profile) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (org_id) DO UPDATE SET org_type = excluded.org_type, services = excluded.services,
            jurisdictions = excluded.jurisdictions, profile = excluded.profile
        """,
        org.org_id, org.org_type, sorted(org.services), sorted(org.jurisdictions), org.model_dump(mode="json"),
    )  # fmt: skip


async def save_capacity(conn: Connection, change: CapacityChanged) -> None:
    await conn.execute(
        """
        INSERT INTO capacity (org_id, service, unit_type, status, available) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (org_id, service, unit_type) DO UPDATE
            SET status = excluded.status, available = excluded.available, updated_at = now()
        """,
        change.org_id, change.service, change.unit_type or "-", change.status, change.available,
    )  # fmt: skip


async def offers(conn: Connection, service: ReferralType, jurisdiction: str | None) -> list[tuple[Organisation, Offer]]:
    """Every organisation offering ``service`` (in ``jurisdiction``), with its best current capacity."""
    rows = await conn.fetch(
        """
        SELECT o.profile,
               coalesce(c.status, 'additional-assessment-required') AS status,
               coalesce(c.available, 0) AS available
        FROM organisations o
        LEFT JOIN LATERAL (
            SELECT status, available FROM capacity
            WHERE org_id = o.org_id AND service = $1
            ORDER BY (status = 'capacity') DESC, available DESC LIMIT 1
        ) c ON true
        WHERE $1 = ANY(o.services) AND ($2::text IS NULL OR $2 = ANY(o.jurisdictions))
        """,
        service,
        jurisdiction,
    )
    found = []
    for r in rows:
        org = Organisation.model_validate(r["profile"])
        found.append((org, Offer(org.org_id, org.name, CapacityStatus(r["status"]), r["available"])))
    return found


consent_records = consent_copy.records
save_directive = consent_copy.save
revoke_directive = consent_copy.revoke


async def save_survivor(
    conn: Connection, survivor_id: UUID, age_band: str, gender: str, screener_org: str, is_minor: bool,
    statistics: Sealed | None,
) -> None:  # fmt: skip
    await conn.execute(
        "INSERT INTO survivors (survivor_id, age_band, gender, screener_org, is_minor, statistics)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (survivor_id) DO UPDATE SET age_band = excluded.age_band, gender = excluded.gender,"
        " screener_org = coalesce(survivors.screener_org, excluded.screener_org), is_minor = excluded.is_minor,"
        " statistics = excluded.statistics",
        survivor_id, age_band, gender, screener_org, is_minor,
        statistics.model_dump(mode="json") if statistics is not None else None,
    )  # fmt: skip


async def survivor(conn: Connection, survivor_id: UUID) -> Any:
    """The coded facts re-routing matches on, who screened the survivor, and what a referral carries for matching
    (``is_minor``, the sealed ``statistics``); None if not known yet."""
    return await conn.fetchrow(
        "SELECT age_band, gender, screener_org, is_minor, statistics FROM survivors WHERE survivor_id = $1", survivor_id
    )


def matching_facts(survivor: Any) -> dict[str, Any]:
    """What a ``referral.requested`` carries of the survivor for its recipient's matching."""
    if survivor is None:
        return {}
    sealed = survivor["statistics"]
    return {"is_minor": survivor["is_minor"], "statistics": Sealed.model_validate(sealed) if sealed else None}


async def care_links(conn: Connection, survivor_id: UUID) -> list[CareLink]:
    """The survivor's referrals as the care-team rule sees them (a closed referral closed at its last move)."""
    rows = await conn.fetch(
        "SELECT referrer_org, recipient_org, status, accepted_ever, updated_at FROM referrals WHERE survivor_id = $1",
        survivor_id,
    )
    return [
        CareLink.of_referral(r["referrer_org"], r["recipient_org"], r["status"], r["accepted_ever"], r["updated_at"])
        for r in rows
    ]


async def purge(conn: Connection, survivor_id: UUID) -> None:
    await conn.execute("DELETE FROM referrals WHERE survivor_id = $1", survivor_id)
    await consent_copy.purge(conn, survivor_id)
    await conn.execute("DELETE FROM survivors WHERE survivor_id = $1", survivor_id)
