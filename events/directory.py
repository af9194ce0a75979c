"""The service directory: partner organisations, what they offer, to whom, and their live capacity.

No survivor data: these events are keyed by organisation. Capacity uses the FHIR SDOH codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from events.base import EventData
from events.catalog import DIRECTORY, REFERRALS_COMMANDS
from events.consent import OrgType
from events.identification import AgeBand, Gender
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


# ---------------------------------------------------------------- who may take whom: the anonymous capacity query
# Part of the contract: the referrals service (re-routing) and the gateway (finding a provider) match alike.

AGE_RANGES: dict[AgeBand, tuple[int, int]] = {
    AgeBand.AGE_0_8: (0, 8),
    AgeBand.AGE_9_17: (9, 17),
    AgeBand.AGE_18_20: (18, 20),
    AgeBand.AGE_21_23: (21, 23),
    AgeBand.AGE_24_26: (24, 26),
    AgeBand.AGE_27_29: (27, 29),
    AgeBand.AGE_30_38: (30, 38),
    AgeBand.AGE_39_47: (39, 47),
    AgeBand.AGE_48_PLUS: (48, 120),
    AgeBand.UNKNOWN: (0, 120),
}


@dataclass(frozen=True)
class Seeker:
    """What an anonymous capacity query may say about the person: coded, never identifying."""

    age_band: AgeBand = AgeBand.UNKNOWN
    gender: Gender = Gender.UNDISCLOSED
    language: str | None = None
    wheelchair: bool = False


def serves(org: Organisation, seeker: Seeker) -> bool:
    """Whether ``org``'s eligibility admits the seeker (an unknown age or gender is not held against them)."""
    rules = org.eligibility
    low, high = AGE_RANGES[seeker.age_band]
    if high < rules.min_age or low > rules.max_age:
        return False
    if rules.genders and seeker.gender is not Gender.UNDISCLOSED and seeker.gender not in rules.genders:
        return False
    if seeker.wheelchair and not rules.wheelchair_accessible:
        return False
    return seeker.language is None or not org.languages or seeker.language in org.languages


_STATUS_RANK = {status: rank for rank, status in enumerate(CapacityStatus)}


@dataclass(frozen=True)
class Offer:
    """One provider's answer to a capacity query."""

    org_id: str
    name: str
    status: CapacityStatus
    available: int


def rank(offers: Iterable[Offer]) -> list[Offer]:
    """Capacity first, then waitlist…; more places first; then by id, so the order is stable."""
    return sorted(offers, key=lambda o: (_STATUS_RANK[o.status], -o.available, o.org_id))
