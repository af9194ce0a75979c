"""Who I am, the service directory, the anonymous provider search, and provider actions."""

from __future__ import annotations

import json
from typing import Any

import strawberry

from events.base import EventData
from events.consent import OrgType
from events.directory import CapacityStatus, Organisation, Seeker, rank, serves
from events.directory import Offer as CapacityOffer
from events.employment import Enrol, RecordEmploymentOutcome
from events.health import DischargeFromCare, RecordEngagement
from events.identification import AgeBand, Gender
from events.legal_aid import CloseMatter, ConfigureClinic, OpenMatter, RecordMilestone
from events.needs import ReferralType
from events.referrals import ReferralStatus
from events.shelter import AcceptPlacement, CheckIn, CheckOut, ConfigureShelter
from gateway.api.base import Info, fail, principal, sealing, validated
from gateway.api.commands import Accepted, Wait, answer, check_wait, send_commands
from gateway.api.inputs import Shape, chosen, coded, input_type, one_of, plain, snake
from gateway.auth import Role

for _vocabulary in (OrgType, Role, ReferralType, CapacityStatus, AgeBand, Gender):
    coded(_vocabulary)


@strawberry.type
class Me:
    org_id: str
    org_type: OrgType
    role: Role


@strawberry.type(description="What a provider last announced for one service (and unit type, for shelters).")
class Capacity:
    service: ReferralType
    unit_type: str | None = strawberry.field(description="For shelters: the kind of bed (a UnitType's value).")
    status: CapacityStatus
    available: int


@strawberry.type
class Offer:
    org_id: str
    name: str
    org_type: OrgType
    capacity: list[Capacity]
    jurisdictions: list[str] = strawberry.field(
        description="Where it works (ISO 3166-1 alpha-2): a referral beyond the survivor's own needs cross-border "
        "consent."
    )


@strawberry.type(description="A provider that can take the person, with its best current capacity for the service.")
class ProviderOffer:
    org_id: str
    name: str
    status: CapacityStatus = strawberry.field(description="FHIR SDOH capacity status: capacity, waitlist …")
    available: int


def _capacity(stored: dict[str, Any] | None) -> list[Capacity]:
    """A read-model row's capacity entries (keyed ``service/unit``), typed."""
    out = []
    for key, entry in sorted((stored or {}).items()):
        c = json.loads(entry) if isinstance(entry, str) else entry  # rows projected before the capacity fix
        service, unit = key.split("/")
        out.append(Capacity(service=ReferralType(service), unit_type=None if unit == "-" else unit,
                            status=CapacityStatus(c["status"]), available=c["available"]))  # fmt: skip
    return out


def _best_offer(row: Any, service: ReferralType) -> tuple[Organisation, CapacityOffer] | None:
    """The organisation of a read-model row and its best capacity for ``service`` (None if it does not offer it)."""
    if row["profile"] is None:
        return None
    org = Organisation.model_validate(row["profile"])
    if service not in org.services:
        return None
    known = [c for c in _capacity(row["capacity"]) if c.service == service]
    best = rank(CapacityOffer(org.org_id, org.name, c.status, c.available) for c in known)
    fallback = CapacityOffer(org.org_id, org.name, CapacityStatus.ADDITIONAL_ASSESSMENT_REQUIRED, 0)
    return org, best[0] if best else fallback


PROVIDER_COMMANDS: dict[str, type[EventData]] = {
    snake(c.__name__): c
    for c in (ConfigureShelter, AcceptPlacement, CheckIn, CheckOut, ConfigureClinic, OpenMatter, RecordMilestone,
              CloseMatter, RecordEngagement, DischargeFromCare, Enrol, RecordEmploymentOutcome)
}  # fmt: skip
"""Provider actions a partner may send through the gateway; the actor is always the caller's organisation."""

ACTING = frozenset({"org_id", "actor_org"})
"""Who acts: the caller's organisation, never the input's."""

ProviderAction = one_of(
    "ProviderActionInput",
    {
        name: input_type(Shape(model, f"{model.__name__}Input", omit=ACTING))
        for name, model in PROVIDER_COMMANDS.items()
    },
    "One provider action (shelter beds and placements, legal matters, care, enrolments), from the contract's "
    "provider commands.",
)


@strawberry.type
class DirectoryQuery:
    """Organisations and capacity: no survivor data."""

    @strawberry.field
    def me(self, info: Info) -> Me:
        who = principal(info)
        return Me(org_id=who.org_id, org_type=who.org_type, role=who.role)

    @strawberry.field(description="The service directory with live capacity (no survivor data).")
    async def directory(self, info: Info, service: ReferralType | None = None) -> list[Offer]:
        principal(info)
        rows = await info.context["pool"].fetch(
            "SELECT * FROM gateway.organisations WHERE $1::text IS NULL OR profile->'services' ? $1 ORDER BY org_id",
            service,
        )
        return [Offer(org_id=r["org_id"], name=r["name"], org_type=OrgType(r["org_type"]),
                      capacity=_capacity(r["capacity"]),
                      jurisdictions=sorted((r["profile"] or {}).get("jurisdictions", []))) for r in rows]  # fmt: skip

    @strawberry.field(
        description="Who can take someone now, best first: an anonymous capacity search on coded needs only (no "
        "survivor, so no consent needed), for an intake worker before anything is recorded."
    )
    async def providers(
        self, info: Info, service: ReferralType, age_band: AgeBand = AgeBand.UNKNOWN,
        gender: Gender = Gender.UNDISCLOSED, language: str | None = None, wheelchair: bool = False,
        jurisdiction: str | None = None,
    ) -> list[ProviderOffer]:  # fmt: skip
        principal(info)
        kind, seeker = service, Seeker(age_band, gender, language, wheelchair)
        rows = await info.context["pool"].fetch("SELECT profile, capacity FROM gateway.organisations")
        offers = []
        for row in rows:
            found = _best_offer(row, kind)
            if found is None:
                continue
            org, offer = found
            if serves(org, seeker) and (jurisdiction is None or jurisdiction in org.jurisdictions):
                offers.append(offer)
        return [ProviderOffer(org_id=o.org_id, name=o.name, status=o.status, available=o.available)
                for o in rank(offers)]  # fmt: skip


@strawberry.type
class ProvidersMutation:
    """A provider's own actions."""

    @strawberry.mutation(description="A provider action: shelter beds and placements, matters, care, enrolments.")
    async def provider_action(self, info: Info, action: ProviderAction, wait: Wait = None) -> Accepted:  # type: ignore[valid-type]
        who = principal(info, Role.CASEWORKER, Role.ORG_ADMIN)
        check_wait(wait)
        name, given = chosen(action)
        model = PROVIDER_COMMANDS[name]
        acting = {field: who.org_id for field in ACTING if field in model.model_fields}
        fields = await sealing(info, model, {**plain(given), **acting})
        command = validated(model, fields)
        if "referral_id" in model.model_fields and (refusal := await _not_sent_to(info, command, who.org_id)):
            # The provider service parks a command until its referral reaches it, and would wait for ever for one
            # that never will: refused here first, with the service's own code as the reason.
            raise fail("FORBIDDEN", refusal[1], reason=refusal[0], field="action.referralId")
        return await answer(info, (await send_commands(info, command))[0], wait)


async def _not_sent_to(info: Info, command: Any, org_id: str) -> tuple[str, str] | None:
    """Why ``command``'s referral is not one the gateway has shown ``org_id`` as its recipient, or None if it is."""
    row = await info.context["pool"].fetchrow(
        "SELECT r.recipient_org AS recipient, r.status,"
        " EXISTS (SELECT 1 FROM gateway.erased_survivors WHERE survivor_id = $2) AS erased"
        " FROM (SELECT 1) one LEFT JOIN gateway.referrals r ON r.referral_id = $1 AND r.survivor_id = $2",
        command.referral_id, command.survivor_id,
    )  # fmt: skip
    assert row is not None  # a SELECT of two scalar subqueries returns one row
    if row["erased"]:
        return "survivor_erased", "this survivor's data was erased"
    if row["recipient"] is None:
        return "unknown_referral", "no such referral for this survivor"
    if row["recipient"] != org_id:
        return "not_the_recipient", f"{org_id} is not this referral's recipient"
    if command.event_type in TAKING_ON and row["status"] not in AWAITING:
        return "not_awaiting_answer", f"the referral is {row['status']}"
    return None


TAKING_ON = frozenset({AcceptPlacement.event_type, OpenMatter.event_type, Enrol.event_type})
"""Provider actions that answer a referral: only one still awaiting its answer (the service checks again)."""
AWAITING = frozenset({ReferralStatus.REQUESTED.value, ReferralStatus.RECEIVED.value})
