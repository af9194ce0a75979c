"""The service directory: partner organisations, what they offer, to whom, and their live capacity.

No survivor data: these events are keyed by organisation. Capacity uses the FHIR SDOH codes.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from events.base import EventData
from events.catalog import DIRECTORY, REFERRALS_COMMANDS
from events.consent import OrgType
from events.identification import Gender
from events.needs import ReferralType
from events.types import Code, CountryCode, OrgId, ShortText


class CapacityStatus(StrEnum):
    """FHIR SDOH capacity codes, best first."""

    CAPACITY = "capacity"
    WAITLIST = "waitlist"
    ADDITIONAL_ASSESSMENT_REQUIRED = "additional-assessment-required"
    NO_CAPACITY = "no-capacity"


class Eligibility(BaseModel):
    """Whom an organisation serves. Empty ``genders`` means everyone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_age: int = Field(default=0, ge=0, le=120)
    max_age: int = Field(default=120, ge=0, le=120)
    genders: frozenset[Gender] = frozenset()
    wheelchair_accessible: bool = False

    @model_validator(mode="after")
    def _ages(self) -> Eligibility:
        if self.max_age < self.min_age:
            raise ValueError("max_age must not be below min_age")
        return self


class Organisation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    org_id: OrgId
    name: ShortText
    org_type: OrgType
    services: frozenset[ReferralType]
    jurisdictions: frozenset[CountryCode] = Field(min_length=1)
    languages: frozenset[Code] = frozenset()
    eligibility: Eligibility = Eligibility()


class OrganisationMessage(EventData):
    """A message about one organisation, keyed by its id."""

    organisation: Organisation

    def subject(self) -> str:
        return self.organisation.org_id


class RegisterOrganisation(OrganisationMessage):
    """Command: add an organisation to the directory, or update its profile."""

    event_type = "directory.register_organisation"
    topic = REFERRALS_COMMANDS.name


class OrganisationRegistered(OrganisationMessage):
    event_type = "organisation.registered"
    topic = DIRECTORY.name


class CapacityChanged(EventData):
    """A provider's live capacity for one service (and unit type, for shelters)."""

    event_type = "capacity.changed"
    topic = DIRECTORY.name

    org_id: OrgId
    service: ReferralType
    unit_type: Code | None = None
    status: CapacityStatus
    available: int = Field(ge=0)

    def subject(self) -> str:
        return f"{self.org_id}/{self.service}/{self.unit_type or '-'}"
