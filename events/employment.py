"""Employment reintegration: programs, enrolments, progress and outcomes with 3- and 6-month retention."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from events.base import EventData
from events.catalog import EMPLOYMENT, EMPLOYMENT_COMMANDS
from events.types import OrgId, ReferralId, SurvivorId


class ProgramType(StrEnum):
    VOCATIONAL_TRAINING = "vocational_training"
    APPRENTICESHIP = "apprenticeship"
    WAGE_SUBSIDY = "wage_subsidy"
    MICROFINANCE = "microfinance"
    CREDENTIAL_RECOGNITION = "credential_recognition"
    LANGUAGE = "language"


class WageBand(StrEnum):
    """Monthly earnings against the local minimum wage."""

    BELOW_MINIMUM = "below_minimum"
    MINIMUM_TO_1_5X = "minimum_to_1_5x"
    ABOVE_1_5X = "above_1_5x"


class Enrol(EventData):
    """Command: enrol the referred survivor in a program (accepting and starting the referral)."""

    event_type = "employment.enrol"
    topic = EMPLOYMENT_COMMANDS.name

    referral_id: ReferralId
    survivor_id: SurvivorId
    actor_org: OrgId
    enrolment_id: UUID
    program_type: ProgramType


class RecordEmploymentOutcome(EventData):
    """Command: record progress; the 6-month retention answer closes the referral."""

    event_type = "employment.record_outcome"
    topic = EMPLOYMENT_COMMANDS.name

    enrolment_id: UUID
    survivor_id: SurvivorId
    actor_org: OrgId
    employed: bool
    wage_band: WageBand | None = None
    retained_3_months: bool | None = None
    retained_6_months: bool | None = None


class EnrolmentEvent(EventData):
    topic = EMPLOYMENT.name

    survivor_id: SurvivorId
    enrolment_id: UUID
    program_org: OrgId


class Enrolled(EnrolmentEvent):
    event_type = "employment.enrolled"

    referral_id: ReferralId
    program_type: ProgramType


class EmploymentOutcomeRecorded(EnrolmentEvent):
    event_type = "employment.outcome_recorded"

    employed: bool
    wage_band: WageBand | None = None
    retained_3_months: bool | None = None
    retained_6_months: bool | None = None
