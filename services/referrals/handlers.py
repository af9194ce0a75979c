"""Referrals' handlers: commands from partners and the deadline worker, and the events it projects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from events.care import CARE_GRACE, require_member
from events.consent import Category, ConsentExpired, ConsentGranted, ConsentRevoked, Party, crosses_border
from events.directory import (
    CapacityChanged,
    Organisation,
    OrganisationRegistered,
    RegisterOrganisation,
    Seeker,
    serves,
)
from events.envelope import Envelope
from events.errors import DomainError
from events.identification import AgeBand, Gender, Statistics, SurvivorErased, SurvivorIdentified
from events.needs import RECEIVED_ON_DELIVERY
from events.referrals import (
    AWAITING_ANSWER,
    EVENT_FOR,
    OPEN,
    SHARED_AT_MOST,
    Border,
    CancellationReason,
    ExpireReferral,
    ReceiveReferral,
    ReferralAction,
    ReferralCancelled,
    ReferralEscalated,
    ReferralEvent,
    ReferralExpired,
    ReferralReceived,
    ReferralRequested,
    ReferralStatus,
    RejectionReason,
    RejectReferral,
    RequestReferral,
    ResumeReferral,
    StartReferral,
    sharing,
)
from events.types import Sealed
from services.kernel import metrics
from services.kernel.consumer import UnitOfWork, WaitForSurvivor
from services.kernel.crypto import Keyring, open_or_none
from services.referrals import domain, repository
from services.referrals.domain import SYSTEM_ORG, Parties

SOURCE = "haven/referrals"
Clock = Callable[[], datetime]

ONLY_FROM: dict[type[ReferralAction], frozenset[ReferralStatus]] = {
    StartReferral: frozenset({ReferralStatus.ACCEPTED}),
    ResumeReferral: frozenset({ReferralStatus.ON_HOLD}),
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _event(envelope_data: ReferralEvent | ReferralEscalated) -> Envelope:
    return Envelope.new(envelope_data, source=SOURCE)


async def request_referral(
    command: RequestReferral, uow: UnitOfWork, *, clock: Clock = utcnow, grace: timedelta = CARE_GRACE
) -> None:
    """Refer a survivor: the referrer is in their care team and the recipient offers the service.

    Consent decides what the referral shares, not whether it happens: the categories the type could
    share that the survivor does not permit travel as ``withheld``, and the recipient decides.
    """
    conn, now = uow.conn, clock()
    survivor = await repository.survivor(conn, command.survivor_id)
    if survivor is None:
        raise WaitForSurvivor(command.survivor_id)
    links = await repository.care_links(conn, command.survivor_id)
    require_member(command.referrer_org, survivor["screener_org"], links, now, grace, field="referrer_org")
    earlier = await conn.fetchrow(
        "SELECT survivor_id, referrer_org, recipient_org, referral_type FROM referrals WHERE referral_id = $1",
        command.referral_id,
    )
    if earlier is not None:
        if tuple(earlier.values()) == (command.survivor_id, command.referrer_org, command.recipient_org,
                                       command.referral_type.value):  # fmt: skip
            return  # the same request sent again (its idempotency key): made once, answered again
        raise DomainError("duplicate_referral", "a referral with this id exists already: was its idempotency key "
                          "used for another referral?", field="referral_id")  # fmt: skip
    if command.recipient_org == command.referrer_org:
        raise DomainError("self_referral", "an organisation cannot refer to itself", field="recipient_org")
    if await repository.organisation(conn, command.referrer_org) is None:
        raise DomainError("unknown_referrer", f"{command.referrer_org} is not in the directory", field="referrer_org")
    recipient = await repository.organisation(conn, command.recipient_org)
    if recipient is None:
        raise DomainError(
            "unknown_recipient", f"{command.recipient_org} is not in the directory", field="recipient_org"
        )
    if command.referral_type not in recipient.services:
        raise DomainError("service_not_offered", f"{recipient.org_id} does not offer {command.referral_type}",
                          field="referral_type")  # fmt: skip
    root = command.referral_id
    if command.parent_referral_id is not None:
        parent = await repository.lock(conn, command.parent_referral_id)
        if parent is None or parent["survivor_id"] != command.survivor_id:
            raise DomainError("unknown_parent", "no such referral for this survivor", field="parent_referral_id")
        if command.referrer_org != parent["recipient_org"] or parent["status"] not in OPEN:
            raise DomainError("not_a_party", "only the recipient of an open referral refers onward",
                              field="parent_referral_id")  # fmt: skip
        root = parent["root_referral_id"]
    records = await repository.consent_records(conn, command.survivor_id)
    home = await repository.home(conn, command.survivor_id)
    shared, withheld = sharing(records, party_of(recipient), SHARED_AT_MOST[command.referral_type], command.purpose,
                               now, home)  # fmt: skip
    border = crosses_border(home, recipient.jurisdictions)
    if border and not shared:  # across a border, consent decides whether, not only what
        raise DomainError(
            "border_not_consented",
            f"{recipient.org_id} works in {', '.join(sorted(recipient.jurisdictions))}, outside the survivor's "
            f"jurisdiction ({', '.join(sorted(home))}); no directive of theirs permits sharing across that border",
            field="recipient_org",
        )
    event = ReferralRequested(
        referral_id=command.referral_id, survivor_id=command.survivor_id, actor_org=command.referrer_org,
        referrer_org=command.referrer_org, recipient_org=command.recipient_org,
        referral_type=command.referral_type, urgency=command.urgency, purpose=command.purpose,
        categories=shared, withheld=withheld, deadline=domain.deadline(command.urgency, now, command.respond_by),
        allow_reroute=command.allow_reroute, parent_referral_id=command.parent_referral_id, note=command.note,
        border=Border(home=home, recipient=recipient.jurisdictions) if border else None,
        **repository.matching_facts(survivor),
    )  # fmt: skip
    await _create(uow, event, root, now)


def party_of(org: Organisation) -> Party:
    return Party(org.org_id, org.org_type, frozenset(org.jurisdictions))


async def _create(uow: UnitOfWork, event: ReferralRequested, root: UUID, at: datetime) -> None:
    """Record and announce the request; a type one of Haven's provider services takes in is received with it."""
    delivered = event.referral_type in RECEIVED_ON_DELIVERY
    status = ReferralStatus.RECEIVED if delivered else ReferralStatus.REQUESTED
    await repository.insert(uow.conn, event, root, status)
    await repository.add_transition(uow.conn, event.referral_id, None, ReferralStatus.REQUESTED, event.actor_org,
                                    None, event.note, at)  # fmt: skip
    await uow.emit(_event(event))
    if delivered:
        await repository.add_transition(uow.conn, event.referral_id, ReferralStatus.REQUESTED, status,
                                        event.recipient_org, None, None, at)  # fmt: skip
        await uow.emit(_event(ReferralReceived(**_fields(event.model_dump(), event.recipient_org, None, None))))


async def act(command: ReferralAction, uow: UnitOfWork, *, clock: Clock = utcnow) -> None:
    """Move a referral on: the lifecycle and the parties decide whether it may; every move is recorded."""
    row = await repository.lock(uow.conn, command.referral_id)
    if row is None or row["survivor_id"] != command.survivor_id:
        raise DomainError("unknown_referral", "no such referral for this survivor", field="referral_id")
    current = ReferralStatus(row["status"])
    if isinstance(command, ReceiveReferral) and current is ReferralStatus.RECEIVED:
        domain.check_actor(current, command.actor_org, Parties(row["referrer_org"], row["recipient_org"]))
        return  # received on delivery already (RECEIVED_ON_DELIVERY): saying so again changes nothing
    if isinstance(command, ExpireReferral) and (current not in AWAITING_ANSWER or row["deadline"] != command.deadline):
        return  # answered in time, or a timer for an older deadline: nothing is overdue
    domain.check_transition(current, command.target, ONLY_FROM.get(type(command)))
    domain.check_actor(command.target, command.actor_org, Parties(row["referrer_org"], row["recipient_org"]),
                       command.reason_code())  # fmt: skip
    now = clock()
    await repository.record_transition(uow.conn, command.referral_id, current, command.target, command.actor_org,
                                       command.reason_code(), command.note, now)  # fmt: skip
    overdue = isinstance(command, ExpireReferral)
    if overdue:
        metrics.DEADLINES_BREACHED.add(1)
    full = isinstance(command, RejectReferral) and command.reason is RejectionReason.NO_CAPACITY
    target = await _reroute_target(uow, row, now) if row["allow_reroute"] and (overdue or full) else None
    child = uuid5(NAMESPACE_URL, f"haven:reroute:{row['referral_id']}") if target else None
    fields = _fields(row, command.actor_org, command.reason_code(), command.note)
    await uow.emit(
        _event(ReferralExpired(**fields, rerouted_to=child) if overdue else EVENT_FOR[type(command)](**fields))
    )
    if overdue:
        await uow.emit(_event(ReferralEscalated(
            referral_id=row["referral_id"], survivor_id=row["survivor_id"], referrer_org=row["referrer_org"],
            recipient_org=row["recipient_org"], reason="deadline_missed", rerouted_to=child,
        )))  # fmt: skip
    if target is not None and child is not None:
        target_org, border, shared, withheld = target
        rerouted = ReferralRequested(
            referral_id=child, survivor_id=row["survivor_id"], actor_org=SYSTEM_ORG,
            referrer_org=row["referrer_org"], recipient_org=target_org, referral_type=row["referral_type"],
            urgency=row["urgency"], purpose=row["purpose"], categories=shared, withheld=withheld,
            deadline=domain.deadline(row["urgency"], now, None), allow_reroute=True,
            parent_referral_id=row["referral_id"], reason="rerouted", border=border,
            **repository.matching_facts(await repository.survivor(uow.conn, row["survivor_id"])),
        )  # fmt: skip
        await _create(uow, rerouted, row["root_referral_id"], now)


def _fields(row: Any, actor: str, reason: str | None, note: Sealed | None) -> dict[str, Any]:
    return {
        "referral_id": row["referral_id"], "survivor_id": row["survivor_id"], "actor_org": actor,
        "referrer_org": row["referrer_org"], "recipient_org": row["recipient_org"], "reason": reason, "note": note,
        "referral_type": row["referral_type"],
    }  # fmt: skip


Sharing = tuple[frozenset[Category], frozenset[Category]]


async def _reroute_target(uow: UnitOfWork, row: Any, now: datetime) -> tuple[str, Border | None, *Sharing] | None:
    """The next eligible provider with capacity that the chain has not tried, with the border a referral to it
    crosses and what it shares and withholds (consent shapes what it shares, and prefers whom it shares more
    with). A provider across a border that the survivor's consent does not reach is never a candidate."""
    conn = uow.conn
    known = await repository.survivor(conn, row["survivor_id"])
    seeker = Seeker(age_band=AgeBand(known["age_band"]), gender=Gender(known["gender"])) if known else Seeker()
    tried = await repository.tried_in_chain(conn, row["root_referral_id"])
    records = await repository.consent_records(conn, row["survivor_id"])
    home = await repository.home(conn, row["survivor_id"])
    at_most = SHARED_AT_MOST[row["referral_type"]]
    candidates, shares, borders = [], {}, {}
    for org, offer in await repository.offers(conn, row["referral_type"], None):
        if not serves(org, seeker):
            continue
        shared, withheld = sharing(records, party_of(org), at_most, row["purpose"], now, home)
        if crosses_border(home, org.jurisdictions):
            if not shared:
                continue
            borders[org.org_id] = Border(home=home, recipient=org.jurisdictions)
        candidates.append(offer)
        shares[org.org_id] = (shared, withheld)
    choice = domain.reroute_target(candidates, tried, {org: len(w) for org, (_, w) in shares.items()})
    return (choice.org_id, borders.get(choice.org_id), *shares[choice.org_id]) if choice else None


# ---------------------------------------------------------------- consent


async def note_consent_granted(event: ConsentGranted, uow: UnitOfWork) -> None:
    await repository.save_directive(uow.conn, event.survivor_id, event.directive)


async def withdraw_on_revocation(event: ConsentRevoked, uow: UnitOfWork, *, clock: Clock = utcnow) -> None:
    await repository.revoke_directive(uow.conn, event.directive_id, event.revoked_at)
    await _withdraw_unconsented(uow, event.survivor_id, clock())


async def withdraw_on_expiry(event: ConsentExpired, uow: UnitOfWork, *, clock: Clock = utcnow) -> None:
    await _withdraw_unconsented(uow, event.survivor_id, clock())


async def _withdraw_unconsented(uow: UnitOfWork, survivor_id: UUID, now: datetime) -> None:
    """Cancel every open referral whose recipient the survivor's consent no longer covers."""
    records = await repository.consent_records(uow.conn, survivor_id)
    home = await repository.home(uow.conn, survivor_id)
    for row in await repository.open_referrals(uow.conn, survivor_id, OPEN):
        recipient = await repository.organisation(uow.conn, row["recipient_org"])
        party = party_of(recipient) if recipient else None
        if party and not sharing(records, party, row["categories"], row["purpose"], now, home)[1]:
            continue  # everything it shares is still permitted
        reason = CancellationReason.CONSENT_WITHDRAWN
        await repository.record_transition(uow.conn, row["referral_id"], ReferralStatus(row["status"]),
                                           ReferralStatus.CANCELLED, SYSTEM_ORG, reason, None, now)  # fmt: skip
        await uow.emit(_event(ReferralCancelled(**_fields(row, SYSTEM_ORG, reason, None))))


# ---------------------------------------------------------------- directory and identification


async def register_organisation(command: RegisterOrganisation, uow: UnitOfWork) -> None:
    await repository.save_organisation(uow.conn, command.organisation)
    org = command.organisation
    await uow.emit(Envelope.new(OrganisationRegistered(organisation=org), source=SOURCE))


async def note_organisation(event: OrganisationRegistered, uow: UnitOfWork) -> None:
    await repository.save_organisation(uow.conn, event.organisation)


async def note_capacity(event: CapacityChanged, uow: UnitOfWork) -> None:
    await repository.save_capacity(uow.conn, event)


async def note_survivor(event: SurvivorIdentified, uow: UnitOfWork, *, keyring: Keyring) -> None:
    """Who screened the survivor (the care team) and the coded facts re-routing matches on (sealed)."""
    stats = await open_or_none(keyring, uow.conn, event.survivor_id, Category.STATISTICS, event.profile.statistics,
                               Statistics) or Statistics()  # fmt: skip
    await repository.save_survivor(uow.conn, event.survivor_id, stats.age_band, stats.gender, event.screener_org,
                                   event.is_minor, event.profile.statistics)  # fmt: skip


async def purge_survivor(event: SurvivorErased, uow: UnitOfWork) -> None:
    await repository.purge(uow.conn, event.survivor_id)
