"""Legal aid events: matters, milestones, outcomes."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from uuid import UUID

from events.base import EventData
from events.catalog import LEGAL_AID
from events.types import Code, OrgId, ReferralId, SurvivorId


class MatterType(StrEnum):
    IMMIGRATION_RELIEF = "immigration_relief"
    NON_PUNISHMENT = "non_punishment"
    RESTITUTION = "restitution"
    LABOUR_CLAIM = "labour_claim"
    WITNESS_PROTECTION = "witness_protection"


class MatterEvent(EventData):
    topic = LEGAL_AID.name

    survivor_id: SurvivorId
    matter_id: UUID
    clinic_org: OrgId


class MatterOpened(MatterEvent):
    event_type = "legal.matter_opened"

    referral_id: ReferralId | None = None
    matter_type: MatterType


class MatterMilestoneReached(MatterEvent):
    event_type = "legal.milestone_reached"

    milestone: Code
    hearing_date: date | None = None


class MatterClosed(MatterEvent):
    event_type = "legal.matter_closed"

    outcome: Code
