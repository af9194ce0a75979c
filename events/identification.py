"""Identification events: a survivor screened once, needs assessed, and erasure."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from events.base import EventData
from events.catalog import IDENTIFICATION
from events.types import Code, CountryCode, OrgId, Sealed, SurvivorId


class ScreeningOutcome(StrEnum):
    POSSIBLE_VICTIM = "possible_victim"
    PROBABLE_VICTIM = "probable_victim"
    CONFIRMED_VICTIM = "confirmed_victim"
    NOT_A_VICTIM = "not_a_victim"


class Urgency(StrEnum):
    EMERGENCY = "emergency"
    URGENT = "urgent"
    ROUTINE = "routine"


class Statistics(BaseModel):
    """Coded fields for statistics, kept apart from identity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    age_band: Code | None = None
    gender: Code | None = None
    nationality: CountryCode | None = None
    disability: bool | None = None


class SealedProfile(BaseModel):
    """The personal parts of a screening, each sealed with the survivor's data key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    identity: Sealed
    contact: Sealed | None = None
    narrative: Sealed | None = None


class SurvivorIdentified(EventData):
    event_type = "survivor.identified"
    topic = IDENTIFICATION.name

    survivor_id: SurvivorId
    screening_id: UUID
    screener_org: OrgId
    outcome: ScreeningOutcome
    decided_by: OrgId
    is_minor: bool
    statistics: Statistics
    profile: SealedProfile


class Need(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    referral_type: Code
    urgency: Urgency


class NeedsAssessed(EventData):
    event_type = "needs.assessed"
    topic = IDENTIFICATION.name

    survivor_id: SurvivorId
    assessed_by: OrgId
    needs: tuple[Need, ...] = Field(max_length=50)


class SurvivorErased(EventData):
    """The survivor's key is destroyed; every projection purges the survivor's rows."""

    event_type = "survivor.erased"
    topic = IDENTIFICATION.name

    survivor_id: SurvivorId
    requested_by: OrgId
    reason: Code
