"""Consent events and the vocabulary of directives (DESIGN.md, Consent)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from events.base import EventData
from events.catalog import CONSENT
from events.types import OrgId, ShortText, SurvivorId


class Category(StrEnum):
    """Categories of survivor data, each consented to separately."""

    IDENTITY = "identity"
    CONTACT = "contact"
    LOCATION = "location"
    NARRATIVE = "narrative"
    HEALTH = "health"
    IMMIGRATION = "immigration"
    LEGAL = "legal"
    EMPLOYMENT = "employment"
    CASE_STATUS = "case_status"


class Purpose(StrEnum):
    SERVICE_DELIVERY = "service_delivery"
    LEGAL_PROCEEDINGS = "legal_proceedings"
    LAW_ENFORCEMENT = "law_enforcement"
    STATISTICS = "statistics"


class OrgType(StrEnum):
    HOTLINE = "hotline"
    NGO = "ngo"
    SHELTER = "shelter"
    LEGAL_CLINIC = "legal_clinic"
    HEALTH_PROVIDER = "health_provider"
    EMPLOYMENT_PROGRAM = "employment_program"
    LABOUR_INSPECTORATE = "labour_inspectorate"
    BORDER_AGENCY = "border_agency"
    LAW_ENFORCEMENT = "law_enforcement"


class Effect(StrEnum):
    PERMIT = "permit"
    DENY = "deny"


class Basis(StrEnum):
    CONSENT = "consent"
    GUARDIAN = "guardian"
    BEST_INTEREST = "best_interest"


class Grantee(BaseModel):
    """Exactly one organisation, or every organisation of one type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    org_id: OrgId | None = None
    org_type: OrgType | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Grantee:
        if (self.org_id is None) == (self.org_type is None):
            raise ValueError("a grantee is either org_id or org_type, not both and not neither")
        return self


class Directive(BaseModel):
    """One versioned consent directive."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    directive_id: UUID
    version: int = Field(ge=1)
    grantee: Grantee
    categories: frozenset[Category] = Field(min_length=1)
    purposes: frozenset[Purpose] = Field(min_length=1)
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    effect: Effect = Effect.PERMIT
    basis: Basis = Basis.CONSENT
    justification: ShortText | None = None
    recorded_by: OrgId
    approvers: tuple[Annotated[str, StringConstraints(max_length=100)], ...] = ()

    @model_validator(mode="after")
    def _period(self) -> Directive:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class ConsentGranted(EventData):
    event_type = "consent.granted"
    topic = CONSENT.name

    survivor_id: SurvivorId
    directive: Directive


class ConsentRevoked(EventData):
    event_type = "consent.revoked"
    topic = CONSENT.name

    survivor_id: SurvivorId
    directive_id: UUID
    grantee: Grantee
    revoked_by: OrgId
    revoked_at: AwareDatetime


class ConsentExpired(EventData):
    event_type = "consent.expired"
    topic = CONSENT.name

    survivor_id: SurvivorId
    directive_id: UUID
    grantee: Grantee
    expired_at: datetime
