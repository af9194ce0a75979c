"""Erased survivors: remembered by id in every service, so that nothing more is accepted about them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from events.errors import DomainError
from services.kernel.db import Connection

SURVIVOR_ERASED = "survivor_erased"


async def remember(conn: Connection, survivor_id: UUID) -> None:
    """Record that ``survivor_id`` was erased (the id is pseudonymous: it carries no personal data)."""
    await conn.execute("INSERT INTO erased_survivors (survivor_id) VALUES ($1) ON CONFLICT DO NOTHING", survivor_id)


async def was_erased(conn: Connection, survivor_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM erased_survivors WHERE survivor_id = $1", survivor_id))


async def refuse_if_erased(conn: Connection, command: Any) -> None:
    """Refuse ``command`` with ``survivor_erased`` when the survivor it names was erased."""
    survivor_id = getattr(command, "survivor_id", None)
    if survivor_id is None:
        return
    if await was_erased(conn, survivor_id):
        raise DomainError(
            SURVIVOR_ERASED, "this survivor's data was erased; nothing more is accepted about them", field="survivor_id"
        )
