"""Shelter's handlers: bed configuration, placements, check-in and check-out, releasing beds."""

from __future__ import annotations

from typing import Any

from events.consent import Category
from events.directory import CapacityChanged, CapacityStatus
from events.envelope import Envelope
from events.errors import DomainError
from events.identification import Gender, SurvivorErased
from events.needs import HAVEN_PROVIDERS, ReferralType
from events.referrals import (
    AcceptReferral,
    CompleteReferral,
    ReferralEvent,
    ReferralRequested,
    RejectionReason,
    RejectReferral,
    StartReferral,
)
from events.shelter import (
    AcceptPlacement,
    CheckIn,
    CheckOut,
    ConfigureShelter,
    PlacementCheckedIn,
    PlacementCheckedOut,
    PlacementReleased,
    PlacementReserved,
)
from services.kernel.consumer import UnitOfWork
from services.kernel.crypto import Keyring, SurvivorKeyMissing
from services.kernel.provider import ReferralFollower, referral_for, require_awaiting_answer, survivor_facts
from services.shelter import repository
from services.shelter.domain import Facts, suitable_units, unit_serves

SOURCE = "haven/shelter"
FOLLOWER = ReferralFollower(HAVEN_PROVIDERS["shelter"], SOURCE)


def _facts(row: Any) -> Facts:
    """A ``survivor_facts`` row as the rules read it: codes as their enums (``unit_serves`` compares members).

    >>> from events.shelter import UnitType
    >>> from services.shelter.domain import unit_serves
    >>> unit_serves(UnitType.ADULT_MEN, _facts({"is_minor": False, "gender": "female", "disability": None}))
    False
    """
    return Facts(row["is_minor"], Gender(row["gender"]), row["disability"]) if row else Facts()


async def _publish_capacity(uow: UnitOfWork, org_id: str) -> None:
    for unit, free in sorted((await repository.free_beds(uow.conn, org_id)).items()):
        change = CapacityChanged(
            org_id=org_id, service=ReferralType.EMERGENCY_SHELTER, unit_type=unit,
            status=CapacityStatus.CAPACITY if free else CapacityStatus.NO_CAPACITY, available=free,
        )  # fmt: skip
        await uow.emit(Envelope.new(change, source=SOURCE))


async def configure_shelter(command: ConfigureShelter, uow: UnitOfWork) -> None:
    """Set the number of beds per unit type and announce the capacity."""
    for unit, count in command.beds.items():
        if count < 0:
            raise DomainError("negative_beds", f"{unit}: a shelter cannot have {count} beds", field=f"beds.{unit}")
        await repository.set_beds(uow.conn, command.org_id, unit, count)
    await _publish_capacity(uow, command.org_id)


async def receive_referral(event: ReferralRequested, referral: Any, uow: UnitOfWork) -> None:
    """A referral no free bed could take is rejected for no capacity at once (its receipt came with it)."""
    facts = _facts(await survivor_facts(uow.conn, event.survivor_id))
    free = await repository.free_beds(uow.conn, event.recipient_org)
    if not any(free.get(unit, 0) for unit in suitable_units(facts)):
        await uow.emit(FOLLOWER.command(RejectReferral, referral, reason=RejectionReason.NO_CAPACITY))


async def accept_placement(command: AcceptPlacement, uow: UnitOfWork, *, keyring: Keyring) -> None:
    """Reserve a free bed of the unit type and accept; with none free, reject for no capacity."""
    referral = await referral_for(uow.conn, command.referral_id, command.actor_org, survivor_id=command.survivor_id)
    require_awaiting_answer(referral)
    facts = _facts(await survivor_facts(uow.conn, referral["survivor_id"]))
    if not unit_serves(command.unit_type, facts):
        raise DomainError("unit_unsuitable", f"a {command.unit_type} bed does not suit this survivor",
                          field="unit_type")  # fmt: skip
    if await repository.placement(uow.conn, command.referral_id) is not None:
        raise DomainError("already_placed", "this referral already has a bed", field="referral_id")
    bed = await repository.claim_free_bed(uow.conn, command.actor_org, command.unit_type)
    if bed is None:
        await uow.emit(FOLLOWER.command(RejectReferral, referral, reason=RejectionReason.NO_CAPACITY))
        return
    await repository.reserve(uow.conn, command.referral_id, referral["survivor_id"], command.actor_org, bed,
                             command.unit_type)  # fmt: skip
    location = None
    if (address := await repository.address(uow.conn, command.actor_org)) is not None:
        try:
            key = await keyring.get(uow.conn, referral["survivor_id"])
            location = key.seal(Category.LOCATION, address.encode())
        except SurvivorKeyMissing:
            location = None  # never in clear: without the survivor's key the address is not shared
    await uow.emit(
        Envelope.new(PlacementReserved(**_placement(referral, command.unit_type), location=location), source=SOURCE),
        FOLLOWER.command(AcceptReferral, referral, note=command.note),
    )
    await _publish_capacity(uow, command.actor_org)


def _placement(referral: Any, unit: str) -> dict[str, Any]:
    return {"survivor_id": referral["survivor_id"], "referral_id": referral["referral_id"],
            "shelter_org": referral["recipient_org"], "unit_type": unit}  # fmt: skip


async def check_in(command: CheckIn, uow: UnitOfWork) -> None:
    referral = await referral_for(uow.conn, command.referral_id, command.actor_org)
    placement = await repository.placement(uow.conn, command.referral_id)
    if placement is None or placement["status"] != "reserved":
        raise DomainError("no_reserved_bed", "check-in needs a reserved bed", field="referral_id")
    await repository.move(uow.conn, command.referral_id, "checked_in")
    await uow.emit(
        Envelope.new(PlacementCheckedIn(**_placement(referral, placement["unit_type"])), source=SOURCE),
        FOLLOWER.command(StartReferral, referral),
    )


async def check_out(command: CheckOut, uow: UnitOfWork) -> None:
    referral = await referral_for(uow.conn, command.referral_id, command.actor_org)
    placement = await repository.placement(uow.conn, command.referral_id)
    if placement is None or placement["status"] != "checked_in":
        raise DomainError("not_checked_in", "check-out needs a checked-in survivor", field="referral_id")
    await repository.move(uow.conn, command.referral_id, "checked_out", command.destination)
    await uow.emit(
        Envelope.new(
            PlacementCheckedOut(**_placement(referral, placement["unit_type"]), destination=command.destination),
            source=SOURCE,
        ),
        FOLLOWER.command(CompleteReferral, referral, outcome=f"left_for_{command.destination}"),
    )
    await _publish_capacity(uow, command.actor_org)


async def release_bed(event: ReferralEvent, referral: Any, uow: UnitOfWork) -> None:
    """A referral that ended early (cancelled, declined, in error, failed) frees its bed."""
    placement = await repository.placement(uow.conn, event.referral_id)
    if placement is None or placement["status"] not in repository.ACTIVE:
        return
    await repository.move(uow.conn, event.referral_id, "released")
    await uow.emit(Envelope.new(PlacementReleased(**_placement(referral, placement["unit_type"])), source=SOURCE))
    await _publish_capacity(uow, placement["org_id"])


async def purge_survivor(event: SurvivorErased, uow: UnitOfWork) -> None:
    await repository.purge(uow.conn, event.survivor_id)
