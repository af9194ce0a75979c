"""Consent's tables (asyncpg)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from events.care import CareLink
from events.consent import ConsentRecord, Directive
from events.referrals import OPEN, ReferralEvent, ReferralRequested, ReferralStatus
from services.kernel.db import Connection


async def latest_version(conn: Connection, directive_id: UUID) -> Any:
    """The directive's newest version row (locked for this transaction), or None."""
    return await conn.fetchrow(
        "SELECT version, survivor_id, directive, revoked_at FROM directives WHERE directive_id = $1"
        " ORDER BY version DESC LIMIT 1 FOR UPDATE",
        directive_id,
    )


async def add(conn: Connection, survivor_id: UUID, directive: Directive) -> None:
    await conn.execute("UPDATE directives SET superseded = true WHERE directive_id = $1", directive.directive_id)
    await conn.execute(
        "INSERT INTO directives (directive_id, version, survivor_id, directive, valid_until)"
        " VALUES ($1, $2, $3, $4, $5)",
        directive.directive_id,
        directive.version,
        survivor_id,
        directive.model_dump(mode="json"),
        directive.valid_until,
    )


async def revoke(conn: Connection, directive_id: UUID, revoked_by: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE directives SET revoked_at = $2, revoked_by = $3 WHERE directive_id = $1 AND revoked_at IS NULL",
        directive_id,
        at,
        revoked_by,
    )


async def records(conn: Connection, survivor_id: UUID) -> list[ConsentRecord]:
    """Every version of the survivor's directives, as ``decide()`` takes them."""
    rows = await conn.fetch("SELECT directive, revoked_at FROM directives WHERE survivor_id = $1", survivor_id)
    return [ConsentRecord(Directive.model_validate(r["directive"]), r["revoked_at"]) for r in rows]


async def claim_due(conn: Connection, now: datetime, limit: int = 500) -> list[Any]:
    """Directives whose period is over and whose expiry is not yet published; locked, skipping others' claims."""
    return list(
        await conn.fetch(
            "SELECT directive_id, version, survivor_id, directive FROM directives"
            " WHERE NOT superseded AND revoked_at IS NULL AND expired_at IS NULL AND valid_until <= $1"
            " ORDER BY valid_until LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            limit,
        )
    )


async def mark_expired(conn: Connection, directive_id: UUID, version: int, at: datetime) -> None:
    await conn.execute(
        "UPDATE directives SET expired_at = $3 WHERE directive_id = $1 AND version = $2",
        directive_id,
        version,
        at,
    )


async def next_due(conn: Connection) -> datetime | None:
    due: datetime | None = await conn.fetchval(
        "SELECT min(valid_until) FROM directives WHERE NOT superseded AND revoked_at IS NULL AND expired_at IS NULL"
    )
    return due


async def remember_survivor(conn: Connection, survivor_id: UUID, is_minor: bool, screener_org: str) -> None:
    await conn.execute(
        "INSERT INTO survivors (survivor_id, is_minor, screener_org) VALUES ($1, $2, $3)"
        " ON CONFLICT (survivor_id) DO UPDATE SET is_minor = survivors.is_minor OR excluded.is_minor,"
        " screener_org = coalesce(survivors.screener_org, excluded.screener_org)",
        survivor_id,
        is_minor,
        screener_org,
    )


async def survivor(conn: Connection, survivor_id: UUID) -> Any:
    """What consent rules need of the survivor (``is_minor``, ``screener_org``), or None if not known yet."""
    return await conn.fetchrow("SELECT is_minor, screener_org FROM survivors WHERE survivor_id = $1", survivor_id)


async def care_links(conn: Connection, survivor_id: UUID) -> list[CareLink]:
    rows = await conn.fetch(
        "SELECT referrer_org, recipient_org, open, accepted, closed_at FROM care_links WHERE survivor_id = $1",
        survivor_id,
    )
    return [CareLink(r["referrer_org"], r["recipient_org"], r["open"], r["accepted"], r["closed_at"]) for r in rows]


async def follow_referral(conn: Connection, event: ReferralEvent, at: datetime) -> None:
    """Keep the care link of ``event``'s referral: open, accepted at some point, and when it closed."""
    status = event.status
    if isinstance(event, ReferralRequested):
        await conn.execute(
            "INSERT INTO care_links (referral_id, survivor_id, referrer_org, recipient_org, open)"
            " VALUES ($1, $2, $3, $4, true) ON CONFLICT DO NOTHING",
            event.referral_id, event.survivor_id, event.referrer_org, event.recipient_org,
        )  # fmt: skip
        return
    is_open = status in OPEN
    await conn.execute(
        "UPDATE care_links SET open = $2, accepted = accepted OR $3,"
        " closed_at = CASE WHEN $2 THEN NULL ELSE coalesce(closed_at, $4) END WHERE referral_id = $1",
        event.referral_id, is_open, status is ReferralStatus.ACCEPTED, at,
    )  # fmt: skip


async def purge(conn: Connection, survivor_id: UUID) -> None:
    await conn.execute("DELETE FROM directives WHERE survivor_id = $1", survivor_id)
    await conn.execute("DELETE FROM care_links WHERE survivor_id = $1", survivor_id)
    await conn.execute("DELETE FROM survivors WHERE survivor_id = $1", survivor_id)
