"""Consent's handlers: commands from partners, and identification's events it keeps up with."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from events.care import CARE_GRACE, require_member
from events.consent import (
    ConsentExpired,
    ConsentGranted,
    ConsentRevoked,
    Directive,
    GrantConsent,
    RevokeConsent,
)
from events.envelope import Envelope
from events.errors import DomainError
from events.identification import SurvivorErased, SurvivorIdentified
from events.referrals import ReferralEvent
from services.consent import domain, repository
from services.kernel import outbox
from services.kernel.consumer import UnitOfWork, WaitForSurvivor
from services.kernel.db import Pool
from services.kernel.lifecycle import wait_any

SOURCE = "haven/consent"
GRANTS_CHANNEL = "haven_consent_granted"
Clock = Callable[[], datetime]
log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


async def _member(
    uow: UnitOfWork, survivor_id: Any, org_id: str, now: datetime, grace: timedelta, *, field: str
) -> Any:
    """The survivor's row, once ``org_id`` is shown to be in their care team; waits for an unknown survivor."""
    survivor = await repository.survivor(uow.conn, survivor_id)
    if survivor is None:
        raise WaitForSurvivor(survivor_id)
    links = await repository.care_links(uow.conn, survivor_id)
    require_member(org_id, survivor["screener_org"], links, now, grace, field=field)
    return survivor


async def grant_consent(
    command: GrantConsent, uow: UnitOfWork, *, clock: Clock = utcnow, grace: timedelta = CARE_GRACE
) -> None:
    """Record a directive (or its next version) from a care team member; publish ``consent.granted``."""
    now = clock()
    survivor = await _member(uow, command.survivor_id, command.directive.recorded_by, now, grace,
                             field="directive.recorded_by")  # fmt: skip
    latest = await repository.latest_version(uow.conn, command.directive.directive_id)
    if latest is not None and latest["survivor_id"] != command.survivor_id:
        raise DomainError(
            "directive_of_another_survivor", "this directive id belongs to another survivor",
            field="directive.directive_id",
        )  # fmt: skip
    if latest is not None and domain.restates(Directive.model_validate(latest["directive"]), command.directive):
        return  # the same grant sent again (its idempotency key): recorded once, answered again; a revocation stands
    directive = domain.check_grant(
        command.directive,
        latest_version=latest["version"] if latest is not None else None,
        survivor_is_minor=survivor["is_minor"],
        now=now,
    )
    await repository.add(uow.conn, command.survivor_id, directive)
    await uow.conn.execute(f"NOTIFY {GRANTS_CHANNEL}")  # wakes the expiry task at commit: it may fall due sooner
    await uow.emit(Envelope.new(ConsentGranted(survivor_id=command.survivor_id, directive=directive), source=SOURCE))


async def revoke_consent(
    command: RevokeConsent, uow: UnitOfWork, *, clock: Clock = utcnow, grace: timedelta = CARE_GRACE
) -> None:
    """Revoke a directive from now on, for any care team member; revoking twice changes nothing."""
    at = clock()
    await _member(uow, command.survivor_id, command.revoked_by, at, grace, field="revoked_by")
    latest = await repository.latest_version(uow.conn, command.directive_id)
    if latest is None or latest["survivor_id"] != command.survivor_id:
        raise DomainError("unknown_directive", "no such directive for this survivor", field="directive_id")
    if latest["revoked_at"] is not None:
        return
    await repository.revoke(uow.conn, command.directive_id, command.revoked_by, at)
    directive = Directive.model_validate(latest["directive"])
    await uow.emit(
        Envelope.new(
            ConsentRevoked(
                survivor_id=command.survivor_id,
                directive_id=command.directive_id,
                grantee=directive.grantee,
                revoked_by=command.revoked_by,
                revoked_at=at,
            ),
            source=SOURCE,
        )
    )


async def follow_referral(event: ReferralEvent, uow: UnitOfWork, *, clock: Clock = utcnow) -> None:
    """Referrals make their parties members of the survivor's care team (for a while after they close)."""
    await repository.follow_referral(uow.conn, event, clock())


async def note_survivor(event: SurvivorIdentified, uow: UnitOfWork) -> None:
    """Remember the recorded age and the screening organisation; the kernel then runs the grants that waited."""
    await repository.remember_survivor(uow.conn, event.survivor_id, event.is_minor, event.screener_org)


async def purge_survivor(event: SurvivorErased, uow: UnitOfWork) -> None:
    await repository.purge(uow.conn, event.survivor_id)


async def publish_expiries(pool: Pool, *, clock: Clock = utcnow) -> int:
    """Publish ``consent.expired`` for every directive whose period is over; return how many."""
    async with pool.acquire() as conn, conn.transaction():
        now = clock()
        due = await repository.claim_due(conn, now)
        for row in due:
            directive = Directive.model_validate(row["directive"])
            await repository.mark_expired(conn, row["directive_id"], row["version"], now)
            await outbox.write(
                conn,
                Envelope.new(
                    ConsentExpired(
                        survivor_id=row["survivor_id"],
                        directive_id=row["directive_id"],
                        grantee=directive.grantee,
                        expired_at=directive.valid_until,
                    ),
                    source=SOURCE,
                ),
            )
    return len(due)


class DirectiveExpiry:
    """Publishes consent expiries: at start (catching up after downtime), at each deadline, and after each grant
    (``wake`` hears ``GRANTS_CHANNEL`` on the process's LISTEN connection: a new grant may fall due sooner)."""

    def __init__(self, *, max_sleep: float = 60.0) -> None:
        self.max_sleep = max_sleep
        self._granted = asyncio.Event()

    def wake(self, *_: object) -> None:
        self._granted.set()

    async def run(self, pool: Pool, stop: asyncio.Event) -> None:
        """Background task: until ``stop``."""
        while not stop.is_set():
            self._granted.clear()
            if published := await publish_expiries(pool):
                log.info("published %d consent expiries", published)
                continue
            async with pool.acquire() as conn:
                due = await repository.next_due(conn)
            wait = self.max_sleep if due is None else (due - utcnow()).total_seconds()
            await wait_any(stop, self._granted, timeout=min(max(wait, 0.01), self.max_sleep))
