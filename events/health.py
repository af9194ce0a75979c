"""Health: engagement in care. By default only "engaged / not engaged" is shared; clinical detail
travels sealed with the survivor's key under the ``health`` consent category."""

from __future__ import annotations

from enum import StrEnum

from events.base import EventData
from events.catalog import HEALTH, HEALTH_COMMANDS
from events.types import Code, OrgId, ReferralId, Sealed, SurvivorId


class HealthService(StrEnum):
    MEDICAL = "medical"
    MENTAL_HEALTH = "mental_health"
    SEXUAL_REPRODUCTIVE = "sexual_reproductive"


class RecordEngagement(EventData):
    """Command: the survivor is (or is no longer) engaged in care; clinical detail comes sealed, if at all."""

    event_type = "health.record_engagement"
    topic = HEALTH_COMMANDS.name

    referral_id: ReferralId
    survivor_id: SurvivorId
    actor_org: OrgId
    service: HealthService
    engaged: bool
    clinical_detail: Sealed | None = None


class DischargeFromCare(EventData):
    event_type = "health.discharge"
    topic = HEALTH_COMMANDS.name

    referral_id: ReferralId
    survivor_id: SurvivorId
    actor_org: OrgId
    outcome: Code


class EngagementChanged(EventData):
    event_type = "health.engagement_changed"
    topic = HEALTH.name

    survivor_id: SurvivorId
    provider_org: OrgId
    referral_id: ReferralId
    service: HealthService
    engaged: bool
    clinical_detail: Sealed | None = None
