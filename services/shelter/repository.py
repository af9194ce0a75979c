"""Shelter's tables (asyncpg)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from events.shelter import UnitType
from services.kernel.db import Connection

ACTIVE = ("reserved", "checked_in")


async def set_beds(conn: Connection, org_id: str, unit: UnitType, count: int) -> None:
    """Add beds up to ``count``, or retire free ones down to it; occupied beds are never retired."""
    await conn.execute("INSERT INTO sites (org_id) VALUES ($1) ON CONFLICT DO NOTHING", org_id)
    have = await conn.fetchval(
        "SELECT count(*) FROM beds WHERE org_id = $1 AND unit_type = $2 AND NOT retired", org_id, unit
    )
    if count > have:
        await conn.execute(
            "INSERT INTO beds (org_id, unit_type) SELECT $1, $2 FROM generate_series(1, $3)", org_id, unit, count - have
        )
    elif count < have:
        await conn.execute(
            """
            UPDATE beds SET retired = true WHERE bed_id IN (
                SELECT bed_id FROM beds WHERE org_id = $1 AND unit_type = $2 AND NOT retired AND held_by IS NULL
                ORDER BY bed_id DESC LIMIT $3)
            """,
            org_id, unit, have - count,
        )  # fmt: skip


async def claim_free_bed(conn: Connection, org_id: str, unit: UnitType) -> int | None:
    """A free bed, locked for this transaction; a bed another transaction is taking is skipped. ``held_by`` is kept by
    the placements trigger (migration 004); the unique index on active placements per bed stays the guarantee."""
    bed: int | None = await conn.fetchval(
        """
        SELECT bed_id FROM beds WHERE org_id = $1 AND unit_type = $2 AND NOT retired AND held_by IS NULL
        ORDER BY bed_id LIMIT 1 FOR UPDATE SKIP LOCKED
        """,
        org_id, unit,
    )  # fmt: skip
    return bed


async def free_beds(conn: Connection, org_id: str) -> dict[UnitType, int]:
    """Free beds per unit type, from the counter the triggers keep (migration 003): one row per unit, not every bed."""
    rows = await conn.fetch(
        "SELECT unit_type, beds - held AS free FROM capacity WHERE org_id = $1 AND beds > 0", org_id
    )
    return {UnitType(r["unit_type"]): r["free"] for r in rows}


async def reserve(
    conn: Connection, referral_id: UUID, survivor_id: UUID, org_id: str, bed: int, unit: UnitType
) -> None:
    await conn.execute(
        "INSERT INTO placements (referral_id, survivor_id, org_id, bed_id, unit_type, status)"
        " VALUES ($1, $2, $3, $4, $5, 'reserved')",
        referral_id, survivor_id, org_id, bed, unit,
    )  # fmt: skip


async def placement(conn: Connection, referral_id: UUID) -> Any:
    return await conn.fetchrow("SELECT * FROM placements WHERE referral_id = $1 FOR UPDATE", referral_id)


async def move(conn: Connection, referral_id: UUID, status: str, destination: str | None = None) -> None:
    stamp = {"checked_in": "checked_in_at", "checked_out": "checked_out_at"}.get(status)
    extra = f", {stamp} = now()" if stamp else ""
    await conn.execute(
        f"UPDATE placements SET status = $2, destination = coalesce($3, destination){extra} WHERE referral_id = $1",
        referral_id, status, destination,
    )  # fmt: skip


async def address(conn: Connection, org_id: str) -> str | None:
    found: str | None = await conn.fetchval("SELECT address FROM sites WHERE org_id = $1", org_id)
    return found


async def set_address(conn: Connection, org_id: str, text: str) -> None:
    await conn.execute(
        "INSERT INTO sites (org_id, address) VALUES ($1, $2) ON CONFLICT (org_id) DO UPDATE SET address = $2",
        org_id,
        text,
    )


async def purge(conn: Connection, survivor_id: UUID) -> None:
    await conn.execute("DELETE FROM placements WHERE survivor_id = $1", survivor_id)
