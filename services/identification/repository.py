"""Identification's tables (asyncpg)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from events.identification import Need, RecordScreening
from services.kernel.db import Connection


async def screening_by_key(conn: Connection, screener_org: str, idempotency_key: str) -> Any:
    """The screening already recorded under this idempotency key, locked for this transaction."""
    return await conn.fetchrow(
        "SELECT screening_id, survivor_id, command FROM screenings"
        " WHERE screener_org = $1 AND idempotency_key = $2 FOR UPDATE",
        screener_org,
        idempotency_key,
    )


async def record(conn: Connection, command: RecordScreening, needs: tuple[Need, ...]) -> bool:
    """Store the survivor (if new) and the screening; False if another transaction took the key first."""
    await conn.execute(
        "INSERT INTO survivors (survivor_id, is_minor) VALUES ($1, $2)"
        " ON CONFLICT (survivor_id) DO UPDATE SET is_minor = survivors.is_minor OR excluded.is_minor",
        command.survivor_id,
        command.is_minor,
    )
    inserted = await conn.fetchval(
        "INSERT INTO screenings (screening_id, survivor_id, screener_org, idempotency_key, command, profile, needs)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (screener_org, idempotency_key) DO NOTHING"
        " RETURNING true",
        command.screening_id,
        command.survivor_id,
        command.screener_org,
        command.idempotency_key,
        clear_parts(command),
        command.profile.model_dump(mode="json"),
        [n.model_dump(mode="json") for n in needs],
    )
    return bool(inserted)


def clear_parts(command: RecordScreening) -> dict[str, Any]:
    return command.model_dump(mode="json", exclude={"profile"})


async def survivor_known(conn: Connection, survivor_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM survivors WHERE survivor_id = $1", survivor_id))


async def purge(conn: Connection, survivor_id: UUID) -> None:
    """Delete every row about the survivor (the screenings go with the survivor)."""
    await conn.execute("DELETE FROM survivors WHERE survivor_id = $1", survivor_id)
