"""Who I am, the service directory, the anonymous provider search, and provider actions."""

from __future__ import annotations

import json
from typing import Any

import strawberry
from strawberry.scalars import JSON

from events.base import EventData
from events.directory import CapacityStatus, Organisation, Seeker, rank, serves
from events.directory import Offer as CapacityOffer
from events.employment import Enrol, RecordEmploymentOutcome
from events.health import DischargeFromCare, RecordEngagement
from events.identification import AgeBand, Gender
from events.legal_aid import CloseMatter, ConfigureClinic, OpenMatter, RecordMilestone
from events.needs import ReferralType
from events.shelter import AcceptPlacement, CheckIn, CheckOut, ConfigureShelter
from gateway.api.base import Info, fail, json_object, principal, sealing_note, validated
from gateway.api.commands import Accepted, Wait, answer, check_wait, send_commands
from gateway.auth import Role


@strawberry.type
class Me:
    org_id: str
    org_type: str
    role: str


@strawberry.type
class Offer:
    org_id: str
    name: str
    org_type: str
    capacity: JSON


@strawberry.type(description="A provider that can take the person, with its best current capacity for the service.")
class ProviderOffer:
    org_id: str
    name: str
    status: str = strawberry.field(description="FHIR SDOH capacity status: capacity, waitlist, no-capacity …")
    available: int


def _best_offer(row: Any, service: ReferralType) -> tuple[Organisation, CapacityOffer] | None:
    """The organisation of a read-model row and its best capacity for ``service`` (None if it does not offer it)."""
    if row["profile"] is None:
        return None
    org = Organisation.model_validate(row["profile"])
    if service not in org.services:
        return None
    # Rows projected before the capacity fix hold each entry as JSON text; both read the same.
    entries = {key: json.loads(c) if isinstance(c, str) else c for key, c in (row["capacity"] or {}).items()}
    known = [c for key, c in entries.items() if key.split("/")[0] == service]
    best = rank(CapacityOffer(org.org_id, org.name, CapacityStatus(c["status"]), c["available"]) for c in known)
    fallback = CapacityOffer(org.org_id, org.name, CapacityStatus.ADDITIONAL_ASSESSMENT_REQUIRED, 0)
    return org, best[0] if best else fallback


PROVIDER_COMMANDS: dict[str, type[EventData]] = {
    c.event_type: c
    for c in (ConfigureShelter, AcceptPlacement, CheckIn, CheckOut, ConfigureClinic, OpenMatter, RecordMilestone,
              CloseMatter, RecordEngagement, DischargeFromCare, Enrol, RecordEmploymentOutcome)
}  # fmt: skip
"""Provider actions a partner may send through the gateway; the actor is always the caller's organisation."""


@strawberry.type
class DirectoryQuery:
    """Organisations and capacity: no survivor data."""

    @strawberry.field
    def me(self, info: Info) -> Me:
        who = principal(info)
        return Me(org_id=who.org_id, org_type=who.org_type, role=who.role)

    @strawberry.field(description="The service directory with live capacity (no survivor data).")
    async def directory(self, info: Info, service: str | None = None) -> list[Offer]:
        principal(info)
        rows = await info.context["pool"].fetch(
            "SELECT * FROM gateway.organisations WHERE $1::text IS NULL OR profile->'services' ? $1 ORDER BY org_id",
            service,
        )
        return [Offer(org_id=r["org_id"], name=r["name"], org_type=r["org_type"], capacity=r["capacity"]) for r in rows]

    @strawberry.field(
        description="Who can take someone now, best first: an anonymous capacity search on coded needs only (no "
        "survivor, so no consent needed), for an intake worker before anything is recorded."
    )
    async def providers(
        self, info: Info, service: str, age_band: str | None = None, gender: str | None = None,
        language: str | None = None, wheelchair: bool = False, jurisdiction: str | None = None,
    ) -> list[ProviderOffer]:  # fmt: skip
        principal(info)
        try:
            kind = ReferralType(service)
            seeker = Seeker(AgeBand(age_band or AgeBand.UNKNOWN), Gender(gender or Gender.UNDISCLOSED), language,
                            wheelchair)  # fmt: skip
        except ValueError as exc:
            raise fail("BAD_INPUT", f"not a code this API knows: {exc}", field="service") from None
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
    async def provider_action(self, info: Info, action: str, input: JSON, wait: Wait = None) -> Accepted:
        who = principal(info, Role.CASEWORKER, Role.ORG_ADMIN)
        check_wait(wait)
        model = PROVIDER_COMMANDS.get(action)
        if model is None:
            raise fail("BAD_INPUT", f"action: one of {', '.join(sorted(PROVIDER_COMMANDS))}", field="action")
        acting = {"org_id": who.org_id} if "org_id" in model.model_fields else {"actor_org": who.org_id}
        fields = await sealing_note(info, {**json_object(input), **acting})
        return await answer(info, (await send_commands(info, validated(model, fields)))[0], wait)
