"""The provider side of the referral protocol, shared by shelter, legal aid, health and employment.

Protocol plumbing, like the inbox: it follows the referrals addressed to one provider service
(by referral type: the others are passed over by their ``ce_referraltype`` header), keeps their
state in ``referrals_in``, remembers the coded facts about each survivor that matching needs (each
``referral.requested`` carries them, sealed, so a provider needs nothing from identification but
erasures), and turns a provider's decision into the referral command that the referrals service
carries out. What a provider decides stays in its own service.

>>> from services.kernel.crypto import Keyring, decode_master_key, new_master_key
>>> async def offer_a_bed(event: ReferralRequested, row: Any, uow: UnitOfWork) -> None: ...
>>> follower = ReferralFollower(frozenset({ReferralType.EMERGENCY_SHELTER}), source="haven/shelter")
>>> keyring = Keyring(decode_master_key(new_master_key()))
>>> handlers = dict(follower.handlers(on_requested=offer_a_bed, keyring=keyring))
>>> [t for t in sorted(handlers) if not t.startswith("referral.")]  # and every referral event
['survivor.erased']
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from events.consent import Category
from events.envelope import Envelope
from events.errors import DomainError
from events.identification import Statistics, SurvivorErased
from events.needs import ReferralType
from events.referrals import (
    EVENT_STATUS,
    AcceptReferral,
    ReferralAction,
    ReferralEvent,
    ReferralRequested,
    StartReferral,
)
from services.kernel.consumer import Handler, UnitOfWork, WaitForSurvivor
from services.kernel.crypto import Keyring, open_or_none
from services.kernel.db import Connection
from services.kernel.service import on

OnRequested = Callable[[ReferralRequested, Any, UnitOfWork], Awaitable[None]]
OnClosed = Callable[[ReferralEvent, Any, UnitOfWork], Awaitable[None]]
OnErased = Callable[[SurvivorErased, UnitOfWork], Awaitable[None]]


@dataclass(frozen=True)
class ReferralFollower:
    """Follows the referrals of ``referral_types``; ``source`` names the service in what it sends."""

    referral_types: frozenset[ReferralType]
    source: str

    def handlers(
        self,
        *,
        on_requested: OnRequested | None = None,
        on_closed: OnClosed | None = None,
        on_erased: OnErased | None = None,
        keyring: Keyring,
    ) -> list[tuple[str, Handler]]:
        """Handlers for every referral event (facts noted from each request), plus erasure.

        ``on_requested`` sees each new referral of our types; ``on_closed`` each that leaves the open
        states (to release what it held); ``on_erased`` purges the service's own rows.
        """

        async def requested(event: ReferralRequested, uow: UnitOfWork) -> None:
            if event.referral_type not in self.referral_types:
                return
            await note_facts(event, uow, keyring=keyring)
            row = await uow.conn.fetchrow(
                """
                INSERT INTO referrals_in (referral_id, survivor_id, referrer_org, recipient_org, referral_type, status)
                VALUES ($1, $2, $3, $4, $5, 'requested') ON CONFLICT (referral_id) DO NOTHING RETURNING *
                """,
                event.referral_id, event.survivor_id, event.referrer_org, event.recipient_org, event.referral_type,
            )  # fmt: skip
            if row is not None and on_requested is not None:
                await on_requested(event, row, uow)

        async def moved(event: ReferralEvent, uow: UnitOfWork) -> None:
            row = await uow.conn.fetchrow(
                "UPDATE referrals_in SET status = $2, updated_at = now() WHERE referral_id = $1 RETURNING *",
                event.referral_id,
                EVENT_STATUS[type(event)],
            )
            if row is not None and on_closed is not None and row["status"] not in OPEN_TEXT:
                await on_closed(event, row, uow)

        moves = [on(event_type, moved) for event_type in EVENT_STATUS if event_type is not ReferralRequested]

        async def erased(event: SurvivorErased, uow: UnitOfWork) -> None:
            await forget_survivor(event, uow)
            if on_erased is not None:
                await on_erased(event, uow)

        return [
            on(ReferralRequested, requested),
            *moves,
            on(SurvivorErased, erased),
        ]

    def only(self) -> dict[str, frozenset[str]]:
        """For ``ServiceSpec.only``: the referral events of other types are passed over by their header."""
        return {"ce_referraltype": frozenset(t.value for t in self.referral_types)}

    def command(self, action: type[ReferralAction], referral: Any, **fields: Any) -> Envelope:
        """The referral command ``action`` for ``referral``, made by its recipient."""
        return Envelope.new(
            action(
                referral_id=referral["referral_id"],
                survivor_id=referral["survivor_id"],
                actor_org=referral["recipient_org"],
                **fields,
            ),
            source=self.source,
        )

    def taking_on(self, referral: Any) -> tuple[Envelope, Envelope]:
        """Accept and start: what a provider sends when it takes a referral on at once."""
        return self.command(AcceptReferral, referral), self.command(StartReferral, referral)


def require_awaiting_answer(referral: Any) -> None:
    """Refuse to take on a referral that has already been answered (or closed)."""
    if referral["status"] not in ("requested", "received"):
        raise DomainError("not_awaiting_answer", f"the referral is {referral['status']}", field="referral_id")


OPEN_TEXT = frozenset({"requested", "received", "accepted", "in_progress", "on_hold"})


async def referral_for(conn: Connection, referral_id: UUID, actor_org: str, *, survivor_id: UUID | None = None) -> Any:
    """The referral addressed to ``actor_org``, locked for this transaction; refused otherwise.

    With ``survivor_id`` (a command that takes a referral on), one that has not reached this service yet parks the
    command until it does: a referral is ``received`` as it is requested, so its recipient may act on it before
    this service has read the request (the gateway refuses ids it has never shown the recipient)."""
    row = await conn.fetchrow("SELECT * FROM referrals_in WHERE referral_id = $1 FOR UPDATE", referral_id)
    if row is None and survivor_id is not None:
        raise WaitForSurvivor(survivor_id)
    if row is None:
        raise DomainError("unknown_referral", "no such referral has reached this service", field="referral_id")
    if row["recipient_org"] != actor_org:
        raise DomainError("not_the_recipient", f"{actor_org} is not this referral's recipient", field="actor_org")
    return row


async def survivor_facts(conn: Connection, survivor_id: UUID) -> Any:
    return await conn.fetchrow("SELECT * FROM survivor_facts WHERE survivor_id = $1", survivor_id)


async def note_facts(event: ReferralRequested, uow: UnitOfWork, *, keyring: Keyring) -> None:
    """The coded facts matching uses, as the referral carries them, opened from the sealed statistics (unknown where
    they do not open). A referral written before it carried them leaves what is known as it was."""
    if event.is_minor is None and event.statistics is None:
        return
    stats = await open_or_none(keyring, uow.conn, event.survivor_id, Category.STATISTICS, event.statistics,
                               Statistics) or Statistics()  # fmt: skip
    await uow.conn.execute(
        "INSERT INTO survivor_facts VALUES ($1, $2, $3, $4, $5) ON CONFLICT (survivor_id) DO UPDATE SET"
        " is_minor = excluded.is_minor, age_band = excluded.age_band, gender = excluded.gender,"
        " disability = excluded.disability",
        event.survivor_id, bool(event.is_minor), stats.age_band, stats.gender, stats.disability,
    )  # fmt: skip


async def forget_survivor(event: SurvivorErased, uow: UnitOfWork) -> None:
    await uow.conn.execute("DELETE FROM referrals_in WHERE survivor_id = $1", event.survivor_id)
    await uow.conn.execute("DELETE FROM survivor_facts WHERE survivor_id = $1", event.survivor_id)
