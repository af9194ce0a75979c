"""Legal aid's handlers: caseload, matters, milestones, outcomes — each outcome reported back as the referral's."""

from __future__ import annotations

from typing import Any

from events.directory import CapacityChanged, CapacityStatus
from events.envelope import Envelope
from events.errors import DomainError
from events.identification import SurvivorErased
from events.legal_aid import (
    CloseMatter,
    ConfigureClinic,
    MatterClosed,
    MatterMilestoneReached,
    MatterOpened,
    OpenMatter,
    RecordMilestone,
)
from events.needs import HAVEN_PROVIDERS
from events.referrals import (
    CompleteReferral,
    ReferralRequested,
    RejectionReason,
    RejectReferral,
)
from services.kernel.consumer import UnitOfWork
from services.kernel.db import Connection
from services.kernel.provider import ReferralFollower, referral_for, require_awaiting_answer

SOURCE = "haven/legal_aid"
FOLLOWER = ReferralFollower(HAVEN_PROVIDERS["legal_aid"], SOURCE)


async def _room(conn: Connection, org_id: str) -> int | None:
    """Free places in the clinic's caseload, or None when it set no limit."""
    room: int | None = await conn.fetchval(
        "SELECT max_open_matters - (SELECT count(*) FROM matters WHERE clinic_org = $1 AND outcome IS NULL)"
        " FROM clinics WHERE org_id = $1",
        org_id,
    )
    return room


async def _publish_caseload(uow: UnitOfWork, org_id: str) -> None:
    room = await _room(uow.conn, org_id)
    if room is None:
        return
    for service in FOLLOWER.referral_types:
        status = CapacityStatus.CAPACITY if room > 0 else CapacityStatus.WAITLIST
        change = CapacityChanged(org_id=org_id, service=service, status=status, available=max(room, 0))
        await uow.emit(Envelope.new(change, source=SOURCE))


async def configure_clinic(command: ConfigureClinic, uow: UnitOfWork) -> None:
    await uow.conn.execute(
        "INSERT INTO clinics VALUES ($1, $2) ON CONFLICT (org_id) DO UPDATE SET max_open_matters = $2",
        command.org_id,
        command.max_open_matters,
    )
    await _publish_caseload(uow, command.org_id)


async def receive_referral(event: ReferralRequested, referral: Any, uow: UnitOfWork) -> None:
    """A clinic whose caseload is full says so at once, so the referral can go elsewhere."""
    room = await _room(uow.conn, event.recipient_org)
    if room is not None and room <= 0:
        await uow.emit(FOLLOWER.command(RejectReferral, referral, reason=RejectionReason.NO_CAPACITY))


async def open_matter(command: OpenMatter, uow: UnitOfWork) -> None:
    referral = await referral_for(uow.conn, command.referral_id, command.actor_org, survivor_id=command.survivor_id)
    require_awaiting_answer(referral)
    room = await _room(uow.conn, command.actor_org)
    if room is not None and room <= 0:
        raise DomainError("caseload_full", "the clinic's caseload is full", field="actor_org")
    inserted = await uow.conn.fetchval(
        "INSERT INTO matters (matter_id, referral_id, survivor_id, clinic_org, matter_type)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
        command.matter_id, command.referral_id, referral["survivor_id"], command.actor_org, command.matter_type,
    )  # fmt: skip
    if not inserted:
        raise DomainError("matter_exists", "this referral or matter id is already a matter", field="matter_id")
    opened = MatterOpened(
        survivor_id=referral["survivor_id"], matter_id=command.matter_id, clinic_org=command.actor_org,
        referral_id=command.referral_id, matter_type=command.matter_type,
    )  # fmt: skip
    await uow.emit(
        Envelope.new(opened, source=SOURCE),
        *FOLLOWER.taking_on(referral),
    )
    await _publish_caseload(uow, command.actor_org)


async def _open_matter_of(conn: Connection, matter_id: Any, actor: str) -> Any:
    matter = await conn.fetchrow("SELECT * FROM matters WHERE matter_id = $1 FOR UPDATE", matter_id)
    if matter is None or matter["clinic_org"] != actor:
        raise DomainError("unknown_matter", "no such matter at this clinic", field="matter_id")
    if matter["outcome"] is not None:
        raise DomainError("matter_closed", f"the matter closed with {matter['outcome']}", field="matter_id")
    return matter


async def record_milestone(command: RecordMilestone, uow: UnitOfWork) -> None:
    matter = await _open_matter_of(uow.conn, command.matter_id, command.actor_org)
    if command.milestone == "hearing_scheduled" and command.hearing_date is None:
        raise DomainError("hearing_date_required", "a scheduled hearing needs its date", field="hearing_date")
    await uow.conn.execute(
        "INSERT INTO milestones (matter_id, seq, milestone, hearing_date)"
        " SELECT $1, coalesce(max(seq), 0) + 1, $2, $3 FROM milestones WHERE matter_id = $1",
        command.matter_id, command.milestone, command.hearing_date,
    )  # fmt: skip
    reached = MatterMilestoneReached(survivor_id=matter["survivor_id"], matter_id=command.matter_id,
                                     clinic_org=command.actor_org, milestone=command.milestone,
                                     hearing_date=command.hearing_date)  # fmt: skip
    await uow.emit(Envelope.new(reached, source=SOURCE))


async def close_matter(command: CloseMatter, uow: UnitOfWork) -> None:
    """Close with an outcome, which completes the referral: the referrer learns it."""
    matter = await _open_matter_of(uow.conn, command.matter_id, command.actor_org)
    await uow.conn.execute(
        "UPDATE matters SET outcome = $2, closed_at = now() WHERE matter_id = $1", command.matter_id, command.outcome
    )
    referral = await referral_for(uow.conn, matter["referral_id"], command.actor_org)
    closed = MatterClosed(survivor_id=matter["survivor_id"], matter_id=command.matter_id,
                          clinic_org=command.actor_org, outcome=command.outcome)  # fmt: skip
    await uow.emit(
        Envelope.new(closed, source=SOURCE),
        FOLLOWER.command(CompleteReferral, referral, outcome=f"matter_{command.outcome}"),
    )
    await _publish_caseload(uow, command.actor_org)


async def purge_survivor(event: SurvivorErased, uow: UnitOfWork) -> None:
    await uow.conn.execute("DELETE FROM matters WHERE survivor_id = $1", event.survivor_id)
