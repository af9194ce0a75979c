"""Closed-loop referrals on the real stack: the referrals and consent services and the deadline worker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaProducer

from events.catalog import REFERRALS
from events.consent import Category, Grantee, OrgType, Party, RevokeConsent
from events.directory import CapacityStatus, Organisation, Seeker
from events.envelope import Envelope
from events.errors import DomainError
from events.identification import Gender
from events.needs import ReferralType, Urgency
from events.referrals import (
    AcceptReferral,
    CompleteReferral,
    ReceiveReferral,
    ReferralRequested,
    RejectionReason,
    RejectReferral,
    StartReferral,
)
from services.kernel.consumer import UnitOfWork
from services.kernel.db import Pool, create_pool
from services.kernel.settings import Settings
from services.referrals import handlers, queries
from tests.support.intakes import identified, send
from tests.support.observe import eventually, wait_for_events
from tests.support.partners import announce_capacity, organisation, register
from tests.support.processes import ServiceProcess, start_all
from tests.support.referrals import SHELTER_NEEDS, consent_to, refusals_for, request


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("service-logs")
    names = {"consent": "consent", "referrals": "referrals", "deadlines": "referrals.deadline_worker"}
    running = start_all({name: ServiceProcess(module, logs) for name, module in names.items()})
    yield running
    for process in running.values():
        if process.proc is not None:
            assert process.stop() == 0, f"{process.name} stops cleanly on SIGTERM"


def types_of(events: list[Envelope], referral: UUID) -> list[str]:
    return [e.type for e in events if getattr(e.data, "referral_id", None) == referral]


async def hotline_and_shelter(
    producer: AIOKafkaProducer, db: Pool, *, consent_by_type: bool = False
) -> tuple[Organisation, Organisation, UUID, UUID]:
    """A hotline, a shelter, a survivor who consented to that shelter (or to shelters), and the directive."""
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    await register(producer, db, hotline, shelter)
    survivor = uuid4()
    await identified(producer, survivor, hotline.org_id)
    grantee = Grantee(org_type=OrgType.SHELTER) if consent_by_type else Grantee(org_id=shelter.org_id)
    directive = await consent_to(producer, db, survivor, grantee, recorded_by=hotline.org_id)
    return hotline, shelter, survivor, directive


async def test_a_closed_loop_across_two_organisations_with_the_referrer_seeing_each_state(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    hotline, shelter, survivor, _ = await hotline_and_shelter(producer, db, consent_by_type=True)
    ask = request(survivor, hotline.org_id, shelter.org_id)
    act = {"referral_id": ask.referral_id, "survivor_id": survivor, "actor_org": shelter.org_id}

    # Received on delivery (the shelter service takes it in); the shelter saying so again, as a partner system may,
    # is answered and changes nothing: the history below has one receipt.
    await send(producer, ask, ReceiveReferral(**act), AcceptReferral(**act), StartReferral(**act),
               CompleteReferral(**act, outcome="placed"))  # fmt: skip

    loop = ["referral.requested", "referral.received", "referral.accepted", "referral.started", "referral.completed"]
    events = await wait_for_events(settings, REFERRALS.name, subject=str(survivor), types=loop)
    assert types_of(events, ask.referral_id) == loop
    assert all(e.data.referrer_org == hotline.org_id for e in events)  # type: ignore[attr-defined]
    async with db.acquire() as conn:
        await conn.execute("SET search_path TO referrals")
        trail = await queries.history(conn, ask.referral_id)
        made = await queries.referrals_made_by(conn, hotline.org_id)
    assert [(t["to_status"], t["actor_org"]) for t in trail] == [
        ("requested", hotline.org_id), ("received", shelter.org_id), ("accepted", shelter.org_id),
        ("in_progress", shelter.org_id), ("completed", shelter.org_id),
    ]  # fmt: skip
    assert trail[-1]["reason"] == "placed"
    assert all(t["at"] is not None for t in trail)
    assert [(m["referral_id"], m["status"]) for m in made] == [(ask.referral_id, "completed")]


async def test_a_referral_no_haven_service_takes_in_is_received_when_its_recipient_says_so(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    interpreters = organisation(OrgType.NGO, ReferralType.INTERPRETATION)
    await register(producer, db, hotline, interpreters)
    survivor = uuid4()
    await identified(producer, survivor, hotline.org_id)
    await consent_to(producer, db, survivor, Grantee(org_id=interpreters.org_id), recorded_by=hotline.org_id)
    ask = request(survivor, hotline.org_id, interpreters.org_id, referral_type=ReferralType.INTERPRETATION)
    await send(producer, ask)
    await wait_for_events(settings, REFERRALS.name, subject=str(survivor), types=["referral.requested"])
    act = {"referral_id": ask.referral_id, "survivor_id": survivor}
    sent = await send(producer, ReceiveReferral(**act, actor_org=hotline.org_id))
    assert [r[0] for r in (await refusals_for(settings, sent)).values()] == ["not_a_party"]
    status = await db.fetchval("SELECT status FROM referrals.referrals WHERE referral_id = $1", ask.referral_id)
    assert status == "requested", "no Haven service took it in: it waits for its recipient"
    await send(producer, ReceiveReferral(**act, actor_org=interpreters.org_id))
    loop = ["referral.requested", "referral.received"]
    events = await wait_for_events(settings, REFERRALS.name, subject=str(survivor), types=loop)
    assert types_of(events, ask.referral_id) == loop
    assert events[-1].data.actor_org == interpreters.org_id  # type: ignore[attr-defined]


async def test_a_missed_deadline_expires_escalates_and_reroutes_once_across_a_worker_restart(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    silent, spare = (organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER) for _ in range(2))
    await register(producer, db, hotline, silent, spare)
    await announce_capacity(producer, spare, ReferralType.EMERGENCY_SHELTER, CapacityStatus.CAPACITY, 3)
    survivor = uuid4()
    await identified(producer, survivor, hotline.org_id)
    for shelter in (silent, spare):  # only these two: shelters of other tests must not take the place
        await consent_to(producer, db, survivor, Grantee(org_id=shelter.org_id), recorded_by=hotline.org_id)
    due = datetime.now(UTC) + timedelta(seconds=12)
    ask = request(survivor, hotline.org_id, silent.org_id, respond_by=due, allow_reroute=True)
    await send(producer, ask)
    await wait_for_events(settings, REFERRALS.name, subject=str(survivor), types=["referral.requested"])

    deadlines = services["deadlines"]
    assert deadlines.stop() == 0
    await asyncio.to_thread(deadlines.start)
    assert datetime.now(UTC) < due, "restarted before the deadline"

    wanted = [
        "referral.requested",
        "referral.received",
        "referral.expired",
        "referral.escalated",
        "referral.requested",
        "referral.received",
    ]  # a shelter referral is received as it is requested
    await wait_for_events(settings, REFERRALS.name, subject=str(survivor), types=wanted, timeout=60)
    await asyncio.sleep(3)  # a second firing would show by now
    events = await wait_for_events(settings, REFERRALS.name, subject=str(survivor), types=wanted)
    assert sorted(e.type for e in events) == sorted(wanted), "fired once, re-routed once"
    expired = next(e.data for e in events if e.type == "referral.expired")
    child = next(e.data for e in events if e.type == "referral.requested" and e.data.referral_id != ask.referral_id)  # type: ignore[attr-defined]
    assert isinstance(child, ReferralRequested)
    assert expired.rerouted_to == child.referral_id  # type: ignore[attr-defined]
    assert (child.parent_referral_id, child.recipient_org, child.referrer_org) == (
        ask.referral_id, spare.org_id, hotline.org_id)  # fmt: skip
    assert events[[e.type for e in events].index("referral.expired")].time >= due


async def test_a_reroute_never_crosses_a_border_the_survivors_consent_does_not_reach(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    """A full shelter in GB rejects; the shelter with the most beds is in FR, and the survivor's consent for it
    does not name FR. Re-routing passes it over for a shelter in GB, which it would otherwise rank below."""
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    full, local = (organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER) for _ in range(2))
    abroad = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER, jurisdictions=frozenset({"FR"}))
    await register(producer, db, hotline, full, local, abroad)
    for org, beds in ((abroad, 1000), (local, 500)):
        await announce_capacity(producer, org, ReferralType.EMERGENCY_SHELTER, CapacityStatus.CAPACITY, beds)
    survivor = uuid4()
    await identified(producer, survivor, hotline.org_id)
    for shelter in (full, abroad):  # the local shelter has no consent at all: within GB a referral goes ahead
        await consent_to(producer, db, survivor, Grantee(org_id=shelter.org_id), recorded_by=hotline.org_id)
    ask = request(survivor, hotline.org_id, full.org_id, allow_reroute=True)
    await send(producer, ask)
    await wait_for_events(settings, REFERRALS.name, subject=str(survivor), types=["referral.requested"])
    await send(producer, RejectReferral(referral_id=ask.referral_id, survivor_id=survivor, actor_org=full.org_id,
                                        reason=RejectionReason.NO_CAPACITY))  # fmt: skip
    wanted = ["referral.requested", "referral.received", "referral.rejected", "referral.requested"]
    events = await wait_for_events(settings, REFERRALS.name, subject=str(survivor), types=wanted)
    child = next(e.data for e in events if e.type == "referral.requested" and e.data.referral_id != ask.referral_id)  # type: ignore[attr-defined]
    assert isinstance(child, ReferralRequested)
    assert (child.recipient_org, child.border) == (local.org_id, None), "not across the border to FR"

    direct = request(survivor, hotline.org_id, abroad.org_id)
    sent = await send(producer, direct)
    assert [r[0] for r in (await refusals_for(settings, sent)).values()] == ["border_not_consented"]


async def test_two_instances_accepting_at_once_make_one_acceptance(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    hotline, shelter, survivor, _ = await hotline_and_shelter(producer, db)
    ask = request(survivor, hotline.org_id, shelter.org_id)
    await send(producer, ask)
    await wait_for_events(settings, REFERRALS.name, subject=str(survivor), types=["referral.requested"])
    accept = AcceptReferral(referral_id=ask.referral_id, survivor_id=survivor, actor_org=shelter.org_id)
    instances = [await create_pool(settings, schema="referrals") for _ in range(2)]
    both_in = asyncio.Barrier(2)

    async def accept_on(pool: Pool) -> str:
        async with pool.acquire() as conn, conn.transaction():
            await both_in.wait()
            try:
                await handlers.act(accept, UnitOfWork(conn))
            except DomainError as refused:
                return refused.code
            return "accepted"

    try:
        outcomes = await asyncio.gather(*(accept_on(pool) for pool in instances))
    finally:
        for pool in instances:
            await pool.close()

    assert sorted(outcomes) == ["accepted", "illegal_transition"]
    accepted = await db.fetchval(
        "SELECT count(*) FROM referrals.transitions WHERE referral_id = $1 AND to_status = 'accepted'", ask.referral_id
    )
    assert accepted == 1


async def test_revoking_consent_cancels_the_open_referrals_to_that_grantee(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    hotline, shelter, survivor, directive = await hotline_and_shelter(producer, db)
    ask = request(survivor, hotline.org_id, shelter.org_id)
    await send(producer, ask, AcceptReferral(referral_id=ask.referral_id, survivor_id=survivor,
                                             actor_org=shelter.org_id))  # fmt: skip
    await wait_for_events(settings, REFERRALS.name, subject=str(survivor), types=["referral.accepted"])

    await send(producer, RevokeConsent(survivor_id=survivor, directive_id=directive, revoked_by=hotline.org_id))

    events = await wait_for_events(settings, REFERRALS.name, subject=str(survivor), types=["referral.cancelled"])
    cancelled = next(e.data for e in events if e.type == "referral.cancelled")
    assert (cancelled.reason, cancelled.actor_org) == ("consent_withdrawn", "haven")  # type: ignore[attr-defined]


async def test_illegal_moves_and_bad_requests_are_refused_clearly_and_publish_nothing(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    hotline, shelter, survivor, _ = await hotline_and_shelter(producer, db)
    stranger = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    await register(producer, db, stranger)
    ok = request(survivor, hotline.org_id, shelter.org_id)
    await send(producer, ok)
    delivered = ["referral.requested", "referral.received"]  # the shelter service took it in
    await wait_for_events(settings, REFERRALS.name, subject=str(survivor), types=delivered)

    bad = [
        CompleteReferral(referral_id=ok.referral_id, survivor_id=survivor, actor_org=shelter.org_id, outcome="x"),
        AcceptReferral(referral_id=ok.referral_id, survivor_id=survivor, actor_org=hotline.org_id),
        request(survivor, stranger.org_id, shelter.org_id),
        request(survivor, hotline.org_id, "nowhere-shelter"),
        request(survivor, hotline.org_id, shelter.org_id, respond_by=datetime.now(UTC) + timedelta(days=3)),
        request(survivor, hotline.org_id, shelter.org_id, referral_type=ReferralType.LEGAL_AID),
    ]
    sent = await send(producer, *bad)

    refused = await refusals_for(settings, sent)
    reasons = [refused[e.id][0] for e in sent]
    assert reasons == ["illegal_transition", "not_a_party", "not_in_care_team", "unknown_recipient",
                       "respond_by_out_of_range", "service_not_offered"]  # fmt: skip
    assert "received cannot become completed" in refused[sent[0].id][1]
    events = await wait_for_events(settings, REFERRALS.name, subject=str(survivor), types=delivered)
    assert types_of(events, ok.referral_id) == delivered, "nothing published for the refusals"
    assert {getattr(e.data, "referrer_org", None) for e in events} == {hotline.org_id}, "the stranger referred nobody"


async def test_a_referral_without_consent_goes_ahead_sharing_nothing_and_the_recipient_decides(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    await register(producer, db, hotline, shelter)
    survivor = uuid4()
    await identified(producer, survivor, hotline.org_id)
    await consent_to(producer, db, survivor, Grantee(org_id=shelter.org_id), frozenset({Category.CASE_STATUS}),
                     recorded_by=hotline.org_id)  # fmt: skip
    ask = request(survivor, hotline.org_id, shelter.org_id)
    await send(producer, ask)
    events = await wait_for_events(settings, REFERRALS.name, subject=str(survivor), types=["referral.requested"])
    requested = next(e.data for e in events if e.type == "referral.requested")
    assert isinstance(requested, ReferralRequested)
    assert requested.categories == {Category.CASE_STATUS}, "what the survivor permits is shared"
    assert requested.withheld == {Category.IDENTITY, Category.CONTACT}, "and the rest is named as not shared"

    await send(producer, RejectReferral(referral_id=ask.referral_id, survivor_id=survivor, actor_org=shelter.org_id,
                                        reason=RejectionReason.INSUFFICIENT_INFORMATION))  # fmt: skip
    events = await wait_for_events(settings, REFERRALS.name, subject=str(survivor), types=["referral.rejected"])
    rejected = next(e.data for e in events if e.type == "referral.rejected")
    assert rejected.reason == "insufficient_information"  # type: ignore[attr-defined]


async def test_an_anonymous_capacity_query_lists_eligible_providers_best_first(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    women = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER, jurisdictions={"MT"},
                         eligibility={"genders": ["female"], "min_age": 18})  # fmt: skip
    anyone, full = (organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER, jurisdictions={"MT"})
                    for _ in range(2))  # fmt: skip
    await register(producer, db, women, anyone, full)
    for org, status, places in ((women, CapacityStatus.CAPACITY, 2), (anyone, CapacityStatus.CAPACITY, 5),
                                (full, CapacityStatus.NO_CAPACITY, 0)):  # fmt: skip
        await announce_capacity(producer, org, ReferralType.EMERGENCY_SHELTER, status, places)

    ours = {women.org_id, anyone.org_id, full.org_id}

    async def offers(seeker: Seeker) -> list[tuple[str, str, int]]:
        async with db.acquire() as conn:
            await conn.execute("SET search_path TO referrals")
            found = await queries.find_providers(conn, ReferralType.EMERGENCY_SHELTER, jurisdiction="MT", seeker=seeker)
        # Providers registered by earlier runs share the directory; these three are this test's.
        return [(o.org_id, o.status, o.available) for o in found if o.org_id in ours]

    async def capacity_known() -> bool:
        return (full.org_id, "no-capacity", 0) in await offers(Seeker())

    await eventually(capacity_known)
    assert await offers(Seeker(gender=Gender.MALE)) == [(anyone.org_id, "capacity", 5), (full.org_id, "no-capacity", 0)]
    assert [o for o, _, _ in await offers(Seeker(gender=Gender.FEMALE))] == [anyone.org_id, women.org_id, full.org_id]


async def test_an_onward_referral_stays_visible_to_the_original_referrer_as_far_as_consent_allows(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    clinic = organisation(OrgType.HEALTH_PROVIDER, ReferralType.MEDICAL)
    await register(producer, db, hotline, shelter, clinic)
    survivor = uuid4()
    await identified(producer, survivor, hotline.org_id)
    await consent_to(producer, db, survivor, Grantee(org_id=shelter.org_id), recorded_by=hotline.org_id)
    await consent_to(producer, db, survivor, Grantee(org_id=clinic.org_id), SHELTER_NEEDS | {Category.HEALTH},
                     recorded_by=hotline.org_id)  # fmt: skip
    first = request(survivor, hotline.org_id, shelter.org_id)
    onward = request(survivor, shelter.org_id, clinic.org_id, referral_type=ReferralType.MEDICAL,
                     urgency=Urgency.URGENT, parent_referral_id=first.referral_id)  # fmt: skip
    await send(producer, first, AcceptReferral(referral_id=first.referral_id, survivor_id=survivor,
                                               actor_org=shelter.org_id), onward)  # fmt: skip
    await wait_for_events(settings, REFERRALS.name, subject=str(survivor),
                          types=["referral.requested", "referral.accepted", "referral.requested"])  # fmt: skip

    async def chain_for(viewer: Party) -> tuple[list[UUID], int]:
        async with db.acquire() as conn:
            await conn.execute("SET search_path TO referrals")
            found = await queries.chain(conn, first.referral_id, viewer, datetime.now(UTC))
        return [r["referral_id"] for r in found.visible], found.hidden

    hotline_party = Party(hotline.org_id, OrgType.HOTLINE)
    assert await chain_for(hotline_party) == ([first.referral_id], 1), "the clinic link is not the hotline's to see"
    await consent_to(producer, db, survivor, Grantee(org_id=hotline.org_id), frozenset({Category.CASE_STATUS}),
                     recorded_by=hotline.org_id)  # fmt: skip
    assert await chain_for(hotline_party) == ([first.referral_id, onward.referral_id], 0)
