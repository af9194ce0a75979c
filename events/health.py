"""Health events. By default only engagement is shared; clinical detail travels sealed."""

from __future__ import annotations

from enum import StrEnum

from events.base import EventData
from events.catalog import HEALTH
from events.types import OrgId, ReferralId, Sealed, SurvivorId


class HealthService(StrEnum):
    MEDICAL = "medical"
    MENTAL_HEALTH = "mental_health"
    SEXUAL_REPRODUCTIVE = "sexual_reproductive"


class EngagementChanged(EventData):
    event_type = "health.engagement_changed"
    topic = HEALTH.name

    survivor_id: SurvivorId
    provider_org: OrgId
    referral_id: ReferralId | None = None
    service: HealthService
    engaged: bool
    clinical_detail: Sealed | None = None
