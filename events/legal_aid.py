"""Legal aid: clinic caseload and intake, matters with milestones, hearings and outcomes."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from uuid import UUID

from pydantic import Field

from events.base import REGISTRY, EventData, drop_plain_text
from events.catalog import LEGAL_AID, LEGAL_AID_COMMANDS
from events.types import OrgId, ReferralId, Sealed, SurvivorId


class MatterType(StrEnum):
    IMMIGRATION_RELIEF = "immigration_relief"
    NON_PUNISHMENT = "non_punishment"
    RESTITUTION = "restitution"
    LABOUR_CLAIM = "labour_claim"
    WITNESS_PROTECTION = "witness_protection"


class Milestone(StrEnum):
    INTAKE_COMPLETED = "intake_completed"
    APPLICATION_FILED = "application_filed"
    HEARING_SCHEDULED = "hearing_scheduled"
    HEARING_HELD = "hearing_held"
    DECISION_RECEIVED = "decision_received"
    APPEAL_FILED = "appeal_filed"


class MatterOutcome(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    SETTLED = "settled"
    WITHDRAWN = "withdrawn"
    REFERRED_ELSEWHERE = "referred_elsewhere"


# ---------------------------------------------------------------- commands


class ConfigureClinic(EventData):
    """Command: how many open matters a clinic can carry."""

    event_type = "legal_aid.configure_clinic"
    topic = LEGAL_AID_COMMANDS.name

    org_id: OrgId
    max_open_matters: int = Field(ge=0, le=10_000)

    def subject(self) -> str:
        return self.org_id


class OpenMatter(EventData):
    """Command: take a referral on as a matter (accepting and starting it)."""

    event_type = "legal_aid.open_matter"
    topic = LEGAL_AID_COMMANDS.name

    referral_id: ReferralId
    survivor_id: SurvivorId
    actor_org: OrgId
    matter_id: UUID
    matter_type: MatterType


class RecordMilestone(EventData):
    event_type = "legal_aid.record_milestone"
    version = 2  # the note is sealed since version 2
    topic = LEGAL_AID_COMMANDS.name

    matter_id: UUID
    survivor_id: SurvivorId
    actor_org: OrgId
    milestone: Milestone
    hearing_date: date | None = None
    note: Sealed | None = Field(default=None, description="Free text, sealed with the survivor's key (FREE_TEXT).")


class CloseMatter(EventData):
    event_type = "legal_aid.close_matter"
    topic = LEGAL_AID_COMMANDS.name

    matter_id: UUID
    survivor_id: SurvivorId
    actor_org: OrgId
    outcome: MatterOutcome


# ---------------------------------------------------------------- events


class MatterEvent(EventData):
    topic = LEGAL_AID.name

    survivor_id: SurvivorId
    matter_id: UUID
    clinic_org: OrgId


class MatterOpened(MatterEvent):
    event_type = "legal.matter_opened"

    referral_id: ReferralId
    matter_type: MatterType


class MatterMilestoneReached(MatterEvent):
    event_type = "legal.milestone_reached"

    milestone: Milestone
    hearing_date: date | None = None


class MatterClosed(MatterEvent):
    event_type = "legal.matter_closed"

    outcome: MatterOutcome


REGISTRY.upcaster(RecordMilestone.event_type, 1)(drop_plain_text("note"))
