"""The GraphQL schema: a survivor's pathway (consent at the field), inboxes, the directory, mutations.

``python -m gateway.schema`` prints the SDL; ``graphql/schema.graphql`` is the committed copy.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sys
import time
from collections.abc import AsyncGenerator, Iterator
from datetime import date, datetime
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID, uuid4

import strawberry
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, ValidationError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info

from events.base import EventData
from events.care import NOT_IN_CARE_TEAM
from events.consent import (
    FREE_TEXT,
    Category,
    ConsentRecord,
    Directive,
    GrantConsent,
    OrgType,
    Party,
    RevokeConsent,
    decide,
)
from events.consent import Purpose as PurposeEnum
from events.directory import CapacityStatus, Organisation, Seeker, rank, serves
from events.directory import Offer as CapacityOffer
from events.employment import Enrol, RecordEmploymentOutcome
from events.envelope import Envelope
from events.health import DischargeFromCare, RecordEngagement
from events.identification import AgeBand, Gender, ScreeningIntake, SealedProfile
from events.identification import Contact as ContactModel
from events.identification import Identity as IdentityModel
from events.identification import Narrative as NarrativeModel
from events.legal_aid import CloseMatter, ConfigureClinic, OpenMatter, RecordMilestone
from events.needs import ReferralType
from events.referrals import (
    SHARED_AT_MOST,
    AcceptReferral,
    CancelReferral,
    CompleteReferral,
    FailReferral,
    MarkReferralEnteredInError,
    PutReferralOnHold,
    ReceiveReferral,
    RecordSurvivorDecline,
    RejectReferral,
    RequestReferral,
    ResumeReferral,
    StartReferral,
    sharing,
)
from events.shelter import AcceptPlacement, CheckIn, CheckOut, ConfigureShelter
from events.types import Sealed
from gateway import audit, webhooks
from gateway.audit import AuditReads
from gateway.auth import Principal, Role
from gateway.care import is_member
from gateway.consent import Consent, ConsentScope
from gateway.projection import INBOX_CHANNEL, MOVES_CHANNEL, OUTCOMES_CHANNEL
from graphql import ExecutionResult, GraphQLError
from services.kernel import outbox
from services.kernel.crypto import DataKey, SurvivorKeyMissing
from services.kernel.db import Connection

SDL = Path(__file__).parent.parent / "schema.graphql"
SOURCE = "haven/gateway"
TRACER = trace.get_tracer("haven.gateway")

Purpose = strawberry.enum(PurposeEnum, description="Why the data is read; recorded in the access audit.")


def fail(code: str, message: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


def principal(info: Info, *roles: Role) -> Principal:
    who: Principal | None = info.context["principal"]
    if who is None:
        raise fail("UNAUTHENTICATED", "send an API key: Authorization: Bearer <key>")
    if roles and who.role not in roles:
        raise fail("FORBIDDEN", f"the {who.role} role may not do this; it needs {' or '.join(roles)}")
    return who


def survivor_uuid(value: object, field: str) -> UUID:
    """A survivor or directive id from input; anything else is BAD_INPUT naming the field."""
    try:
        return UUID(str(value))
    except ValueError:
        raise fail("BAD_INPUT", f"{field}: not an id this API gave out", field=field) from None


def not_in_care_team(who: Principal) -> GraphQLError:
    """The one answer for a survivor that does not exist and for one whose care team the caller is not in."""
    return fail(
        "FORBIDDEN",
        f"{who.org_id} is not in the care team of a survivor with this id",
        reason=NOT_IN_CARE_TEAM,
    )


async def require_member(info: Info, survivor_id: UUID) -> Principal:
    """The caller, once shown to be in the survivor's care team (the owning service checks again)."""
    who = principal(info)
    if not await is_member(info.context["pool"], survivor_id, who.org_id, info.context["care_grace"]):
        raise not_in_care_team(who)
    return who


HEALTH_REFERRALS = frozenset(t for t, shared in SHARED_AT_MOST.items() if Category.HEALTH in shared)
"""Referral types whose very name says something about the survivor's health."""


# ---------------------------------------------------------------- types


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
    acts: list[str]
    means: list[str]
    purposes: list[str]
    indicators: list[str]
    sector: str
    story: str | None


@strawberry.type
class Need:
    referral_type: str
    urgency: str
    reason: str


@strawberry.type
class Screening:
    outcome: str
    is_minor: bool
    screener_org: str
    identified_at: datetime


@strawberry.type
class Transition:
    status: str
    actor_org: str
    reason: str | None
    at: datetime


SURVIVOR = """
SELECT s.*, k.kid, k.wrapped_key, c.directives, c.revoked
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


@strawberry.type
class Referral:
    id: strawberry.ID
    survivor_id: strawberry.ID
    referral_type: str
    urgency: str
    status: str
    referrer_org: str
    recipient_org: str
    deadline: datetime
    parent_referral_id: strawberry.ID | None
    created_at: datetime
    updated_at: datetime
    transitions: list[Transition] = strawberry.field(description="Every move: who, when, and the coded reason.")
    shared_categories: list[str] = strawberry.field(
        description="What the survivor's consent shares with the recipient through this referral."
    )
    withheld_categories: list[str] = strawberry.field(
        description="What this type of referral could share but the survivor's consent does not: the recipient "
        "accepts without it (the survivor presents in person) or rejects with insufficient_information."
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
            referral_type=r["referral_type"], urgency=r["urgency"], status=r["status"],
            referrer_org=r["referrer_org"], recipient_org=r["recipient_org"], deadline=r["deadline"],
            parent_referral_id=strawberry.ID(str(r["parent_referral_id"])) if r["parent_referral_id"] else None,
            created_at=r["created_at"], updated_at=r["updated_at"],
            transitions=[Transition(status=m[0], actor_org=m[1], reason=m[2], at=m[3]) for m in r["moves"] or []],
            shared_categories=list(r["shared"]), withheld_categories=list(r["withheld"]),
        )  # fmt: skip


@strawberry.type
class ReferralPage:
    items: list[Referral]
    end_cursor: str | None
    has_next_page: bool


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
    unit_type: str
    status: str
    destination: str | None
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
    async def service(self) -> str | None:
        return self.service_type

    @strawberry.field(description="Clinical detail: category health.", extensions=[Consent(Category.HEALTH)])
    async def clinical_detail(self, info: Info) -> str | None:
        opened = await _open(info, self.survivor_id, Category.HEALTH, self.sealed_detail)
        return opened.decode() if opened else None


@strawberry.type
class Milestone:
    milestone: str
    hearing_date: date | None

    @classmethod
    def of(cls, m: dict[str, Any]) -> Milestone:
        hearing = m.get("hearing_date")
        return cls(milestone=m["milestone"], hearing_date=date.fromisoformat(hearing) if hearing else None)


@strawberry.type
class LegalMatter:
    clinic_org: str
    matter_type: str | None
    status: str | None
    outcome: str | None
    milestones: list[Milestone]


@strawberry.type
class Enrolment:
    program_org: str
    program_type: str | None
    employed: bool | None
    wage_band: str | None
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
        return Screening(outcome=r["outcome"], is_minor=r["is_minor"], screener_org=r["screener_org"],
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
        return [Need(**n) for n in self.row["needs"]]

    @strawberry.field(description="Referrals you made or received always; others only with case_status consent.")
    async def referrals(self, info: Info) -> list[Referral]:
        scope: ConsentScope = info.context["consent"]
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
                shelter_org=r["org_id"], unit_type=r["state"].get("unit_type"), status=r["state"].get("status"),
                destination=r["state"].get("destination"), survivor_id=self.survivor_id, purpose=self.purpose,
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
                clinic_org=r["org_id"], matter_type=r["state"].get("matter_type"), status=r["state"].get("status"),
                outcome=r["state"].get("outcome"),
                milestones=[Milestone.of(m) for m in r["state"].get("milestones", [])],
            )
            for r in await self._records(info, "legal_matter")
        ]  # fmt: skip

    @strawberry.field(extensions=[Consent(Category.EMPLOYMENT)])
    async def employment(self, info: Info) -> list[Enrolment] | None:
        keys = ("program_type", "employed", "wage_band", "retained_3_months", "retained_6_months")
        return [Enrolment(program_org=r["org_id"], **{k: r["state"].get(k) for k in keys})
                for r in await self._records(info, "employment")]  # fmt: skip


@strawberry.type
class Offer:
    org_id: str
    name: str
    org_type: str
    capacity: JSON


@strawberry.type
class AccessRecord:
    org_id: str
    role: str
    categories: list[str]
    purpose: str
    at: datetime


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


@strawberry.type(description="One attempt to deliver one message.")
class WebhookAttempt:
    at: datetime
    status_code: int | None
    error: str | None


@strawberry.type(description="A message queued for an endpoint, and what became of it.")
class WebhookDelivery:
    message_id: str = strawberry.field(description="webhook-id: the same for every attempt (for your idempotency).")
    event_type: str
    status: str = strawberry.field(description="pending, delivered or failed")
    attempts: int
    queued_at: datetime
    delivered_at: datetime | None
    log: list[WebhookAttempt]


@strawberry.type(description="A webhook endpoint of my organisation.")
class WebhookEndpoint:
    id: strawberry.ID
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None

    @strawberry.field(description="The latest deliveries, newest first, with every attempt.")
    async def deliveries(self, info: Info, first: int = 20) -> list[WebhookDelivery]:
        if not 1 <= first <= 100:
            raise fail("BAD_INPUT", "first: between 1 and 100", field="first")
        rows = await info.context["pool"].fetch(
            """
            SELECT d.*, (SELECT array_agg(row(a.at, a.status_code, a.error) ORDER BY a.at)
                           FROM gateway.webhook_attempts a
                          WHERE a.webhook_id = d.webhook_id AND a.message_id = d.message_id) AS log
              FROM gateway.webhook_deliveries d WHERE d.webhook_id = $1 ORDER BY d.queued_at DESC LIMIT $2
            """,
            UUID(str(self.id)), first,
        )  # fmt: skip
        return [WebhookDelivery(message_id=r["message_id"], event_type=r["event_type"], status=r["status"],
                                attempts=r["attempts"], queued_at=r["queued_at"], delivered_at=r["delivered_at"],
                                log=[WebhookAttempt(at=a[0], status_code=a[1], error=a[2]) for a in r["log"] or []])
                for r in rows]  # fmt: skip


@strawberry.type(description="A new endpoint: keep the secret, it is shown only now.")
class WebhookRegistration:
    endpoint: WebhookEndpoint
    secret: str = strawberry.field(description="whsec_…: verify each delivery's webhook-signature with it.")


def _endpoint(r: Any) -> WebhookEndpoint:
    return WebhookEndpoint(id=strawberry.ID(str(r["webhook_id"])), url=r["url"], events=list(r["event_types"]),
                           enabled=r["enabled"], disabled_reason=r["disabled_reason"])  # fmt: skip


@strawberry.type
class AuditChain:
    records: int
    intact: bool
    broken_at: int | None
    problem: str | None


@strawberry.type
class Sharing:
    shared: list[str]
    withheld: list[str]


@strawberry.type
class Me:
    org_id: str
    org_type: str
    role: str


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode()


def _after(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        seq = int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("seq:"))
    except ValueError:
        seq = -1
    if not 0 <= seq < 2**63:
        raise fail("BAD_CURSOR", "after: not a cursor this API gave out", field="after")
    return seq


async def _page(info: Info, column: str, org: str, first: int, after: str | None) -> ReferralPage:
    if not 1 <= first <= 100:
        raise fail("BAD_INPUT", "first: between 1 and 100", field="first")
    rows = await info.context["pool"].fetch(
        f"{REFERRALS} WHERE r.{column} = $1 AND r.seq > $2 ORDER BY r.seq LIMIT $3",
        org, _after(after), first + 1,
    )  # fmt: skip
    items = rows[:first]
    return ReferralPage(items=[Referral.of(r) for r in items], end_cursor=_cursor(items[-1]["seq"]) if items else after,
                        has_next_page=len(rows) > first)  # fmt: skip


@strawberry.type
class Query:
    @strawberry.field
    def me(self, info: Info) -> Me:
        who = principal(info)
        return Me(org_id=who.org_id, org_type=who.org_type, role=who.role)

    @strawberry.field(description="A survivor's pathway; every read is recorded with its purpose.")
    async def survivor(self, info: Info, id: strawberry.ID, purpose: Purpose) -> Survivor | None:  # type: ignore[valid-type]
        who = principal(info, Role.CASEWORKER, Role.INTAKE)
        survivor_id = survivor_uuid(id, "id")
        row = await info.context["pool"].fetchrow(SURVIVOR, survivor_id)
        if row is None:
            raise not_in_care_team(who)
        scope: ConsentScope = info.context["consent"]
        scope.know(survivor_id, zip(row["directives"] or [], row["revoked"] or [], strict=True))
        # Anyone outside the care team whom the survivor shares nothing with hears what a random id gets.
        if not await is_member(info.context["pool"], survivor_id, who.org_id, info.context["care_grace"]):
            records = await scope.records(survivor_id)
            purpose_ = PurposeEnum(purpose)
            if not any(decide(records, who.party, c, purpose_, scope.at).permitted for c in Category):
                raise not_in_care_team(who)
        key = row["wrapped_key"] and info.context["keyring"].unwrap(survivor_id, row["kid"], row["wrapped_key"])
        info.context["keys"].prime(survivor_id, key)
        return Survivor(id=id, survivor_id=survivor_id, purpose=PurposeEnum(purpose), row=row)

    @strawberry.field(description="Referrals addressed to my organisation, oldest first.")
    async def inbox(self, info: Info, first: int = 20, after: str | None = None) -> ReferralPage:
        who = principal(info, Role.CASEWORKER, Role.ORG_ADMIN)
        return await _page(info, "recipient_org", who.org_id, first, after)

    @strawberry.field(description="Referrals my organisation made, with their current state.")
    async def my_referrals(self, info: Info, first: int = 20, after: str | None = None) -> ReferralPage:
        who = principal(info)
        return await _page(info, "referrer_org", who.org_id, first, after)

    @strawberry.field(description="The service directory with live capacity (no survivor data).")
    async def directory(self, info: Info, service: str | None = None) -> list[Offer]:
        principal(info)
        rows = await info.context["pool"].fetch(
            "SELECT * FROM gateway.organisations WHERE $1::text IS NULL OR profile->'services' ? $1 ORDER BY org_id",
            service,
        )
        return [Offer(org_id=r["org_id"], name=r["name"], org_type=r["org_type"], capacity=r["capacity"]) for r in rows]

    @strawberry.field(
        description="Who saw what of this survivor, and when. The survivor's care team sees every read; an "
        "auditor sees the reads its own organisation made; an oversight body sees every read."
    )
    async def access_ledger(self, info: Info, survivor_id: strawberry.ID) -> list[AccessRecord]:
        who = principal(info, Role.CASEWORKER, Role.INTAKE, Role.AUDITOR, Role.OVERSIGHT)
        sid = survivor_uuid(survivor_id, "survivorId")
        pool = info.context["pool"]
        if who.role is Role.AUDITOR:
            rows = await pool.fetch(
                "SELECT * FROM gateway.audit_log WHERE survivor_id = $1 AND org_id = $2 ORDER BY seq", sid, who.org_id
            )
        else:
            if who.role is not Role.OVERSIGHT:
                await require_member(info, sid)
            rows = await pool.fetch("SELECT * FROM gateway.audit_log WHERE survivor_id = $1 ORDER BY seq", sid)
        return [AccessRecord(org_id=r["org_id"], role=r["role"], categories=list(r["categories"]),
                             purpose=r["purpose"], at=r["at"]) for r in rows]  # fmt: skip

    @strawberry.field(description="What became of one of my organisation's commands (null for anyone else's).")
    async def command(self, info: Info, id: strawberry.ID) -> CommandOutcome | None:
        who = principal(info)
        command_id = survivor_uuid(id, "id")
        row = await info.context["pool"].fetchrow(
            "SELECT * FROM gateway.command_outcomes WHERE command_id = $1 AND org_id = $2", command_id, who.org_id
        )
        return CommandOutcome.of(row) if row else None

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

    @strawberry.field(description="My organisation's webhook endpoints and their delivery logs (org_admin).")
    async def webhooks(self, info: Info) -> list[WebhookEndpoint]:
        who = principal(info, Role.ORG_ADMIN)
        rows = await info.context["pool"].fetch(
            "SELECT * FROM gateway.webhooks WHERE org_id = $1 ORDER BY created_at", who.org_id
        )
        return [_endpoint(r) for r in rows]

    @strawberry.field(description="Whether the access audit's hash chain is intact (oversight bodies only).")
    async def audit_chain(self, info: Info) -> AuditChain:
        principal(info, Role.OVERSIGHT)
        async with info.context["pool"].acquire() as conn:
            verdict = await audit.verify(conn)
        return AuditChain(records=verdict.rows, intact=verdict.broken_at is None, broken_at=verdict.broken_at,
                          problem=verdict.problem)  # fmt: skip

    @strawberry.field(
        description="Before referring: what a referral of this type to this organisation would share, and what "
        "the survivor's consent withholds (the referral goes ahead either way; the recipient decides)."
    )
    async def referral_sharing(
        self, info: Info, survivor_id: strawberry.ID, recipient_org: str, referral_type: str,
        purpose: Purpose = PurposeEnum.SERVICE_DELIVERY,  # type: ignore[valid-type]
    ) -> Sharing:  # fmt: skip
        principal(info, Role.INTAKE, Role.CASEWORKER)
        sid = survivor_uuid(survivor_id, "survivorId")
        await require_member(info, sid)
        try:
            kind = ReferralType(referral_type)
        except ValueError:
            raise fail("BAD_INPUT", f"referralType: one of {', '.join(ReferralType)}", field="referralType") from None
        org_type = await info.context["pool"].fetchval(
            "SELECT org_type FROM gateway.organisations WHERE org_id = $1", recipient_org
        )
        if org_type is None:
            raise fail("BAD_INPUT", "recipientOrg: not in the directory", field="recipientOrg")
        scope: ConsentScope = info.context["consent"]
        records: list[ConsentRecord] = await scope.records(sid)
        shared, withheld = sharing(records, Party(recipient_org, OrgType(org_type)), SHARED_AT_MOST[kind],
                                   PurposeEnum(purpose), scope.at)  # fmt: skip
        return Sharing(shared=sorted(shared), withheld=sorted(withheld))


# ---------------------------------------------------------------- mutations


class ReferralMove(StrEnum):
    RECEIVE = "receive"
    ACCEPT = "accept"
    START = "start"
    PUT_ON_HOLD = "put_on_hold"
    RESUME = "resume"
    COMPLETE = "complete"
    FAIL = "fail"
    REJECT = "reject"
    RECORD_SURVIVOR_DECLINE = "record_survivor_decline"
    CANCEL = "cancel"
    MARK_ENTERED_IN_ERROR = "mark_entered_in_error"


MOVES: dict[ReferralMove, type[EventData]] = {
    ReferralMove.RECEIVE: ReceiveReferral, ReferralMove.ACCEPT: AcceptReferral, ReferralMove.START: StartReferral,
    ReferralMove.PUT_ON_HOLD: PutReferralOnHold, ReferralMove.RESUME: ResumeReferral,
    ReferralMove.COMPLETE: CompleteReferral, ReferralMove.FAIL: FailReferral, ReferralMove.REJECT: RejectReferral,
    ReferralMove.RECORD_SURVIVOR_DECLINE: RecordSurvivorDecline, ReferralMove.CANCEL: CancelReferral,
    ReferralMove.MARK_ENTERED_IN_ERROR: MarkReferralEnteredInError,
}  # fmt: skip
Move = strawberry.enum(ReferralMove)

PROVIDER_COMMANDS: dict[str, type[EventData]] = {
    c.event_type: c
    for c in (ConfigureShelter, AcceptPlacement, CheckIn, CheckOut, ConfigureClinic, OpenMatter, RecordMilestone,
              CloseMatter, RecordEngagement, DischargeFromCare, Enrol, RecordEmploymentOutcome)
}  # fmt: skip
"""Provider actions a partner may send through the gateway; the actor is always the caller's organisation."""


async def sealed_text(info: Info, survivor_id: UUID, text: object, field: str) -> dict[str, Any]:
    """Free text a partner typed, sealed with the survivor's key before it travels (category FREE_TEXT)."""
    if not isinstance(text, str) or not 1 <= len(text) <= 500:
        problems = [{"field": field, "message": "text of 1 to 500 characters"}]
        raise fail("VALIDATION_FAILED", f"invalid input — {field}: text of 1 to 500 characters", problems=problems)
    async with info.context["pool"].acquire() as conn:
        try:
            key: DataKey = await info.context["keyring"].get(conn, survivor_id)
        except SurvivorKeyMissing:
            raise fail("BAD_INPUT", f"{field}: no text can be recorded about this survivor", field=field) from None
    return key.seal(FREE_TEXT, text.encode()).model_dump()


async def sealing_note(info: Info, fields: dict[str, Any], survivor_field: str = "survivor_id") -> dict[str, Any]:
    """``fields`` with a plain-text ``note`` sealed (the contract takes only the sealed form)."""
    if fields.get("note") is None:
        return fields
    survivor_id = survivor_uuid(fields.get(survivor_field), survivor_field)
    return {**fields, "note": await sealed_text(info, survivor_id, fields["note"], "note")}


SET_BY_HAVEN = frozenset({"recorded_by", "version", "subject_is_minor"})
"""Directive fields a caller never sets: who recorded it (the caller), its version, and the child rule's input."""


def _object(value: JSON) -> dict[str, Any]:
    """A JSON argument that must be an object."""
    if not isinstance(value, dict):
        raise fail(
            "VALIDATION_FAILED", "expected a JSON object", problems=[{"field": "(input)", "message": "not an object"}]
        )
    return value


def validated(model: type[EventData] | type[BaseModel], data: dict[str, Any]) -> Any:
    """Validate input with the contract's model; a failure names each field and nothing is sent."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [{"field": ".".join(str(p) for p in e["loc"]) or "(input)", "message": e["msg"]}
                    for e in exc.errors(include_url=False, include_input=False)]  # fmt: skip
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        raise fail("VALIDATION_FAILED", f"invalid input — {summary}", problems=problems) from None


MAX_WAIT_MS = 10_000
Wait = Annotated[
    int | None,
    strawberry.argument(
        description="Milliseconds (at most 10000) to wait for the owning service's decision: the answer's outcome "
        "is then APPLIED or REFUSED if it came in time, PENDING if not (ask command(id) or follow commandOutcomes)."
    ),
]


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
    field: str | None = strawberry.field(description="The input field at fault, where there is one.")
    message: str | None
    at: datetime = strawberry.field(description="When it was decided, or sent while it is pending.")

    @classmethod
    def of(cls, r: Any) -> CommandOutcome:
        return cls(command_id=strawberry.ID(str(r["command_id"])), command_type=r["command_type"],
                   status=CommandStatus(r["status"]), code=r["code"], field=r["field"], message=r["message"],
                   at=r["decided_at"] or r["sent_at"])  # fmt: skip


def _check_wait(wait: int | None) -> None:
    if wait is not None and not 0 <= wait <= MAX_WAIT_MS:
        raise fail("BAD_INPUT", f"wait: milliseconds from 0 to {MAX_WAIT_MS}", field="wait")


async def _write(conn: Connection, who: Principal, *envelopes: Envelope) -> None:
    """The commands into the outbox, and each one's outcome as pending, in the caller's transaction."""
    await outbox.write(conn, *envelopes)
    await conn.executemany(
        "INSERT INTO gateway.command_outcomes (command_id, org_id, command_type) VALUES ($1, $2, $3)",
        [(e.id, who.org_id, e.type) for e in envelopes],
    )


async def _send(info: Info, *commands: EventData) -> list[Envelope]:
    envelopes = [Envelope.new(c, source=SOURCE) for c in commands]
    async with info.context["pool"].acquire() as conn, conn.transaction():
        await _write(conn, principal(info), *envelopes)
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
        row = await info.context["pool"].fetchrow(
            "SELECT * FROM gateway.command_outcomes WHERE command_id = $1", UUID(str(self.command_id))
        )
        return CommandOutcome.of(row)


async def _answer(info: Info, envelope: Envelope, wait: int | None) -> Accepted:
    """The mutation's answer, after waiting (woken by the projection's NOTIFY) up to ``wait`` ms for a decision."""
    if wait:
        pool, wakeup = info.context["pool"], info.context["wakeup"]
        deadline = time.monotonic() + wait / 1000
        while True:
            woken = wakeup.armed(OUTCOMES_CHANNEL)  # armed before looking
            status = await pool.fetchval("SELECT status FROM gateway.command_outcomes WHERE command_id = $1",
                                         envelope.id)  # fmt: skip
            left = deadline - time.monotonic()
            if status != CommandStatus.PENDING.value or left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), left)
    referral = envelope.data.referral_id if isinstance(envelope.data, RequestReferral) else None
    return Accepted(command_id=strawberry.ID(str(envelope.id)), subject_id=strawberry.ID(envelope.subject),
                    referral_id=strawberry.ID(str(referral)) if referral else None)  # fmt: skip


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Record a screening; personal parts are sealed here, before they travel.")
    async def record_screening(self, info: Info, screening: JSON, wait: Wait = None) -> Accepted:
        who = principal(info, Role.INTAKE)
        _check_wait(wait)
        intake: ScreeningIntake = validated(ScreeningIntake, {**_object(screening), "screener_org": who.org_id})
        survivor_id, keyring = uuid4(), info.context["keyring"]
        async with info.context["pool"].acquire() as conn, conn.transaction():
            key = await keyring.create(conn, survivor_id)
            sealed = SealedProfile.model_validate(key.seal_parts(intake.personal_parts()))
            envelope = Envelope.new(intake.to_command(survivor_id, uuid4(), sealed), source=SOURCE)
            await _write(conn, who, envelope)
        return await _answer(info, envelope, wait)

    @strawberry.mutation(
        description="Record consent as your organisation (a member of the survivor's care team). Give directiveId "
        "to record the next version of an existing directive; Haven sets recordedBy and the version."
    )
    async def grant_consent(
        self, info: Info, survivor_id: strawberry.ID, directive: JSON, wait: Wait = None
    ) -> Accepted:
        who = principal(info, Role.INTAKE, Role.CASEWORKER)
        _check_wait(wait)
        sid = survivor_uuid(survivor_id, "survivorId")
        given = _object(directive)
        if set_by_haven := sorted(SET_BY_HAVEN & given.keys()):
            problems = [{"field": f, "message": "set by Haven, not by the caller"} for f in set_by_haven]
            raise fail("VALIDATION_FAILED", f"invalid input — {', '.join(set_by_haven)}: set by Haven",
                       problems=problems)  # fmt: skip
        if "obtained" not in given:
            problems = [
                {"field": "obtained", "message": "say how consent was obtained (method, language, interpreter)"}
            ]
            raise fail("VALIDATION_FAILED", "invalid input — obtained: required", problems=problems)
        await require_member(info, sid)
        version = 1
        if "directive_id" in given:
            latest = await info.context["pool"].fetchval(
                "SELECT max(version) FROM gateway.consent_directives WHERE directive_id = $1 AND survivor_id = $2",
                survivor_uuid(given["directive_id"], "directive.directive_id"), sid,
            )  # fmt: skip
            if latest is None:
                raise fail("BAD_INPUT", "directive_id: no such directive for this survivor", field="directive_id")
            version = latest + 1
        if given.get("justification") is not None:
            given = {**given, "justification": await sealed_text(info, sid, given["justification"], "justification")}
        fields = {"directive_id": str(uuid4()), **given, "version": version, "recorded_by": who.org_id}
        command = validated(GrantConsent, {"survivor_id": sid, "directive": validated(Directive, fields)})
        return await _answer(info, (await _send(info, command))[0], wait)

    @strawberry.mutation(description="Revoke at once: the very next query no longer sees what it covered.")
    async def revoke_consent(
        self, info: Info, survivor_id: strawberry.ID, directive_id: strawberry.ID, wait: Wait = None
    ) -> Accepted:
        who = principal(info, Role.INTAKE, Role.CASEWORKER)
        _check_wait(wait)
        sid = survivor_uuid(survivor_id, "survivorId")
        await require_member(info, sid)
        command = validated(RevokeConsent, {"survivor_id": sid, "directive_id": directive_id,
                                            "revoked_by": who.org_id})  # fmt: skip
        envelope = Envelope.new(command, source=SOURCE)
        async with info.context["pool"].acquire() as conn, conn.transaction():
            # The "new enemy" rule: the read model learns of the revocation in the outbox's own transaction.
            await conn.execute(
                "UPDATE gateway.consent_directives SET revoked_at = coalesce(revoked_at, now())"
                " WHERE directive_id = $1 AND survivor_id = $2",
                command.directive_id, command.survivor_id,
            )  # fmt: skip
            await _write(conn, who, envelope)
        return await _answer(info, envelope, wait)

    @strawberry.mutation(
        description="Refer a survivor in your care team. Consent decides what the referral shares, not whether it "
        "is made: see referralSharing first, and withheldCategories on the referral."
    )
    async def request_referral(self, info: Info, referral: JSON, wait: Wait = None) -> Accepted:
        who = principal(info, Role.INTAKE, Role.CASEWORKER)
        _check_wait(wait)
        given = await sealing_note(info, _object(referral))
        command: RequestReferral = validated(
            RequestReferral, {"referral_id": str(uuid4()), **given, "referrer_org": who.org_id}
        )
        await require_member(info, command.survivor_id)
        return await _answer(info, (await _send(info, command))[0], wait)

    @strawberry.mutation(description="Move a referral on (accept, start, complete, cancel …).")
    async def move_referral(
        self, info: Info, referral_id: strawberry.ID, survivor_id: strawberry.ID, move: Move,  # type: ignore[valid-type]
        reason: str | None = None, note: str | None = None, wait: Wait = None,
    ) -> Accepted:  # fmt: skip
        who = principal(info, Role.CASEWORKER, Role.ORG_ADMIN)
        _check_wait(wait)
        model = MOVES[ReferralMove(move)]
        fields: dict[str, Any] = {"referral_id": referral_id, "survivor_id": survivor_id, "actor_org": who.org_id,
                                  "note": note}  # fmt: skip
        if reason is not None:
            fields["outcome" if model is CompleteReferral else "reason"] = reason
        return await _answer(info, (await _send(info, validated(model, await sealing_note(info, fields))))[0], wait)

    @strawberry.mutation(description="A provider action: shelter beds and placements, matters, care, enrolments.")
    async def provider_action(self, info: Info, action: str, input: JSON, wait: Wait = None) -> Accepted:
        who = principal(info, Role.CASEWORKER, Role.ORG_ADMIN)
        _check_wait(wait)
        model = PROVIDER_COMMANDS.get(action)
        if model is None:
            raise fail("BAD_INPUT", f"action: one of {', '.join(sorted(PROVIDER_COMMANDS))}", field="action")
        acting = {"org_id": who.org_id} if "org_id" in model.model_fields else {"actor_org": who.org_id}
        fields = await sealing_note(info, {**_object(input), **acting})
        return await _answer(info, (await _send(info, validated(model, fields)))[0], wait)

    @strawberry.mutation(
        description="Register an endpoint for events my organisation may see (its referrals' moves, its commands' "
        "outcomes): Standard Webhooks deliveries, signed, retried with backoff for a day (org_admin)."
    )
    async def register_webhook(self, info: Info, url: str, events: list[str]) -> WebhookRegistration:
        who = principal(info, Role.ORG_ADMIN)
        try:
            endpoint = webhooks.check_endpoint(url, allow_loopback=info.context["webhooks_allow_loopback"])
            types = webhooks.subscribed_types(events)
        except webhooks.BadEndpoint as exc:
            field = str(exc).split(":")[0]
            raise fail("BAD_INPUT", str(exc), field=field) from None
        secret = webhooks.new_secret()
        row = await info.context["pool"].fetchrow(
            "INSERT INTO gateway.webhooks (webhook_id, org_id, url, secret, event_types) VALUES ($1, $2, $3, $4, $5)"
            " RETURNING *",
            uuid4(), who.org_id, endpoint, secret, types,
        )  # fmt: skip
        return WebhookRegistration(endpoint=_endpoint(row), secret=secret)


# ---------------------------------------------------------------- subscriptions


async def _follow(info: Info, channel: str, start: str, rows: str, cursor: str) -> AsyncGenerator[Any, None]:
    """Rows for the caller's organisation as they arrive: ``start`` gives the cursor to begin after, ``rows``
    the rows after a cursor (in the column named ``cursor``). Woken by the projection's NOTIFY, never polled; the key is
    checked again at least every 30 s and a revoked key closes the connection (4403)."""
    who = principal(info)
    pool, wakeup, watch = info.context["pool"], info.context["wakeup"], info.context["key_watch"]
    token: str = info.context["token"]
    last = await pool.fetchval(start, who.org_id)
    woken = wakeup.armed(channel)  # armed before looking: a notification during the query still wakes the wait
    found: list[Any] = []
    recheck = time.monotonic() + watch.interval
    while True:
        for r in found:
            last = r[cursor]
            # Each push is decided on its own: consent as it stands now, not when the subscription began, and
            # nothing the connection's loaders cached earlier.
            info.context["consent"] = ConsentScope(pool, who)
            for loader in ("keys", "records", "referrals"):
                info.context[loader].clear_all()
            yield r
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), max(recheck - time.monotonic(), 0.0))
        if time.monotonic() >= recheck:
            if not await watch.valid(token):
                await info.context["request"].close(code=4403, reason="the API key was revoked")
                return
            recheck = time.monotonic() + watch.interval
        found = []
        if woken.is_set():
            woken = wakeup.armed(channel)
            found = await pool.fetch(rows, who.org_id, last)


@strawberry.type
class Subscription:
    @strawberry.subscription(description="New referrals addressed to my organisation, as they arrive.")
    async def inbox(self, info: Info) -> AsyncGenerator[Referral, None]:
        principal(info, Role.CASEWORKER, Role.ORG_ADMIN)
        start = "SELECT coalesce(max(seq), 0) FROM gateway.referrals WHERE recipient_org = $1"
        rows = f"{REFERRALS} WHERE r.recipient_org = $1 AND r.seq > $2 ORDER BY r.seq"
        async for r in _follow(info, INBOX_CHANNEL, start, rows, "seq"):
            yield Referral.of(r)

    @strawberry.subscription(
        description="Every move of a referral my organisation made or received (accepted, rejected, completed …), "
        "as it happens: what a referrer's system follows to hear the outcome of its referrals."
    )
    async def referral_updates(self, info: Info) -> AsyncGenerator[Referral, None]:
        start = "SELECT coalesce(max(moved_seq), 0) FROM gateway.referrals WHERE $1 IN (referrer_org, recipient_org)"
        rows = f"{REFERRALS} WHERE $1 IN (r.referrer_org, r.recipient_org) AND r.moved_seq > $2 ORDER BY r.moved_seq"
        async for r in _follow(info, MOVES_CHANNEL, start, rows, "moved_seq"):
            yield Referral.of(r)

    @strawberry.subscription(description="The decisions on my organisation's commands, as they are made.")
    async def command_outcomes(self, info: Info) -> AsyncGenerator[CommandOutcome, None]:
        start = "SELECT coalesce(max(decided_seq), 0) FROM gateway.command_outcomes WHERE org_id = $1"
        rows = ("SELECT * FROM gateway.command_outcomes WHERE org_id = $1 AND decided_seq > $2"
                " ORDER BY decided_seq")  # fmt: skip
        async for r in _follow(info, OUTCOMES_CHANNEL, start, rows, "decided_seq"):
            yield CommandOutcome.of(r)


class OperationSpan(SchemaExtension):
    """One span per operation, current while it runs, and no hook at all on fields.

    Profiled (pyinstrument, cProfile, py-spy): per-field spans, then a per-field hook that only
    passed through, were a large share of the pathway query's CPU time. The span is made current
    for the whole operation instead, so an outbox write in a mutation becomes its child and the
    trace runs on through Kafka. Arguments are never recorded: they may hold personal data.
    """

    def on_operation(self) -> Iterator[None]:
        with TRACER.start_as_current_span("GraphQL operation", kind=SpanKind.SERVER) as span:
            yield
            context = self.execution_context
            kind = context.operation_type.value if context.operation_type else "operation"
            span.update_name(f"GraphQL {kind} {context.operation_name or ''}".rstrip())
            result = context.result
            if isinstance(result, ExecutionResult) and result.errors:
                span.set_attribute("graphql.errors", len(result.errors))


def _should_mask(error: GraphQLError) -> bool:
    """Mask what a resolver raised by accident (a bug, an SQL error): it could carry internals.

    Errors we raise on purpose carry a code; parse and validation errors (depth, aliases, tokens,
    unknown fields) have no original exception and are the caller's to read.
    """
    if error.extensions and "code" in error.extensions:
        return False
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


LIMIT_RULES = (
    # The deepest legitimate query is 5 (inbox.items.parent.transitions.status); chains stop at 8.
    *QueryDepthLimiter(max_depth=8).validation_rules,
    *MaxAliasesLimiter(max_alias_count=15).validation_rules,
)


def build_schema(*, production: bool = False) -> strawberry.Schema:
    # Factories, not instances: a fresh extension per request (the parse/validation caches are module-level).
    extensions: list[Any] = [
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
        # The same rule classes for every request, so that ValidationCache can hit: a limiter built per
        # request makes a new rule class each time, and the cache (keyed on the rules) never matched.
        lambda: AddValidationRules(list(LIMIT_RULES)),
        lambda: MaxTokensLimiter(max_token_count=2000),
        AuditReads,
        OperationSpan,
        lambda: MaskErrors(should_mask_error=_should_mask, error_message="Unexpected error; it has been logged."),
    ]
    if production:
        from strawberry.extensions import DisableIntrospection

        extensions.append(DisableIntrospection)
    return strawberry.Schema(
        query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=production),
    )  # fmt: skip


def sdl() -> str:
    return build_schema().as_str() + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        SDL.write_text(sdl())
        print(f"wrote {SDL}")
    else:
        print(sdl(), end="")
