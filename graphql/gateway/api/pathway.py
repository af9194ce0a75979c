"""A survivor's service pathway, consent at the field."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

import strawberry
from pydantic import BaseModel

from events.consent import (
    Category,
)
from events.consent import Purpose as PurposeEnum
from events.employment import ProgramType, WageBand
from events.health import HealthService
from events.identification import Act, ExploitationPurpose, Indicator, Means, ScreeningOutcome, Sector
from events.identification import Contact as ContactModel
from events.identification import Identity as IdentityModel
from events.identification import Narrative as NarrativeModel
from events.legal_aid import MatterOutcome, MatterType, Milestone
from events.needs import ReferralType, Urgency
from events.referrals import ReferralStatus
from events.shelter import Destination, UnitType
from events.types import Sealed
from gateway.api.base import (
    HEALTH_REFERRALS,
    Info,
    Purpose,
    consent_scope,
    not_in_care_team,
    principal,
    survivor_uuid,
)
from gateway.api.inputs import coded
from gateway.auth import Role
from gateway.care import is_member
from gateway.consent import Consent, ConsentScope
from gateway.projection import MatterStatus, PlacementStatus
from services.kernel.crypto import DataKey

for _vocabulary in (Category, ReferralType, Urgency, ReferralStatus, ScreeningOutcome, Act, Means, ExploitationPurpose,
                    Indicator, Sector, UnitType, Destination, PlacementStatus, HealthService, Milestone, MatterType,
                    MatterStatus, MatterOutcome, ProgramType, WageBand):  # fmt: skip
    coded(_vocabulary)


@strawberry.type(description="Identity: category identity.")
class Identity:
    given_name: str
    family_name: str | None
    other_names: list[str]
    date_of_birth: date | None


@strawberry.type(description="How to reach the survivor safely: category contact.")
class Contact:
    phone: str | None
    email: str | None
    address: str | None
    safe_contact_instructions: str | None


@strawberry.type(description="The survivor's account: category narrative.")
class Narrative:
    acts: list[Act]
    means: list[Means]
    purposes: list[ExploitationPurpose]
    indicators: list[Indicator]
    sector: Sector
    story: str | None


@strawberry.type
class Need:
    referral_type: ReferralType
    urgency: Urgency
    reason: str = strawberry.field(description="Why, as a code (e.g. no_safe_accommodation).")


@strawberry.type
class Screening:
    outcome: ScreeningOutcome
    is_minor: bool
    screener_org: str
    identified_at: datetime


@strawberry.type
class Transition:
    status: ReferralStatus
    actor_org: str
    reason: str | None
    at: datetime


SURVIVOR = """
SELECT s.*, k.kid, k.wrapped_key, c.directives, c.revoked,
       (SELECT o.profile->'jurisdictions' FROM gateway.organisations o WHERE o.org_id = s.screener_org) AS home
  FROM gateway.survivors s LEFT JOIN keyring.data_keys k USING (survivor_id),
       LATERAL (SELECT array_agg(directive) AS directives, array_agg(revoked_at) AS revoked
                  FROM gateway.consent_directives WHERE survivor_id = s.survivor_id) c
 WHERE s.survivor_id = $1"""
"""A survivor's row, consent directives and wrapped data key (null once erased), in one round trip."""


REFERRALS = """
SELECT r.*, (SELECT array_agg(row(t.status, t.actor_org, t.reason, t.at) ORDER BY t.at)
               FROM gateway.transitions t WHERE t.referral_id = r.referral_id) AS moves
  FROM gateway.referrals r"""
"""Referral rows with their transitions (``moves``), in one round trip; callers add WHERE and ORDER BY."""


@strawberry.type(description="A border a referral crossed: from the survivor's jurisdictions to the recipient's.")
class BorderCrossed:
    survivor_jurisdictions: list[str] = strawberry.field(description="ISO 3166-1 alpha-2.")
    recipient_jurisdictions: list[str] = strawberry.field(description="ISO 3166-1 alpha-2.")

    @classmethod
    def of(cls, border: Any) -> BorderCrossed:
        return cls(survivor_jurisdictions=sorted(border["home"]), recipient_jurisdictions=sorted(border["recipient"]))


@strawberry.type
class Referral:
    id: strawberry.ID
    survivor_id: strawberry.ID
    referral_type: ReferralType
    urgency: Urgency
    status: ReferralStatus
    referrer_org: str
    recipient_org: str
    deadline: datetime
    parent_referral_id: strawberry.ID | None
    created_at: datetime
    updated_at: datetime
    transitions: list[Transition] = strawberry.field(description="Every move: who, when, and the coded reason.")
    shared_categories: list[Category] = strawberry.field(
        description="What the survivor's consent shares with the recipient through this referral."
    )
    withheld_categories: list[Category] = strawberry.field(
        description="What this type of referral could share but the survivor's consent does not: the recipient "
        "accepts without it (the survivor presents in person) or rejects with insufficient_information."
    )
    border: BorderCrossed | None = strawberry.field(
        description="The border this referral crossed, with the survivor's cross-border consent; null within one "
        "jurisdiction."
    )

    @strawberry.field(description="The referral this one re-routes or refers on from, if you may see it.")
    async def parent(self, info: Info) -> Referral | None:
        if self.parent_referral_id is None:
            return None
        row = await info.context["referrals"].load(UUID(str(self.parent_referral_id)))
        scope: ConsentScope | None = info.context["consent"]
        if row is None or scope is None:
            return None
        if scope.principal.org_id in (row["referrer_org"], row["recipient_org"]):
            return Referral.of(row)
        # Someone else's referral is survivor data: shown under case_status consent (health under health), audited.
        purpose = PurposeEnum.SERVICE_DELIVERY
        needed = [Category.CASE_STATUS] + ([Category.HEALTH] if row["referral_type"] in HEALTH_REFERRALS else [])
        for category in needed:
            if not (await scope.decide(row["survivor_id"], category, purpose)).permitted:
                return None
        scope.shown[(row["survivor_id"], purpose)].update(needed)
        return Referral.of(row)

    @classmethod
    def of(cls, r: Any) -> Referral:
        return cls(
            id=strawberry.ID(str(r["referral_id"])), survivor_id=strawberry.ID(str(r["survivor_id"])),
            referral_type=ReferralType(r["referral_type"]), urgency=Urgency(r["urgency"]),
            status=ReferralStatus(r["status"]),
            referrer_org=r["referrer_org"], recipient_org=r["recipient_org"], deadline=r["deadline"],
            parent_referral_id=strawberry.ID(str(r["parent_referral_id"])) if r["parent_referral_id"] else None,
            created_at=r["created_at"], updated_at=r["updated_at"],
            transitions=[Transition(status=ReferralStatus(m[0]), actor_org=m[1], reason=m[2], at=m[3])
                         for m in r["moves"] or []],
            shared_categories=[Category(c) for c in r["shared"]],
            withheld_categories=[Category(c) for c in r["withheld"]],
            border=BorderCrossed.of(r["border"]) if r["border"] else None,
        )  # fmt: skip


E = TypeVar("E", bound=Enum)


def _coded(vocabulary: type[E], value: str | None) -> E | None:
    """A stored code as its vocabulary's member (records fill in over several events: it may not be there yet)."""
    return None if value is None else vocabulary(value)


async def _open(info: Info, survivor_id: UUID, category: str, sealed: dict[str, Any] | None) -> bytes | None:
    if sealed is None:
        return None
    key: DataKey | None = await info.context["keys"].load(survivor_id)
    if key is None:
        return None  # erased: nothing can be opened any more
    return key.open(category, Sealed.model_validate(sealed))


@strawberry.type
class Placement:
    shelter_org: str
    unit_type: UnitType
    status: PlacementStatus
    destination: Destination | None
    survivor_id: strawberry.Private[UUID]
    purpose: strawberry.Private[PurposeEnum]
    sealed_location: strawberry.Private[dict[str, Any] | None]

    @strawberry.field(description="The shelter's address: category location.", extensions=[Consent(Category.LOCATION)])
    async def location(self, info: Info) -> str | None:
        opened = await _open(info, self.survivor_id, Category.LOCATION, self.sealed_location)
        return opened.decode() if opened else None


@strawberry.type
class HealthEngagement:
    provider_org: str
    engaged: bool
    survivor_id: strawberry.Private[UUID]
    purpose: strawberry.Private[PurposeEnum]
    sealed_detail: strawberry.Private[dict[str, Any] | None]
    service_type: strawberry.Private[str]

    @strawberry.field(description="The kind of care (e.g. mental_health): category health.",
                      extensions=[Consent(Category.HEALTH)])  # fmt: skip
    async def service(self) -> HealthService | None:
        return HealthService(self.service_type)

    @strawberry.field(description="Clinical detail: category health.", extensions=[Consent(Category.HEALTH)])
    async def clinical_detail(self, info: Info) -> str | None:
        opened = await _open(info, self.survivor_id, Category.HEALTH, self.sealed_detail)
        return opened.decode() if opened else None


@strawberry.type
class MatterMilestone:
    milestone: Milestone
    hearing_date: date | None

    @classmethod
    def of(cls, m: dict[str, Any]) -> MatterMilestone:
        hearing = m.get("hearing_date")
        return cls(milestone=Milestone(m["milestone"]), hearing_date=date.fromisoformat(hearing) if hearing else None)


@strawberry.type
class LegalMatter:
    clinic_org: str
    matter_type: MatterType | None
    status: MatterStatus | None
    outcome: MatterOutcome | None
    milestones: list[MatterMilestone]


@strawberry.type
class Enrolment:
    program_org: str
    program_type: ProgramType | None
    employed: bool | None
    wage_band: WageBand | None
    retained_3_months: bool | None
    retained_6_months: bool | None


@strawberry.type(description="A survivor's service pathway, as far as the survivor consented to share it with you.")
class Survivor:
    id: strawberry.ID
    survivor_id: strawberry.Private[UUID]
    purpose: strawberry.Private[PurposeEnum]
    row: strawberry.Private[Any]

    async def _opened(self, info: Info, category: str, model: type[BaseModel]) -> Any:
        sealed = self.row["profile"].get(category)
        opened = await _open(info, self.survivor_id, category, sealed)
        return model.model_validate_json(opened) if opened else None

    @strawberry.field(extensions=[Consent(Category.CASE_STATUS)])
    async def screening(self) -> Screening | None:
        r = self.row
        return Screening(outcome=ScreeningOutcome(r["outcome"]), is_minor=r["is_minor"], screener_org=r["screener_org"],
                         identified_at=r["identified_at"])  # fmt: skip

    @strawberry.field(extensions=[Consent(Category.IDENTITY)])
    async def identity(self, info: Info) -> Identity | None:
        found = await self._opened(info, Category.IDENTITY, IdentityModel)
        return Identity(given_name=found.given_name, family_name=found.family_name, other_names=list(found.other_names),
                        date_of_birth=found.date_of_birth) if found else None  # fmt: skip

    @strawberry.field(extensions=[Consent(Category.CONTACT)])
    async def contact(self, info: Info) -> Contact | None:
        found = await self._opened(info, Category.CONTACT, ContactModel)
        return Contact(**found.model_dump()) if found else None

    @strawberry.field(extensions=[Consent(Category.NARRATIVE)])
    async def narrative(self, info: Info) -> Narrative | None:
        found = await self._opened(info, Category.NARRATIVE, NarrativeModel)
        if found is None:
            return None
        return Narrative(acts=sorted(found.acts), means=sorted(found.means), purposes=sorted(found.purposes),
                         indicators=sorted(found.indicators), sector=found.sector, story=found.story)  # fmt: skip

    @strawberry.field(extensions=[Consent(Category.CASE_STATUS)])
    async def needs(self) -> list[Need] | None:
        return [Need(referral_type=ReferralType(n["referral_type"]), urgency=Urgency(n["urgency"]), reason=n["reason"])
                for n in self.row["needs"]]  # fmt: skip

    @strawberry.field(description="Referrals you made or received always; others only with case_status consent.")
    async def referrals(self, info: Info) -> list[Referral]:
        scope = consent_scope(info)
        mine = scope.principal.org_id
        rows = await info.context["pool"].fetch(f"{REFERRALS} WHERE r.survivor_id = $1 ORDER BY r.created_at",
                                                self.survivor_id)  # fmt: skip
        status_allowed = (await scope.decide(self.survivor_id, Category.CASE_STATUS, self.purpose)).permitted
        health_allowed = (await scope.decide(self.survivor_id, Category.HEALTH, self.purpose)).permitted
        shown = []
        for r in rows:
            if mine in (r["referrer_org"], r["recipient_org"]):
                shown.append(Referral.of(r))
            elif status_allowed and (health_allowed or r["referral_type"] not in HEALTH_REFERRALS):
                seen = scope.shown[(self.survivor_id, self.purpose)]
                seen.add(Category.CASE_STATUS)
                if r["referral_type"] in HEALTH_REFERRALS:
                    seen.add(Category.HEALTH)
                shown.append(Referral.of(r))
        return shown

    async def _records(self, info: Info, kind: str) -> list[Any]:
        rows: list[Any] = await info.context["records"].load(self.survivor_id)
        return [r for r in rows if r["kind"] == kind]

    @strawberry.field(extensions=[Consent(Category.CASE_STATUS)])
    async def placements(self, info: Info) -> list[Placement] | None:
        return [
            Placement(
                shelter_org=r["org_id"], unit_type=UnitType(r["state"]["unit_type"]),
                status=PlacementStatus(r["state"]["status"]),
                destination=Destination(r["state"]["destination"]) if r["state"].get("destination") else None,
                survivor_id=self.survivor_id, purpose=self.purpose,
                sealed_location=r["state"].get("location"),
            )
            for r in await self._records(info, "placement")
        ]  # fmt: skip

    @strawberry.field(description="Engagement in care (case_status); clinical detail needs health consent.",
                      extensions=[Consent(Category.CASE_STATUS)])  # fmt: skip
    async def health(self, info: Info) -> list[HealthEngagement] | None:
        return [HealthEngagement(provider_org=r["org_id"], service_type=r["state"].get("service"),
                                 engaged=bool(r["state"].get("engaged")), survivor_id=self.survivor_id,
                                 purpose=self.purpose, sealed_detail=r["state"].get("clinical_detail"))
                for r in await self._records(info, "health")]  # fmt: skip

    @strawberry.field(extensions=[Consent(Category.LEGAL)])
    async def legal_matters(self, info: Info) -> list[LegalMatter] | None:
        return [
            LegalMatter(
                clinic_org=r["org_id"], matter_type=_coded(MatterType, r["state"].get("matter_type")),
                status=_coded(MatterStatus, r["state"].get("status")),
                outcome=_coded(MatterOutcome, r["state"].get("outcome")),
                milestones=[MatterMilestone.of(m) for m in r["state"].get("milestones", [])],
            )
            for r in await self._records(info, "legal_matter")
        ]  # fmt: skip

    @strawberry.field(extensions=[Consent(Category.EMPLOYMENT)])
    async def employment(self, info: Info) -> list[Enrolment] | None:
        keys = ("employed", "retained_3_months", "retained_6_months")
        return [Enrolment(program_org=r["org_id"], program_type=_coded(ProgramType, r["state"].get("program_type")),
                          wage_band=_coded(WageBand, r["state"].get("wage_band")),
                          **{k: r["state"].get(k) for k in keys})
                for r in await self._records(info, "employment")]  # fmt: skip


@strawberry.type
class PathwayQuery:
    """A survivor's pathway."""

    @strawberry.field(description="A survivor's pathway; every read is recorded with its purpose.")
    async def survivor(self, info: Info, id: strawberry.ID, purpose: Purpose) -> Survivor | None:
        who = principal(info, Role.CASEWORKER, Role.INTAKE)
        survivor_id = survivor_uuid(id, "id")
        row = await info.context["pool"].fetchrow(SURVIVOR, survivor_id)
        if row is None:
            raise not_in_care_team(who)
        scope = consent_scope(info)
        scope.know(survivor_id, zip(row["directives"] or [], row["revoked"] or [], strict=True), row["home"])
        # Anyone outside the care team whom the survivor shares nothing with hears what a random id gets.
        if not await is_member(info.context["pool"], survivor_id, who.org_id, info.context["care_grace"]):
            purpose_ = PurposeEnum(purpose)
            if not any([(await scope.decision(survivor_id, c, purpose_)).permitted for c in Category]):
                raise not_in_care_team(who)
        key = row["wrapped_key"] and info.context["keyring"].unwrap(survivor_id, row["kid"], row["wrapped_key"])
        info.context["keys"].prime(survivor_id, key)
        return Survivor(id=id, survivor_id=survivor_id, purpose=PurposeEnum(purpose), row=row)
