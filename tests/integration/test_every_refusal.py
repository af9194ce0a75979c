"""Every refusal reaches whoever asked: for each code a service can refuse a command with, a partner's call
through the gateway that meets it, and the code that call gets back.

``test_every_refusal_code_has_a_scenario`` reads the codes from the source (``infra.errors_doc``, which also
writes docs/errors.md) and fails when a service gains a code that no scenario here shows reaching its caller.
A few codes guard against what the gateway already makes impossible (it mints the ids, seals the text, and its
schema requires what the contract does); for those the scenario shows what the caller gets instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaProducer
from gateway.api.inputs import variables
from gateway.auth import Role, create_key, create_organisation

from events.consent import Directive, OrgType
from events.employment import Enrol, RecordEmploymentOutcome
from events.health import DischargeFromCare, RecordEngagement
from events.identification import EraseSurvivor, ErasureReason
from events.legal_aid import CloseMatter, ConfigureClinic, OpenMatter, RecordMilestone
from events.needs import ReferralType
from events.shelter import AcceptPlacement, CheckIn, CheckOut, ConfigureShelter
from infra.errors_doc import refusal_codes
from services.kernel.db import Pool
from services.kernel.settings import Settings
from tests.support.gateway import (
    ACT,
    GRANT,
    MOVE,
    REFER,
    SCREEN,
    action,
    call,
    move,
    partner,
    referral,
    screened,
    screening,
    window,
)
from tests.support.intakes import send
from tests.support.observe import eventually
from tests.support.partners import organisation
from tests.support.processes import ServiceProcess, running

REVOKE = ("mutation($s: ID!, $d: ID!, $w: Int) { revokeConsent(survivorId: $s, directiveId: $d, wait: $w) {"
          " commandId outcome { status code field message } } }")  # fmt: skip
DECIDED = "query($id: ID!) { command(id: $id) { status code field message } }"
SERVICES = ("identification", "consent", "referrals", "shelter", "legal_aid", "health", "employment", "gateway")


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("service-logs")
    gateway = {"HAVEN_RATE_BURST": "1000", "HAVEN_ADDRESS_BURST": "5000"}
    yield from running(logs, SERVICES, gateway)


@dataclass
class World:
    """The partners every scenario shares (plain ids and keys: one world serves every test's event loop)."""

    hotline: str
    intake: str
    shelter: str
    shelter_key: str
    clinic: str
    clinic_key: str
    small_clinic: str
    small_clinic_key: str
    health: str
    health_key: str
    program: str
    program_key: str
    unlisted_intake: str  # an organisation the gateway knows and the directory does not (yet)
    adult: UUID
    abroad: str  # a shelter in FR; the others are in GB


@dataclass
class Run:
    """What a scenario needs: the world, the database and a producer (for erasure, which is no partner's)."""

    world: World
    db: Pool
    producer: AIOKafkaProducer
    settings: Settings

    async def answer(self, key: str, query: str, values: dict[str, Any], wait: int | None = 10_000) -> dict[str, Any]:
        return await answer(self.settings, key, query, values, wait)

    async def decided(self, key: str, command_id: str) -> dict[str, Any]:
        """A command's outcome once its service decided (for commands sent without waiting)."""
        found: dict[str, Any] = {}

        async def done() -> bool:
            _, body = await call(self.settings, key, DECIDED, {"id": command_id})
            found.update(body["data"]["command"])
            return bool(found["status"] != "PENDING")

        await eventually(done, timeout=30)
        return found

    async def refer(self, to: str, kind: ReferralType, survivor: UUID | None = None, **more: Any) -> str:
        """A referral from the hotline, applied, and arrived at the provider's service; its id."""
        sid = survivor or self.world.adult
        made = await self.answer(self.world.intake, REFER, {"r": referral(sid, to, referral_type=kind, **more)})
        assert made["status"] == "APPLIED", made
        referral_id: str = made["_answer"]["referralId"]
        schema = {ReferralType.EMERGENCY_SHELTER: "shelter", ReferralType.LEGAL_AID: "legal_aid",
                  ReferralType.MENTAL_HEALTH: "health", ReferralType.EMPLOYMENT: "employment"}.get(kind)  # fmt: skip
        if schema is not None:
            await eventually(lambda: self.status(schema, referral_id))
        return referral_id

    async def status(self, schema: str, referral_id: str) -> str | None:
        """The referral's status as the provider's service last heard it."""
        found: str | None = await self.db.fetchval(
            f"SELECT status FROM {schema}.referrals_in WHERE referral_id = $1", UUID(referral_id)
        )
        return found

    async def act(self, key: str, model: type[Any], **fields: Any) -> dict[str, Any]:
        return await answer(self.settings, key, ACT, {"a": action(model, **fields)})

    async def move(
        self, key: str, referral_id: str, name: str, survivor: UUID | None = None, **fields: Any
    ) -> dict[str, Any]:
        sid = str(survivor or self.world.adult)
        return await self.answer(key, MOVE, {"id": referral_id, "s": sid, "m": move(name, **fields)})

    async def grant(self, key: str, survivor: UUID, wait: int | None = 10_000, **fields: Any) -> dict[str, Any]:
        directive = {"grantee": {"org_type": "shelter"}, "categories": ["case_status"], **fields}
        return await self.answer(key, GRANT, {"s": str(survivor), "d": variables(Directive, window(**directive))},
                                 wait)  # fmt: skip


async def answer(
    settings: Settings, key: str, query: str, values: dict[str, Any], wait: int | None = 10_000
) -> dict[str, Any]:
    """The mutation's outcome, or its error (``{"status": "ERROR", "code", "reason", "field"}``)."""
    _, body = await call(settings, key, query, {**values, "w": wait})
    if body.get("errors"):
        extensions = body["errors"][0].get("extensions", {})
        return {"status": "ERROR", "code": extensions.get("code"), "reason": extensions.get("reason"),
                "field": extensions.get("field")}  # fmt: skip
    (answered,) = body["data"].values()
    return {**answered["outcome"], "_answer": answered}


_WORLD: list[World] = []


async def world(settings: Settings, db: Pool) -> World:
    """The shared partners, made on first use: registered, keyed, and known to every service."""
    if _WORLD:
        return _WORLD[0]
    orgs = {
        "hotline": organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL),
        "shelter": organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER),
        "clinic": organisation(OrgType.LEGAL_CLINIC, ReferralType.LEGAL_AID),
        "small_clinic": organisation(OrgType.LEGAL_CLINIC, ReferralType.LEGAL_AID),
        "health": organisation(OrgType.HEALTH_PROVIDER, ReferralType.MENTAL_HEALTH),
        "program": organisation(OrgType.EMPLOYMENT_PROGRAM, ReferralType.EMPLOYMENT),
        "abroad": organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER, jurisdictions=frozenset({"FR"})),
    }
    keys = {name: await partner(db, org, Role.CASEWORKER) for name, org in orgs.items()}
    unlisted = f"hotline-{uuid4().hex[:8]}"
    async with db.acquire() as conn:
        intake = await create_key(conn, orgs["hotline"].org_id, Role.INTAKE)
        await create_organisation(conn, unlisted, "Not yet in the directory", OrgType.HOTLINE)
        unlisted_intake = await create_key(conn, unlisted, Role.INTAKE)
    ids = [o.org_id for o in orgs.values()]
    await eventually(lambda: _known(db, ids), timeout=45)
    for name, configure in (("shelter", action(ConfigureShelter, beds={"adult_women": 5, "adult_men": 5, "minors": 2})),
                            ("clinic", action(ConfigureClinic, max_open_matters=100)),
                            ("small_clinic", action(ConfigureClinic, max_open_matters=1))):  # fmt: skip
        configured = await answer(settings, keys[name], ACT, {"a": configure})
        assert configured["status"] == "APPLIED", configured
    adult = await screened(settings, db, intake)
    made = World(
        hotline=orgs["hotline"].org_id, intake=intake, shelter=orgs["shelter"].org_id, shelter_key=keys["shelter"],
        clinic=orgs["clinic"].org_id, clinic_key=keys["clinic"], small_clinic=orgs["small_clinic"].org_id,
        small_clinic_key=keys["small_clinic"], health=orgs["health"].org_id, health_key=keys["health"],
        program=orgs["program"].org_id, program_key=keys["program"], unlisted_intake=unlisted_intake, adult=adult,
        abroad=orgs["abroad"].org_id,
    )  # fmt: skip
    _WORLD.append(made)
    return made


async def _known(db: Pool, orgs: list[str]) -> bool:
    return bool(await db.fetchval("SELECT count(*) = $2 FROM referrals.organisations WHERE org_id = ANY($1)",
                                  orgs, len(orgs)))  # fmt: skip


Scenario = Callable[[Run], Awaitable[dict[str, Any]]]
REACHES_THE_CALLER: dict[str, Scenario] = {}
"""Code -> a partner's call that the owning service refuses with it; the caller reads it in its outcome."""
ANSWERED_INSTEAD: dict[str, tuple[dict[str, Any], Scenario]] = {}
"""Code -> what the caller gets for the same attempt, and the attempt: the gateway makes the case impossible."""


def refused(code: str) -> Callable[[Scenario], Scenario]:
    def register(scenario: Scenario) -> Scenario:
        REACHES_THE_CALLER[code] = scenario
        return scenario

    return register


def instead(refusal: str, /, **answered: Any) -> Callable[[Scenario], Scenario]:
    def register(scenario: Scenario) -> Scenario:
        ANSWERED_INSTEAD[refusal] = (answered, scenario)
        return scenario

    return register


# ---------------------------------------------------------------- referrals


@refused("service_not_offered")
async def _refer_for_a_service_the_recipient_does_not_offer(r: Run) -> dict[str, Any]:
    return await r.answer(r.world.intake, REFER, {"r": referral(r.world.adult, r.world.clinic)})


@refused("unknown_recipient")
async def _refer_to_an_organisation_not_in_the_directory(r: Run) -> dict[str, Any]:
    return await r.answer(r.world.intake, REFER, {"r": referral(r.world.adult, f"shelter-{uuid4().hex[:8]}")})


@refused("border_not_consented")
async def _refer_across_a_border_the_survivors_consent_does_not_reach(r: Run) -> dict[str, Any]:
    return await r.answer(r.world.intake, REFER, {"r": referral(r.world.adult, r.world.abroad)})


@refused("self_referral")
async def _refer_to_oneself(r: Run) -> dict[str, Any]:
    ask = referral(r.world.adult, r.world.hotline, referral_type="psychosocial")
    return await r.answer(r.world.intake, REFER, {"r": ask})


@refused("respond_by_out_of_range")
async def _ask_for_an_answer_in_the_past(r: Run) -> dict[str, Any]:
    ask = referral(r.world.adult, r.world.shelter, respond_by=datetime.now(UTC) - timedelta(hours=1))
    return await r.answer(r.world.intake, REFER, {"r": ask})


@refused("unknown_parent")
async def _refer_onward_from_a_referral_that_does_not_exist(r: Run) -> dict[str, Any]:
    ask = referral(r.world.adult, r.world.shelter, parent_referral_id=str(uuid4()))
    return await r.answer(r.world.intake, REFER, {"r": ask})


@refused("not_a_party")
async def _refer_onward_from_a_referral_one_made_rather_than_received(r: Run) -> dict[str, Any]:
    made = await r.refer(r.world.shelter, ReferralType.EMERGENCY_SHELTER)
    ask = referral(r.world.adult, r.world.clinic, referral_type="legal_aid", parent_referral_id=made)
    return await r.answer(r.world.intake, REFER, {"r": ask})


@refused("unknown_referrer")
async def _refer_before_the_directory_knows_the_referrer(r: Run) -> dict[str, Any]:
    survivor = await screened(r.settings, r.db, r.world.unlisted_intake)
    return await r.answer(r.world.unlisted_intake, REFER, {"r": referral(survivor, r.world.shelter)})


@refused("unknown_referral")
async def _move_a_referral_that_does_not_exist(r: Run) -> dict[str, Any]:
    return await r.move(r.world.shelter_key, str(uuid4()), "accept")


@refused("illegal_transition")
async def _complete_a_referral_never_accepted(r: Run) -> dict[str, Any]:
    made = await r.refer(r.world.shelter, ReferralType.EMERGENCY_SHELTER)
    return await r.move(r.world.shelter_key, made, "complete", outcome="housed")


@refused("survivor_erased")
async def _move_a_referral_of_a_survivor_since_erased(r: Run) -> dict[str, Any]:
    survivor = await screened(r.settings, r.db, r.world.intake)
    made = await r.refer(r.world.shelter, ReferralType.EMERGENCY_SHELTER, survivor)
    await send(r.producer, EraseSurvivor(survivor_id=survivor, requested_by=r.world.hotline,
                                         reason=ErasureReason.SURVIVOR_REQUEST))  # fmt: skip

    async def erased_everywhere() -> bool:
        return bool(await r.db.fetchval(
            "SELECT (SELECT count(*) FROM referrals.erased_survivors WHERE survivor_id = $1)"
            " + (SELECT count(*) FROM shelter.erased_survivors WHERE survivor_id = $1) = 2", survivor,
        ))  # fmt: skip

    await eventually(erased_everywhere)
    return await r.act(r.world.shelter_key, AcceptPlacement, referral_id=made, survivor_id=str(survivor),
                       unit_type="adult_women")  # fmt: skip


@refused("not_in_care_team")
async def _grant_consent_for_someone_elses_survivor(r: Run) -> dict[str, Any]:
    # The gateway refuses it first, with the service's own code as the reason (the service would refuse it too:
    # tests/integration/test_authority.py sends the same command straight to Kafka).
    return await r.grant(r.world.clinic_key, await screened(r.settings, r.db, r.world.intake))


# ---------------------------------------------------------------- consent and identification


@refused("stale_version")
async def _record_the_next_version_twice_at_once(r: Run) -> dict[str, Any]:
    first = await r.grant(r.world.intake, r.world.adult)
    directive_id = await r.db.fetchval(
        "SELECT directive_id FROM consent.directives WHERE survivor_id = $1 ORDER BY recorded_at DESC LIMIT 1",
        r.world.adult,
    )
    assert first["status"] == "APPLIED", first
    await eventually(lambda: _projected(r.db, directive_id))
    sent = [await r.grant(r.world.intake, r.world.adult, wait=None, directive_id=str(directive_id)) for _ in range(2)]
    outcomes = [await r.decided(r.world.intake, s["_answer"]["commandId"]) for s in sent]
    assert outcomes[0]["status"] == "APPLIED", outcomes
    return outcomes[1]


async def _projected(db: Pool, directive_id: UUID) -> bool:
    return bool(await db.fetchval("SELECT 1 FROM gateway.consent_directives WHERE directive_id = $1", directive_id))


@refused("already_expired")
async def _consent_that_ended_yesterday(r: Run) -> dict[str, Any]:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    return await r.grant(r.world.intake, r.world.adult, valid_from=(yesterday - timedelta(days=1)).isoformat(),
                         valid_until=yesterday.isoformat())  # fmt: skip


@refused("unknown_directive")
async def _revoke_a_directive_that_does_not_exist(r: Run) -> dict[str, Any]:
    return await r.answer(r.world.intake, REVOKE, {"s": str(r.world.adult), "d": str(uuid4())})


async def _child(r: Run) -> UUID:
    return await screened(r.settings, r.db, r.world.intake, presumed_minor=True, statistics__age_band="age_9_17")


@refused("child_basis_required")
async def _a_childs_consent_alone(r: Run) -> dict[str, Any]:
    return await r.grant(r.world.intake, await _child(r))


@refused("justification_required")
async def _a_guardians_consent_without_a_reason(r: Run) -> dict[str, Any]:
    return await r.grant(r.world.intake, await _child(r), basis="guardian", approvers=["cw-1", "cw-2"])


@refused("second_approver_required")
async def _a_childs_directive_approved_once(r: Run) -> dict[str, Any]:
    return await r.grant(r.world.intake, await _child(r), basis="best_interest", justification="no guardian found",
                         approvers=["cw-1"])  # fmt: skip


@refused("idempotency_key_reused")
async def _the_same_key_for_another_screening(r: Run) -> dict[str, Any]:
    first = screening()
    applied = await r.answer(r.world.intake, SCREEN, {"s": first})
    assert applied["status"] == "APPLIED", applied
    return await r.answer(r.world.intake, SCREEN, {"s": {**first, "outcome": "POSSIBLE_VICTIM"}})


@instead("consent_method_required", status="ERROR", code="GRAPHQL_VALIDATION_FAILED")
async def _consent_without_saying_how_it_was_obtained(r: Run) -> dict[str, Any]:
    directive = variables(Directive, window(grantee={"org_type": "shelter"}, categories=["case_status"]))
    del directive["obtained"]  # DirectiveInput.obtained is required
    return await r.answer(r.world.intake, GRANT, {"s": str(r.world.adult), "d": directive})


@instead("directive_of_another_survivor", status="ERROR", code="BAD_INPUT", field="directiveId")
async def _the_next_version_of_another_survivors_directive(r: Run) -> dict[str, Any]:
    other = await screened(r.settings, r.db, r.world.intake)
    assert (await r.grant(r.world.intake, other))["status"] == "APPLIED"
    theirs = await r.db.fetchval("SELECT directive_id FROM consent.directives WHERE survivor_id = $1", other)
    await eventually(lambda: _projected(r.db, theirs))
    return await r.grant(r.world.intake, r.world.adult, directive_id=str(theirs))


@instead("seal_broken", status="APPLIED")
@instead("survivor_key_missing", status="APPLIED")
async def _a_screening_is_sealed_by_the_gateway_with_a_key_it_makes(r: Run) -> dict[str, Any]:
    # A partner never seals: the gateway makes the survivor's key and seals each part in one transaction.
    return await r.answer(r.world.intake, SCREEN, {"s": screening()})


@instead("duplicate_referral", status="ERROR", code="GRAPHQL_VALIDATION_FAILED")
async def _a_referral_id_chosen_by_the_caller(r: Run) -> dict[str, Any]:
    ask = {**referral(r.world.adult, r.world.shelter), "referralId": str(uuid4())}  # Haven mints referral ids
    return await r.answer(r.world.intake, REFER, {"r": ask})


@instead("not_an_oversight_body", status="ERROR", code="FORBIDDEN")
async def _statistics_asked_for_by_a_shelter(r: Run) -> dict[str, Any]:
    # Only an oversight body may hold the oversight role; test_statistics sends the command past the gateway.
    release = 'mutation { releaseStatistics(dimensions: [GENDER], period: "2026", wait: 10000) { commandId } }'
    return await r.answer(r.world.shelter_key, release, {})


@instead("not_your_organisation", status="ERROR", code="FORBIDDEN")
async def _an_organisations_figures_asked_for_by_its_caseworker(r: Run) -> dict[str, Any]:
    # The gateway scopes an admin's release to the admin's own organisation (no argument names another), and a
    # caseworker may ask for none; test_statistics sends another organisation's scope past the gateway.
    release = 'mutation { releaseStatistics(dimensions: [ESCALATION], period: "2026", wait: 10000) { commandId } }'
    return await r.answer(r.world.shelter_key, release, {})


# ---------------------------------------------------------------- shelter


@refused("negative_beds")
async def _a_negative_number_of_beds(r: Run) -> dict[str, Any]:
    return await r.act(r.world.shelter_key, ConfigureShelter, beds={"adult_women": -1})


def _bed(referral_id: str, unit: str = "adult_women") -> dict[str, Any]:
    return {"referral_id": referral_id, "unit_type": unit}


@refused("unit_unsuitable")
async def _a_mens_bed_for_a_woman(r: Run) -> dict[str, Any]:
    # The gender travels sealed (statistics); the shelter opens it with the survivor's key to match beds.
    made = await r.refer(r.world.shelter, ReferralType.EMERGENCY_SHELTER)
    return await r.act(r.world.shelter_key, AcceptPlacement, survivor_id=str(r.world.adult), **_bed(made, "adult_men"))


@refused("already_placed")
async def _two_caseworkers_place_the_same_referral_at_once(r: Run) -> dict[str, Any]:
    made = await r.refer(r.world.shelter, ReferralType.EMERGENCY_SHELTER)
    fields = {"survivor_id": str(r.world.adult), **_bed(made)}
    sent = await asyncio.gather(*(r.act(r.world.shelter_key, AcceptPlacement, **fields) for _ in range(2)))
    assert all(s["status"] != "ERROR" for s in sent), sent
    outcomes = sorted([s for s in sent if s["status"] != "APPLIED"], key=lambda s: s["status"])
    assert len(outcomes) == 1, sent
    return outcomes[0]


@refused("no_reserved_bed")
async def _check_in_without_a_bed(r: Run) -> dict[str, Any]:
    made = await r.refer(r.world.shelter, ReferralType.EMERGENCY_SHELTER)
    return await r.act(r.world.shelter_key, CheckIn, referral_id=made, survivor_id=str(r.world.adult))


@refused("not_checked_in")
async def _check_out_someone_never_checked_in(r: Run) -> dict[str, Any]:
    made = await r.refer(r.world.shelter, ReferralType.EMERGENCY_SHELTER)
    return await r.act(r.world.shelter_key, CheckOut, referral_id=made, survivor_id=str(r.world.adult),
                       destination="unknown")  # fmt: skip


@refused("not_awaiting_answer")
async def _place_a_referral_already_rejected(r: Run) -> dict[str, Any]:
    made = await r.refer(r.world.shelter, ReferralType.EMERGENCY_SHELTER)
    rejected = await r.move(r.world.shelter_key, made, "reject", reason="ineligible")
    assert rejected["status"] == "APPLIED", rejected
    await eventually(lambda: _status_is(r, "shelter", made, "rejected"))
    return await r.act(r.world.shelter_key, AcceptPlacement, survivor_id=str(r.world.adult), **_bed(made))


async def _status_is(r: Run, schema: str, referral_id: str, status: str) -> bool:
    return await r.status(schema, referral_id) == status


@refused("not_the_recipient")
async def _place_another_providers_referral(r: Run) -> dict[str, Any]:
    made = await r.refer(r.world.shelter, ReferralType.EMERGENCY_SHELTER)
    return await r.act(r.world.clinic_key, AcceptPlacement, survivor_id=str(r.world.adult), **_bed(made))


# ---------------------------------------------------------------- legal aid


def _matter(referral_id: str, matter_id: str) -> dict[str, Any]:
    return {"referral_id": referral_id, "matter_id": matter_id, "matter_type": "labour_claim"}


@refused("caseload_full")
async def _open_a_matter_beyond_the_clinics_caseload(r: Run) -> dict[str, Any]:
    first, second = [await r.refer(r.world.small_clinic, ReferralType.LEGAL_AID) for _ in range(2)]
    opened = await r.act(r.world.small_clinic_key, OpenMatter, survivor_id=str(r.world.adult),
                         **_matter(first, str(uuid4())))  # fmt: skip
    assert opened["status"] == "APPLIED", opened
    return await r.act(r.world.small_clinic_key, OpenMatter, survivor_id=str(r.world.adult),
                       **_matter(second, str(uuid4())))  # fmt: skip


async def _open_matter(r: Run) -> str:
    made, matter = await r.refer(r.world.clinic, ReferralType.LEGAL_AID), str(uuid4())
    opened = await r.act(r.world.clinic_key, OpenMatter, survivor_id=str(r.world.adult), **_matter(made, matter))
    assert opened["status"] == "APPLIED", opened
    return matter


@refused("matter_exists")
async def _open_a_matter_under_an_id_in_use(r: Run) -> dict[str, Any]:
    matter = await _open_matter(r)
    another = await r.refer(r.world.clinic, ReferralType.LEGAL_AID)
    return await r.act(r.world.clinic_key, OpenMatter, survivor_id=str(r.world.adult), **_matter(another, matter))


@refused("hearing_date_required")
async def _schedule_a_hearing_without_its_date(r: Run) -> dict[str, Any]:
    return await r.act(r.world.clinic_key, RecordMilestone, matter_id=await _open_matter(r),
                       survivor_id=str(r.world.adult), milestone="hearing_scheduled")  # fmt: skip


@refused("matter_closed")
async def _a_milestone_after_the_matter_closed(r: Run) -> dict[str, Any]:
    matter = await _open_matter(r)
    closed = await r.act(r.world.clinic_key, CloseMatter, matter_id=matter, survivor_id=str(r.world.adult),
                         outcome="withdrawn")  # fmt: skip
    assert closed["status"] == "APPLIED", closed
    return await r.act(r.world.clinic_key, RecordMilestone, matter_id=matter, survivor_id=str(r.world.adult),
                       milestone="application_filed")  # fmt: skip


@refused("unknown_matter")
async def _a_milestone_of_no_matter(r: Run) -> dict[str, Any]:
    return await r.act(r.world.clinic_key, RecordMilestone, matter_id=str(uuid4()), survivor_id=str(r.world.adult),
                       milestone="application_filed")  # fmt: skip


# ---------------------------------------------------------------- health


@refused("not_in_care")
async def _discharge_someone_never_in_care(r: Run) -> dict[str, Any]:
    made = await r.refer(r.world.health, ReferralType.MENTAL_HEALTH)
    return await r.act(r.world.health_key, DischargeFromCare, referral_id=made, survivor_id=str(r.world.adult),
                       outcome="completed_treatment")  # fmt: skip


@instead("clinical_detail_unsealed", status="APPLIED")
async def _clinical_detail_is_sealed_for_health_by_the_gateway(r: Run) -> dict[str, Any]:
    made = await r.refer(r.world.health, ReferralType.MENTAL_HEALTH)
    return await r.act(r.world.health_key, RecordEngagement, referral_id=made, survivor_id=str(r.world.adult),
                       service="mental_health", engaged=True, clinical_detail="weekly sessions")  # fmt: skip


# ---------------------------------------------------------------- employment


async def _enrolled(r: Run) -> str:
    made, enrolment = await r.refer(r.world.program, ReferralType.EMPLOYMENT), str(uuid4())
    enrolled = await r.act(r.world.program_key, Enrol, referral_id=made, survivor_id=str(r.world.adult),
                           enrolment_id=enrolment, program_type="vocational_training")  # fmt: skip
    assert enrolled["status"] == "APPLIED", enrolled
    return enrolment


@refused("already_enrolled")
async def _enrol_under_an_id_in_use(r: Run) -> dict[str, Any]:
    enrolment = await _enrolled(r)
    another = await r.refer(r.world.program, ReferralType.EMPLOYMENT)
    return await r.act(r.world.program_key, Enrol, referral_id=another, survivor_id=str(r.world.adult),
                       enrolment_id=enrolment, program_type="vocational_training")  # fmt: skip


@refused("unknown_enrolment")
async def _an_outcome_for_no_enrolment(r: Run) -> dict[str, Any]:
    return await r.act(r.world.program_key, RecordEmploymentOutcome, enrolment_id=str(uuid4()),
                       survivor_id=str(r.world.adult), employed=True)  # fmt: skip


@refused("wage_without_job")
async def _a_wage_without_a_job(r: Run) -> dict[str, Any]:
    return await r.act(r.world.program_key, RecordEmploymentOutcome, enrolment_id=await _enrolled(r),
                       survivor_id=str(r.world.adult), employed=False, wage_band="minimum_to_1_5x")  # fmt: skip


@refused("retention_out_of_order")
async def _retained_at_six_months_but_not_at_three(r: Run) -> dict[str, Any]:
    return await r.act(r.world.program_key, RecordEmploymentOutcome, enrolment_id=await _enrolled(r),
                       survivor_id=str(r.world.adult), employed=True, retained_3_months=False,
                       retained_6_months=True)  # fmt: skip


# ---------------------------------------------------------------- the tests


def test_every_refusal_code_has_a_scenario() -> None:
    codes = refusal_codes()
    shown = set(REACHES_THE_CALLER) | set(ANSWERED_INSTEAD)
    assert not set(REACHES_THE_CALLER) & set(ANSWERED_INSTEAD)
    assert codes - shown == set(), "a service refuses with these, and no scenario here shows a caller hearing it"
    assert shown - codes == set(), "no service raises these any more"


@pytest.mark.parametrize("code", sorted(REACHES_THE_CALLER))
async def test_the_refusal_reaches_the_caller_with_its_code(
    code: str, services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    run = Run(await world(settings, db), db, producer, settings)
    answer = await REACHES_THE_CALLER[code](run)
    if answer["status"] == "ERROR":  # refused by the gateway first, with the service's code as its reason
        assert (answer["code"], answer["reason"]) == ("FORBIDDEN", code), answer
    else:
        assert (answer["status"], answer["code"]) == ("REFUSED", code), answer
        assert answer["message"], "with a message for people"


@pytest.mark.parametrize("code", sorted(ANSWERED_INSTEAD))
async def test_what_the_gateway_makes_impossible_is_answered_with_its_own_code(
    code: str, services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    run = Run(await world(settings, db), db, producer, settings)
    expected, scenario = ANSWERED_INSTEAD[code]
    answer = await scenario(run)
    assert {k: answer.get(k) for k in expected} == expected, answer
