"""Every command gets an answer: pending, then applied or refused."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime
from enum import Enum
from typing import Annotated, Any
from uuid import UUID, uuid4

import strawberry

from events.base import EventData
from events.envelope import Envelope
from events.identification import RecordScreening
from events.referrals import (
    RequestReferral,
)
from events.statistics import ReleaseStatistics
from gateway.api.base import SOURCE, Info, camel, fail, principal, survivor_uuid
from gateway.auth import Principal
from gateway.projection import OUTCOMES_CHANNEL
from services.kernel import outbox
from services.kernel.db import Connection

MAX_WAIT_MS = 10_000


Wait = Annotated[
    int | None,
    strawberry.argument(
        description="Milliseconds (at most 10000) to wait for the owning service's decision: the answer's outcome "
        "is then APPLIED or REFUSED if it came in time, PENDING if not (ask command(id) or follow commandOutcomes). "
        "A screening or referral APPLIED within the wait can already be read and acted on through this API."
    ),
]

IdempotencyKey = Annotated[
    str | None,
    strawberry.argument(
        description="Your key for this command (8 to 100 characters). Sent again after a lost answer with the same "
        "key, it names the same referral or directive, and Haven records it once: the answer is the first one's."
    ),
]


def keyed(info: Info, kind: str, who: Principal, key: str | None, *scope: str) -> UUID:
    """The id a command with ``key`` creates: the same for every retry of it, a fresh one without a key."""
    if key is None:
        return uuid4()
    if not 8 <= len(key) <= 100:
        raise fail("BAD_INPUT", "idempotencyKey: between 8 and 100 characters", field="idempotencyKey")
    return info.context["keyring"].pseudonym(kind, who.org_id, *scope, key)


@strawberry.enum(description="What became of a command.")
class CommandStatus(Enum):
    PENDING = "pending"
    APPLIED = "applied"
    REFUSED = "refused"


@strawberry.type(description="The owning service's decision on one of your commands.")
class CommandOutcome:
    command_id: strawberry.ID
    command_type: str
    status: CommandStatus
    code: str | None = strawberry.field(description="Why it was refused: a stable code (see the error catalogue).")
    field: str | None = strawberry.field(description="The input field at fault (e.g. directive.validUntil), if any.")
    message: str | None
    at: datetime = strawberry.field(description="When it was decided, or sent while it is pending.")

    @classmethod
    def of(cls, r: Any) -> CommandOutcome:
        return cls(command_id=strawberry.ID(str(r["command_id"])), command_type=r["command_type"],
                   status=CommandStatus(r["status"]), code=r["code"], field=r["field"] and camel(r["field"]),
                   message=r["message"],
                   at=r["decided_at"] or r["sent_at"])  # fmt: skip


def check_wait(wait: int | None) -> None:
    if wait is not None and not 0 <= wait <= MAX_WAIT_MS:
        raise fail("BAD_INPUT", f"wait: milliseconds from 0 to {MAX_WAIT_MS}", field="wait")


async def write_commands(conn: Connection, who: Principal, *envelopes: Envelope) -> None:
    """The commands into the outbox, and each one's outcome as pending: one statement (atomic by itself, or part of
    the caller's transaction when there is one)."""
    await conn.execute(
        f"WITH sent AS ({outbox.INSERT_ARRAYS}) INSERT INTO gateway.command_outcomes (command_id, org_id, command_type,"
        " made) SELECT i, $7, t, m FROM unnest($1::uuid[], $2::text[], $8::uuid[]) AS x(i, t, m)",
        *outbox.arrays(outbox.rows(*envelopes)), who.org_id, [made(e) for e in envelopes],
    )  # fmt: skip


async def send_commands(info: Info, *commands: EventData) -> list[Envelope]:
    envelopes = [Envelope.new(c, source=SOURCE) for c in commands]
    async with info.context["pool"].acquire() as conn:  # one statement: no transaction around it to open and close
        await write_commands(conn, principal(info), *envelopes)
    return envelopes


@strawberry.type
class Accepted:
    """The command is in the outbox and will reach its service; ``outcome`` says what the service decided."""

    command_id: strawberry.ID
    subject_id: strawberry.ID
    referral_id: strawberry.ID | None = strawberry.field(
        default=None, description="The new referral's id, for requestReferral: watch for it in your referrals."
    )

    @strawberry.field(description="PENDING until the owning service decides; then APPLIED, or REFUSED with a code.")
    async def outcome(self, info: Info) -> CommandOutcome:
        pool = info.context["pool"]
        row = await pool.fetchrow(
            "SELECT * FROM gateway.command_outcomes WHERE command_id = $1", UUID(str(self.command_id))
        )
        return await reported(pool, row)


VISIBLE_WHEN: dict[str, str] = {
    RecordScreening.event_type: "SELECT 1 FROM gateway.survivors WHERE survivor_id = $1",
    RequestReferral.event_type: "SELECT 1 FROM gateway.referrals WHERE referral_id = $1",
    ReleaseStatistics.event_type: "SELECT 1 FROM gateway.statistics_releases WHERE release_id = $1",
}
"""Commands whose effect the caller's next call relies on (consent for the survivor just screened, the recipient
acting on the referral just made): waiting for their decision also waits until the effect reads back here."""


def made(envelope: Envelope) -> UUID | None:
    """What ``envelope``'s command makes that must read back before it is reported APPLIED (``VISIBLE_WHEN``)."""
    if isinstance(envelope.data, RequestReferral):
        return envelope.data.referral_id
    return UUID(envelope.subject) if envelope.type in VISIBLE_WHEN else None


async def reported(pool: Any, row: Any) -> CommandOutcome:
    """The outcome as its sender sees it: APPLIED once what the command made can be read back, PENDING until then
    (the effect reaches this read model on another topic than the decision, seldom more than a moment after it)."""
    outcome = CommandOutcome.of(row)
    visible = VISIBLE_WHEN.get(row["command_type"])
    if (
        outcome.status is CommandStatus.APPLIED
        and visible
        and row["made"]
        and not await pool.fetchval(visible, row["made"])
    ):
        outcome.status = CommandStatus.PENDING
    return outcome


async def answer(info: Info, envelope: Envelope, wait: int | None) -> Accepted:
    """The mutation's answer, after waiting (woken by the projection's NOTIFY) up to ``wait`` ms for a decision; an
    applied command of ``VISIBLE_WHEN`` also until what it made can be read back through this API."""
    referral = envelope.data.referral_id if isinstance(envelope.data, RequestReferral) else None
    if wait:
        pool, wakeup = info.context["pool"], info.context["wakeup"]
        deadline = time.monotonic() + wait / 1000
        while True:
            woken = wakeup.armed(OUTCOMES_CHANNEL)  # armed before looking
            row = await pool.fetchrow("SELECT * FROM gateway.command_outcomes WHERE command_id = $1", envelope.id)
            decided = row is not None and (await reported(pool, row)).status is not CommandStatus.PENDING
            left = deadline - time.monotonic()
            if decided or left <= 0:
                break
            if row is not None and row["status"] == CommandStatus.APPLIED.value:  # decided, not yet readable back:
                await asyncio.sleep(min(0.02, left))  # the survivors' projection sends no NOTIFY; rarely needed
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), left)
    return Accepted(command_id=strawberry.ID(str(envelope.id)), subject_id=strawberry.ID(envelope.subject),
                    referral_id=strawberry.ID(str(referral)) if referral else None)  # fmt: skip


@strawberry.type
class CommandsQuery:
    """My organisation's commands."""

    @strawberry.field(description="What became of one of my organisation's commands (null for anyone else's).")
    async def command(self, info: Info, id: strawberry.ID) -> CommandOutcome | None:
        who = principal(info)
        command_id = survivor_uuid(id, "id")
        pool = info.context["pool"]
        row = await pool.fetchrow(
            "SELECT * FROM gateway.command_outcomes WHERE command_id = $1 AND org_id = $2", command_id, who.org_id
        )
        return await reported(pool, row) if row else None
