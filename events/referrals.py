"""Referral events: the closed-loop lifecycle (DESIGN.md), one event per transition."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field

from events.base import EventData
from events.catalog import REFERRALS
from events.consent import Category, Purpose
from events.needs import ReferralType, Urgency
from events.types import Code, OrgId, ReferralId, ShortText, SurvivorId


class ReferralStatus(StrEnum):
    """Lifecycle states; ``FHIR_TASK_STATUS`` maps each onto HL7 FHIR Task.status."""

    REQUESTED = "requested"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    FAILED = "failed"
    REJECTED = "rejected"
    DECLINED_BY_SURVIVOR = "declined_by_survivor"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    ENTERED_IN_ERROR = "entered_in_error"


FHIR_TASK_STATUS: dict[ReferralStatus, str] = {
    ReferralStatus.REQUESTED: "requested",
    ReferralStatus.RECEIVED: "received",
    ReferralStatus.ACCEPTED: "accepted",
    ReferralStatus.IN_PROGRESS: "in-progress",
    ReferralStatus.ON_HOLD: "on-hold",
    ReferralStatus.COMPLETED: "completed",
    ReferralStatus.FAILED: "failed",
    ReferralStatus.REJECTED: "rejected",
    ReferralStatus.DECLINED_BY_SURVIVOR: "cancelled",
    ReferralStatus.CANCELLED: "cancelled",
    ReferralStatus.EXPIRED: "cancelled",
    ReferralStatus.ENTERED_IN_ERROR: "entered-in-error",
}


class RejectionReason(StrEnum):
    NO_CAPACITY = "no_capacity"
    INELIGIBLE = "ineligible"
    UNREACHABLE = "unreachable"
    OTHER = "other"


class CancellationReason(StrEnum):
    BY_REFERRER = "by_referrer"
    CONSENT_WITHDRAWN = "consent_withdrawn"


class ReferralEvent(EventData):
    """Fields every referral event carries: which referral, whose, and who acted."""

    topic = REFERRALS.name

    referral_id: ReferralId
    survivor_id: SurvivorId
    actor_org: OrgId
    note: ShortText | None = None


class ReferralRequested(ReferralEvent):
    event_type = "referral.requested"

    referrer_org: OrgId
    recipient_org: OrgId
    referral_type: ReferralType
    urgency: Urgency
    purpose: Purpose
    categories: frozenset[Category] = Field(description="The minimum categories this referral type needs.")
    deadline: AwareDatetime
    allow_reroute: bool = False
    parent_referral_id: ReferralId | None = None


class ReferralReceived(ReferralEvent):
    event_type = "referral.received"


class ReferralAccepted(ReferralEvent):
    event_type = "referral.accepted"


class ReferralStarted(ReferralEvent):
    event_type = "referral.started"


class ReferralPutOnHold(ReferralEvent):
    event_type = "referral.put_on_hold"

    reason: Code = "waitlist"


class ReferralResumed(ReferralEvent):
    event_type = "referral.resumed"


class ReferralCompleted(ReferralEvent):
    event_type = "referral.completed"

    outcome: Code


class ReferralFailed(ReferralEvent):
    event_type = "referral.failed"

    reason: Code


class ReferralRejected(ReferralEvent):
    event_type = "referral.rejected"

    reason: RejectionReason


class ReferralDeclinedBySurvivor(ReferralEvent):
    event_type = "referral.declined_by_survivor"


class ReferralCancelled(ReferralEvent):
    event_type = "referral.cancelled"

    reason: CancellationReason


class ReferralExpired(ReferralEvent):
    event_type = "referral.expired"

    deadline: AwareDatetime
    rerouted_to: ReferralId | None = None


class ReferralEnteredInError(ReferralEvent):
    event_type = "referral.entered_in_error"
