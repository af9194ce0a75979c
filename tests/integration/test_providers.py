"""Provider services on the real stack: each takes a referral in and sends its outcome back to the referrer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaProducer

from events.catalog import HEALTH, REFERRALS, SHELTER
from events.consent import Category, Grantee, OrgType
from events.employment import Enrol, ProgramType, RecordEmploymentOutcome, WageBand
from events.envelope import Envelope
from events.health import DischargeFromCare, HealthService, RecordEngagement
from events.legal_aid import (
    CloseMatter,
    ConfigureClinic,
    MatterOutcome,
    MatterType,
    Milestone,
    OpenMatter,
    RecordMilestone,
)
from events.needs import ReferralType, Urgency
from events.shelter import (
    AcceptPlacement,
    CheckIn,
    CheckOut,
    ConfigureShelter,
    Destination,
    PlacementReserved,
    UnitType,
)
from events.types import Sealed
from services.kernel.consumer import UnitOfWork
from services.kernel.crypto import Keyring, decode_master_key
from services.kernel.db import Pool, create_pool
from services.kernel.settings import Settings
from services.shelter import handlers as shelter_handlers
from services.shelter import repository as shelter_repository
from tests.support.intakes import identified, send
from tests.support.observe import eventually, read_to_end, wait_for_events
from tests.support.partners import organisation, register
from tests.support.processes import ServiceProcess, running
from tests.support.referrals import consent_to, refusals_for, request

EVERYTHING_NEEDED = frozenset(Category) - {Category.LOCATION}


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("service-logs")
    names = ["consent", "referrals", "shelter", "legal_aid", "health", "employment"]
    yield from running(logs, names)


@pytest.fixture
def keyring(settings: Settings) -> Keyring:
    return Keyring(decode_master_key(settings.master_key_text()))


@dataclass
class Referral:
    survivor: UUID
    referral_id: UUID
    referrer: str
    provider: str

    def act(self, **fields: Any) -> dict[str, Any]:
        return {"referral_id": self.referral_id, "survivor_id": self.survivor, "actor_org": self.provider, **fields}


async def refer(
    producer: AIOKafkaProducer, db: Pool, kind: OrgType, service: ReferralType, *, before: Any = None, **ask: Any
) -> Referral:
    """A hotline refers a consenting survivor to a new provider; returns once the provider has received it."""
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    provider = organisation(kind, service)
    await register(producer, db, hotline, provider)
    if before is not None:
        await before(provider.org_id)
    survivor = ask.pop("survivor", None) or uuid4()
    await identified(producer, survivor, hotline.org_id)
    for grantee in (provider.org_id, *ask.pop("also_consent_to", ())):
        await consent_to(producer, db, survivor, Grantee(org_id=grantee), EVERYTHING_NEEDED,
                         recorded_by=hotline.org_id)  # fmt: skip
    command = request(survivor, hotline.org_id, provider.org_id, referral_type=service, **ask)
    await send(producer, command)
    referral = Referral(survivor, command.referral_id, hotline.org_id, provider.org_id)

    async def provider_has_it() -> bool:
        return bool(await db.fetchval(
            f"SELECT 1 FROM {schema_of(kind)}.referrals_in WHERE referral_id = $1", command.referral_id))  # fmt: skip

    await eventually(provider_has_it)
    return referral


async def test_a_placement_accepted_before_the_request_reaches_the_shelter_waits_for_it_and_is_applied(
    services: dict[str, ServiceProcess], settings: Settings, producer: AIOKafkaProducer, db: Pool
) -> None:
    """A referral is received as it is requested, so a shelter's system may accept it before the shelter service has
    read the request: the acceptance waits (parked) for the referral, then takes its bed; it is not refused."""
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    await register(producer, db, hotline, shelter)
    await send(producer, ConfigureShelter(org_id=shelter.org_id, beds={UnitType.ADULT_WOMEN: 1}))
    survivor = uuid4()
    await identified(producer, survivor, hotline.org_id)
    await consent_to(producer, db, survivor, Grantee(org_id=shelter.org_id), EVERYTHING_NEEDED,
                     recorded_by=hotline.org_id)  # fmt: skip
    ask = request(survivor, hotline.org_id, shelter.org_id, referral_type=ReferralType.EMERGENCY_SHELTER)
    referral = Referral(survivor, ask.referral_id, hotline.org_id, shelter.org_id)
    accepted = await send(producer, AcceptPlacement(**referral.act(unit_type=UnitType.ADULT_WOMEN)))

    async def parked() -> bool:
        """The shelter holds the acceptance for a referral it has not read yet."""
        return bool(await db.fetchval("SELECT 1 FROM shelter.parked WHERE survivor_id = $1", survivor))

    await eventually(parked)
    await send(producer, ask)
    seen = await outcome_seen_by_referrer(settings, referral, "referral.accepted")
    assert [e.type for e in seen if e.data.referral_id == ask.referral_id] == [  # type: ignore[attr-defined]
        "referral.requested", "referral.received", "referral.accepted"]  # fmt: skip
    outcomes = await read_to_end(settings, "haven.outcomes")
    answers = [json.loads(m.value) for m in outcomes if json.loads(m.value).get("command_id") == str(accepted[0].id)]
    assert [a.get("code") for a in answers] == [None], "applied once, never refused"
    assert not await db.fetchval("SELECT 1 FROM shelter.parked WHERE survivor_id = $1", survivor)
    assert await db.fetchval("SELECT count(*) FROM shelter.placements WHERE referral_id = $1", ask.referral_id) == 1


async def test_the_shelter_service_refuses_a_placement_from_a_shelter_that_is_not_the_recipient(
    services: dict[str, ServiceProcess], settings: Settings, producer: AIOKafkaProducer, db: Pool
) -> None:
    """Straight to Kafka, past the gateway: refused by the service that owns the placement, whether it had read the
    referral already or parked the command until it had."""
    stranger = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    await register(producer, db, stranger)
    known = await refer(producer, db, OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    await register(producer, db, hotline)
    survivor = uuid4()
    await identified(producer, survivor, hotline.org_id)
    await consent_to(producer, db, survivor, Grantee(org_id=known.provider), EVERYTHING_NEEDED,
                     recorded_by=hotline.org_id)  # fmt: skip
    later = request(survivor, hotline.org_id, known.provider, referral_type=ReferralType.EMERGENCY_SHELTER)
    bed = {"actor_org": stranger.org_id, "unit_type": UnitType.ADULT_WOMEN}
    placements = [AcceptPlacement(referral_id=r, survivor_id=s, **bed)
                  for r, s in ((known.referral_id, known.survivor), (later.referral_id, survivor))]  # fmt: skip
    sent = await send(producer, *placements)  # the second before its referral exists: parked

    async def parked() -> bool:
        """The shelter holds the stranger's placement until the referral it names arrives."""
        return bool(await db.fetchval("SELECT 1 FROM shelter.parked WHERE survivor_id = $1", survivor))

    await eventually(parked)
    await send(producer, later)
    refused = await refusals_for(settings, sent)
    assert [refused[e.id][0] for e in sent] == ["not_the_recipient", "not_the_recipient"]


async def another_survivor(settings: Settings, producer: AIOKafkaProducer, db: Pool, first: Referral) -> Referral:
    """A second survivor referred to ``first``'s provider by the same referrer; returns once the referrer sees it
    received."""
    survivor = uuid4()
    await identified(producer, survivor, first.referrer)
    await consent_to(producer, db, survivor, Grantee(org_id=first.provider), EVERYTHING_NEEDED,
                     recorded_by=first.referrer)  # fmt: skip
    ask = request(survivor, first.referrer, first.provider)
    await send(producer, ask)
    second = Referral(survivor, ask.referral_id, first.referrer, first.provider)
    await outcome_seen_by_referrer(settings, second, "referral.received")
    return second


def schema_of(kind: OrgType) -> str:
    return {OrgType.SHELTER: "shelter", OrgType.LEGAL_CLINIC: "legal_aid", OrgType.HEALTH_PROVIDER: "health",
            OrgType.EMPLOYMENT_PROGRAM: "employment"}[kind]  # fmt: skip


async def outcome_seen_by_referrer(settings: Settings, referral: Referral, last: str) -> list[Envelope]:
    """The referrer's view: every referral event about this referral, ending in ``last``."""
    events = await wait_for_events(settings, REFERRALS.name, subject=str(referral.survivor), types=[last], timeout=45)
    mine = [e for e in events if getattr(e.data, "referral_id", None) == referral.referral_id]
    assert all(e.data.referrer_org == referral.referrer for e in mine)  # type: ignore[attr-defined]
    return mine


async def test_a_shelter_takes_a_referral_from_bed_to_check_out_and_the_referrer_sees_the_outcome(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer, keyring: Keyring
) -> None:
    marker = f"Quay{uuid4().hex[:10]} Street"

    async def beds_and_address(org_id: str) -> None:
        await send(producer, ConfigureShelter(org_id=org_id, beds={UnitType.ADULT_WOMEN: 2}))
        async with db.acquire() as conn:  # the shelter's own admin sets its address: it never travels
            await conn.execute("SET search_path TO shelter")
            await shelter_repository.set_address(conn, org_id, marker)

    survivor = uuid4()
    async with db.acquire() as conn:
        await keyring.create(conn, survivor)
    referral = await refer(producer, db, OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER,
                           before=beds_and_address, survivor=survivor)  # fmt: skip

    await send(producer, AcceptPlacement(**referral.act(unit_type=UnitType.ADULT_WOMEN)))
    await outcome_seen_by_referrer(settings, referral, "referral.accepted")
    await send(producer, CheckIn(**referral.act()))
    await outcome_seen_by_referrer(settings, referral, "referral.started")
    await send(producer, CheckOut(**referral.act(destination=Destination.TRANSITIONAL_HOUSING)))
    seen = await outcome_seen_by_referrer(settings, referral, "referral.completed")

    assert [e.type for e in seen] == ["referral.requested", "referral.received", "referral.accepted",
                                      "referral.started", "referral.completed"]  # fmt: skip
    assert seen[-1].data.reason == "left_for_transitional_housing"  # type: ignore[attr-defined]
    placements = await wait_for_events(
        settings,
        SHELTER.name,
        subject=str(survivor),
        types=["placement.reserved", "placement.checked_in", "placement.checked_out"],
    )
    reserved = next(e.data for e in placements if isinstance(e.data, PlacementReserved))
    assert isinstance(reserved.location, Sealed), "the address travels sealed"
    async with db.acquire() as conn:
        key = await keyring.get(conn, survivor)
    assert key.open(Category.LOCATION, reserved.location).decode() == marker
    raw = await read_to_end(settings, SHELTER.name)
    assert any(m.key == str(survivor).encode() for m in raw), "the scan reached this survivor's placement"
    assert not any(marker.encode() in (m.value or b"") for m in raw), "no plaintext address in Kafka"


async def test_two_concurrent_accepts_for_the_last_bed_make_one_placement(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    async def one_bed(org_id: str) -> None:
        await send(producer, ConfigureShelter(org_id=org_id, beds={UnitType.ADULT_MEN: 1}))

    first = await refer(producer, db, OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER, before=one_bed)
    second = await another_survivor(settings, producer, db, first)
    instances = [await create_pool(settings, schema="shelter") for _ in range(2)]
    both_in = asyncio.Barrier(2)

    async def accept_on(pool: Pool, referral: Referral) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await both_in.wait()
            command = AcceptPlacement(**referral.act(unit_type=UnitType.ADULT_MEN))
            await shelter_handlers.accept_placement(command, UnitOfWork(conn), keyring=Keyring(bytes(32)))

    try:
        await asyncio.gather(accept_on(instances[0], first), accept_on(instances[1], second))
    finally:
        for pool in instances:
            await pool.close()

    placed = await db.fetch("SELECT referral_id FROM shelter.placements WHERE org_id = $1", first.provider)
    assert len(placed) == 1, "one bed, one placement"
    winner, loser = (first, second) if placed[0]["referral_id"] == first.referral_id else (second, first)
    await outcome_seen_by_referrer(settings, winner, "referral.accepted")
    rejected = await outcome_seen_by_referrer(settings, loser, "referral.rejected")
    assert rejected[-1].data.reason == "no_capacity"  # type: ignore[attr-defined]


async def test_a_full_shelter_rejects_for_no_capacity_and_the_referral_is_rerouted(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    spare = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    await register(producer, db, spare)
    await send(producer, ConfigureShelter(org_id=spare.org_id, beds={UnitType.FAMILIES: 4}))

    async def no_beds(org_id: str) -> None:
        await send(producer, ConfigureShelter(org_id=org_id, beds={UnitType.FAMILIES: 0}))

    survivor = uuid4()

    async def spare_capacity_known() -> bool:
        return bool(await db.fetchval(
            "SELECT 1 FROM referrals.capacity WHERE org_id = $1 AND available = 4", spare.org_id))  # fmt: skip

    await eventually(spare_capacity_known)
    full = await refer(producer, db, OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER, before=no_beds,
                       survivor=survivor, allow_reroute=True, also_consent_to=(spare.org_id,))  # fmt: skip

    events = await wait_for_events(settings, REFERRALS.name, subject=str(survivor),
                                   types=["referral.rejected", "referral.requested", "referral.requested"])  # fmt: skip
    rejected = next(e.data for e in events if e.type == "referral.rejected")
    assert rejected.reason == "no_capacity"  # type: ignore[attr-defined]
    child = next(e.data for e in events if e.type == "referral.requested" and e.data.referral_id != full.referral_id)  # type: ignore[attr-defined]
    assert (child.recipient_org, child.parent_referral_id) == (spare.org_id, full.referral_id)  # type: ignore[attr-defined]


async def test_a_legal_clinic_opens_a_matter_records_a_hearing_and_reports_its_outcome(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    async def caseload(org_id: str) -> None:
        await send(producer, ConfigureClinic(org_id=org_id, max_open_matters=5))

    referral = await refer(producer, db, OrgType.LEGAL_CLINIC, ReferralType.LEGAL_AID, before=caseload,
                           urgency=Urgency.URGENT)  # fmt: skip
    matter = uuid4()
    on_matter = {"matter_id": matter, "survivor_id": referral.survivor, "actor_org": referral.provider}
    no_date = RecordMilestone(**on_matter, milestone=Milestone.HEARING_SCHEDULED)
    sent = await send(
        producer,
        OpenMatter(**referral.act(matter_id=matter, matter_type=MatterType.NON_PUNISHMENT)),
        no_date,
        RecordMilestone(**on_matter, milestone=Milestone.HEARING_SCHEDULED, hearing_date=date(2027, 2, 1)),
        CloseMatter(**on_matter, outcome=MatterOutcome.GRANTED),
    )

    seen = await outcome_seen_by_referrer(settings, referral, "referral.completed")
    assert [e.type for e in seen][-3:] == ["referral.accepted", "referral.started", "referral.completed"]
    assert seen[-1].data.reason == "matter_granted"  # type: ignore[attr-defined]
    refused = await refusals_for(settings, [sent[1]])
    assert refused[sent[1].id][0] == "hearing_date_required"
    hearings = await db.fetch("SELECT milestone, hearing_date FROM legal_aid.milestones WHERE matter_id = $1", matter)
    assert [(h["milestone"], h["hearing_date"]) for h in hearings] == [("hearing_scheduled", date(2027, 2, 1))]


async def test_health_shares_engagement_and_keeps_clinical_detail_sealed(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer, keyring: Keyring
) -> None:
    survivor = uuid4()
    async with db.acquire() as conn:
        key = await keyring.create(conn, survivor)
    referral = await refer(producer, db, OrgType.HEALTH_PROVIDER, ReferralType.MEDICAL, survivor=survivor,
                           urgency=Urgency.URGENT)  # fmt: skip
    marker = f"fracture{uuid4().hex[:10]}"
    wrong_field = key.seal(Category.IDENTITY, b"sealed for the wrong field")
    sent = await send(
        producer,
        RecordEngagement(**referral.act(service=HealthService.MEDICAL, engaged=True, clinical_detail=wrong_field)),
        RecordEngagement(
            **referral.act(
                service=HealthService.MEDICAL, engaged=True, clinical_detail=key.seal(Category.HEALTH, marker.encode())
            )
        ),
        DischargeFromCare(**referral.act(outcome="treatment_completed")),
    )

    seen = await outcome_seen_by_referrer(settings, referral, "referral.completed")
    assert seen[-1].data.reason == "treatment_completed"  # type: ignore[attr-defined]
    refused = await refusals_for(settings, [sent[0]])
    assert refused[sent[0].id][0] == "clinical_detail_unsealed"
    engagement = await wait_for_events(settings, HEALTH.name, subject=str(survivor),
                                       types=["health.engagement_changed"])  # fmt: skip
    assert [e.data.engaged for e in engagement] == [True]  # type: ignore[attr-defined]
    raw = await read_to_end(settings, HEALTH.name)
    assert any(m.key == str(survivor).encode() for m in raw), "the scan reached this survivor's engagement"
    assert not any(marker.encode() in (m.value or b"") for m in raw), "no plaintext clinical detail in Kafka"


async def test_employment_enrols_and_the_six_month_retention_completes_the_referral(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    referral = await refer(producer, db, OrgType.EMPLOYMENT_PROGRAM, ReferralType.EMPLOYMENT, urgency=Urgency.ROUTINE)
    enrolment = uuid4()
    progress = {"enrolment_id": enrolment, "survivor_id": referral.survivor, "actor_org": referral.provider}
    sent = await send(
        producer,
        Enrol(**referral.act(enrolment_id=enrolment, program_type=ProgramType.APPRENTICESHIP)),
        RecordEmploymentOutcome(**progress, employed=True, retained_6_months=True),
        RecordEmploymentOutcome(**progress, employed=True, wage_band=WageBand.MINIMUM_TO_1_5X, retained_3_months=True),
        RecordEmploymentOutcome(
            **progress,
            employed=True,
            wage_band=WageBand.MINIMUM_TO_1_5X,
            retained_3_months=True,
            retained_6_months=True,
        ),
    )

    seen = await outcome_seen_by_referrer(settings, referral, "referral.completed")
    assert seen[-1].data.reason == "employed_retained_6_months"  # type: ignore[attr-defined]
    refused = await refusals_for(settings, [sent[1]])
    assert refused[sent[1].id][0] == "retention_out_of_order"


async def test_a_provider_passes_over_the_referrals_of_other_providers_without_a_transaction_or_an_inbox_row(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    to_shelter = await refer(producer, db, OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    # The same survivor to a legal clinic, after: the same key, so the same partition of haven.referrals. Once legal
    # aid has this referral, it has read past every event of the shelter's before it.
    clinic = organisation(OrgType.LEGAL_CLINIC, ReferralType.LEGAL_AID)
    await register(producer, db, clinic)
    await consent_to(producer, db, to_shelter.survivor, Grantee(org_id=clinic.org_id), EVERYTHING_NEEDED,
                     recorded_by=to_shelter.referrer)  # fmt: skip
    to_clinic = request(to_shelter.survivor, to_shelter.referrer, clinic.org_id, referral_type=ReferralType.LEGAL_AID)
    await send(producer, to_clinic)

    async def clinic_has_it() -> bool:
        return bool(await db.fetchval(
            "SELECT 1 FROM legal_aid.referrals_in WHERE referral_id = $1", to_clinic.referral_id))  # fmt: skip

    await eventually(clinic_has_it)

    events = await wait_for_events(settings, REFERRALS.name, subject=str(to_shelter.survivor),
                                   types=["referral.requested", "referral.received", "referral.requested"])  # fmt: skip
    shelters = [e for e in events if e.data.referral_id == to_shelter.referral_id]  # type: ignore[attr-defined]
    assert {e.type for e in shelters} >= {"referral.requested", "referral.received"}
    assert all(e.data.referral_type is ReferralType.EMERGENCY_SHELTER for e in shelters)  # type: ignore[attr-defined]
    passed_over = await db.fetchval(
        "SELECT count(*) FROM legal_aid.inbox WHERE event_id = ANY($1::uuid[])", [e.id for e in shelters]
    )
    assert passed_over == 0, "legal aid opened no transaction and wrote no inbox row for the shelter's referral"
    assert await db.fetchval("SELECT count(*) FROM shelter.inbox WHERE event_id = ANY($1::uuid[])",
                             [e.id for e in shelters]) == len(shelters), "the shelter handled each one"  # fmt: skip
    assert await db.fetchval("SELECT 1 FROM legal_aid.referrals_in WHERE referral_id = $1", to_clinic.referral_id)
    assert not await db.fetchval(
        "SELECT 1 FROM legal_aid.referrals_in WHERE referral_id = $1", to_shelter.referral_id
    ), "nor keeps any trace of it"


async def test_the_free_bed_counter_and_each_beds_holder_follow_every_placement_and_retirement(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    async def three_beds(org_id: str) -> None:
        await send(producer, ConfigureShelter(org_id=org_id, beds={UnitType.ADULT_WOMEN: 3}))

    first = await refer(producer, db, OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER, before=three_beds)
    second = await another_survivor(settings, producer, db, first)
    for referral in (first, second):  # both placed, then the first checked in and out: one bed held, two free
        await send(producer, AcceptPlacement(**referral.act(unit_type=UnitType.ADULT_WOMEN)))
        await outcome_seen_by_referrer(settings, referral, "referral.accepted")
    await send(producer, CheckIn(**first.act()))
    await outcome_seen_by_referrer(settings, first, "referral.started")
    await send(producer, CheckOut(**first.act(destination=Destination.TRANSITIONAL_HOUSING)))
    await outcome_seen_by_referrer(settings, first, "referral.completed")
    await send(producer, ConfigureShelter(org_id=first.provider, beds={UnitType.ADULT_WOMEN: 2}))  # one free retires

    async def counted() -> bool:
        row = await db.fetchrow("SELECT beds, held FROM shelter.capacity WHERE org_id = $1", first.provider)
        return row is not None and (row["beds"], row["held"]) == (2, 1)

    await eventually(counted)
    recount = await db.fetchrow(
        "SELECT count(*) FILTER (WHERE NOT b.retired) AS beds, count(p.bed_id) FILTER (WHERE NOT b.retired) AS held"
        " FROM shelter.beds b LEFT JOIN shelter.placements p ON p.bed_id = b.bed_id"
        " AND p.status IN ('reserved', 'checked_in') WHERE b.org_id = $1",
        first.provider,
    )
    assert recount is not None
    assert (recount["beds"], recount["held"]) == (2, 1), "the counter says what counting every bed says"
    holders = await db.fetch(
        "SELECT b.held_by, p.referral_id FROM shelter.beds b LEFT JOIN shelter.placements p ON p.bed_id = b.bed_id"
        " AND p.status IN ('reserved', 'checked_in') WHERE b.org_id = $1",
        first.provider,
    )
    assert [r["held_by"] for r in holders if r["held_by"]] == [second.referral_id], "the one held bed is the second's"
    assert all(r["held_by"] == r["referral_id"] for r in holders), "each bed names the placement that holds it"
