"""A service's own copy of survivors' consent, projected from the consent topic, as ``decide()`` takes it.

The table is ``consent_directives`` in the service's schema, made by the ``consent_copy`` migrations (a service
lists them in its ``migrations/shared.txt``; the referrals service made its own, of the same shape, before them).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from events.consent import ConsentRecord, Directive
from services.kernel.db import Connection


async def records(conn: Connection, survivor_id: UUID) -> list[ConsentRecord]:
    rows = await conn.fetch("SELECT directive, revoked_at FROM consent_directives WHERE survivor_id = $1", survivor_id)
    return [ConsentRecord(Directive.model_validate(r["directive"]), r["revoked_at"]) for r in rows]


async def save(conn: Connection, survivor_id: UUID, directive: Directive) -> None:
    await conn.execute(
        "INSERT INTO consent_directives (survivor_id, directive_id, version, directive) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (directive_id, version) DO NOTHING",
        survivor_id, directive.directive_id, directive.version, directive.model_dump(mode="json"),
    )  # fmt: skip


async def revoke(conn: Connection, directive_id: UUID, at: datetime) -> None:
    await conn.execute(
        "UPDATE consent_directives SET revoked_at = $2 WHERE directive_id = $1 AND revoked_at IS NULL",
        directive_id,
        at,
    )


async def purge(conn: Connection, survivor_id: UUID) -> None:
    await conn.execute("DELETE FROM consent_directives WHERE survivor_id = $1", survivor_id)
