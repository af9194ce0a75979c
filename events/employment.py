"""Employment reintegration events: enrolments and outcomes."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from events.base import EventData
from events.catalog import EMPLOYMENT
from events.types import Code, OrgId, ReferralId, SurvivorId


class ProgramType(StrEnum):
    VOCATIONAL_TRAINING = "vocational_training"
    APPRENTICESHIP = "apprenticeship"
    WAGE_SUBSIDY = "wage_subsidy"
    MICROFINANCE = "microfinance"
    CREDENTIAL_RECOGNITION = "credential_recognition"
    LANGUAGE = "language"


class EnrolmentEvent(EventData):
    topic = EMPLOYMENT.name

    survivor_id: SurvivorId
    enrolment_id: UUID
    program_org: OrgId


class Enrolled(EnrolmentEvent):
    event_type = "employment.enrolled"

    referral_id: ReferralId | None = None
    program_type: ProgramType


class EmploymentOutcomeRecorded(EnrolmentEvent):
    event_type = "employment.outcome_recorded"

    employed: bool
    wage_band: Code | None = None
    retained_3_months: bool | None = None
    retained_6_months: bool | None = None
