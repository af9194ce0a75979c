"""Service directory events: partner organisations and their live capacity. No survivor data."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from events.base import EventData
from events.catalog import DIRECTORY
from events.consent import OrgType
from events.types import Code, CountryCode, OrgId, ShortText


class CapacityStatus(StrEnum):
    """FHIR SDOH capacity codes."""

    CAPACITY = "capacity"
    NO_CAPACITY = "no-capacity"
    WAITLIST = "waitlist"
    ADDITIONAL_ASSESSMENT_REQUIRED = "additional-assessment-required"


class OrganisationRegistered(EventData):
    event_type = "organisation.registered"
    topic = DIRECTORY.name

    org_id: OrgId
    name: ShortText
    org_type: OrgType
    services: frozenset[Code]
    jurisdictions: frozenset[CountryCode]
    languages: frozenset[Code] = frozenset()


class CapacityChanged(EventData):
    event_type = "capacity.changed"
    topic = DIRECTORY.name

    org_id: OrgId
    service: Code
    unit_type: Code | None = None
    status: CapacityStatus
    available: int = Field(ge=0)
