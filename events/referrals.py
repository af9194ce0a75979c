"""Referrals: the closed-loop lifecycle (DESIGN.md), its commands, and one event per transition.

The lifecycle follows HL7 FHIR Task: ``FHIR_TASK`` maps every state one-to-one onto a Task
``status`` plus, where FHIR has one status for several of ours, a ``businessStatus`` code.
Minimum necessary: ``SHARED_AT_MOST`` names what each referral type may ever share; a referral shares
what of that the survivor permits, says what is not shared, and goes ahead either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from events.base import REGISTRY, EventData, drop_plain_text
from events.catalog import REFERRALS, REFERRALS_COMMANDS
from events.consent import Category, ConsentRecord, Party, Purpose, decide
from events.needs import ReferralType, Urgency
from events.types import Code, CountryCode, OrgId, ReferralId, Sealed, SurvivorId

C = Category


class ReferralStatus(StrEnum):
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


FHIR_TASK: dict[ReferralStatus, tuple[str, str | None]] = {
    ReferralStatus.REQUESTED: ("requested", None),
    ReferralStatus.RECEIVED: ("received", None),
    ReferralStatus.ACCEPTED: ("accepted", None),
    ReferralStatus.IN_PROGRESS: ("in-progress", None),
    ReferralStatus.ON_HOLD: ("on-hold", "waitlist"),
    ReferralStatus.COMPLETED: ("completed", None),
    ReferralStatus.FAILED: ("failed", None),
    ReferralStatus.REJECTED: ("rejected", None),
    ReferralStatus.DECLINED_BY_SURVIVOR: ("cancelled", "declined-by-survivor"),
    ReferralStatus.CANCELLED: ("cancelled", None),
    ReferralStatus.EXPIRED: ("cancelled", "expired"),
    ReferralStatus.ENTERED_IN_ERROR: ("entered-in-error", None),
}
"""Our state → FHIR Task (status, businessStatus); no two of ours share a pair."""

OPEN = frozenset({ReferralStatus.REQUESTED, ReferralStatus.RECEIVED, ReferralStatus.ACCEPTED,
                  ReferralStatus.IN_PROGRESS, ReferralStatus.ON_HOLD})  # fmt: skip
AWAITING_ANSWER = frozenset({ReferralStatus.REQUESTED, ReferralStatus.RECEIVED})
"""While a referral waits for the provider's answer, its deadline runs."""

SHARED_AT_MOST: dict[ReferralType, frozenset[Category]] = {
    ReferralType.EMERGENCY_SHELTER: frozenset({C.IDENTITY, C.CONTACT, C.CASE_STATUS}),
    ReferralType.TRANSITIONAL_HOUSING: frozenset({C.IDENTITY, C.CONTACT, C.CASE_STATUS}),
    ReferralType.MEDICAL: frozenset({C.IDENTITY, C.CONTACT, C.HEALTH, C.CASE_STATUS}),
    ReferralType.MENTAL_HEALTH: frozenset({C.IDENTITY, C.CONTACT, C.HEALTH, C.CASE_STATUS}),
    ReferralType.SEXUAL_REPRODUCTIVE_HEALTH: frozenset({C.IDENTITY, C.CONTACT, C.HEALTH, C.CASE_STATUS}),
    ReferralType.PSYCHOSOCIAL: frozenset({C.IDENTITY, C.CONTACT, C.CASE_STATUS}),
    ReferralType.LEGAL_AID: frozenset({C.IDENTITY, C.CONTACT, C.NARRATIVE, C.LEGAL, C.CASE_STATUS}),
    ReferralType.IMMIGRATION_LEGAL: frozenset({C.IDENTITY, C.CONTACT, C.IMMIGRATION, C.LEGAL, C.CASE_STATUS}),
    ReferralType.CHILD_PROTECTION: frozenset({C.IDENTITY, C.CONTACT, C.LOCATION, C.NARRATIVE, C.CASE_STATUS}),
    ReferralType.EMPLOYMENT: frozenset({C.IDENTITY, C.CONTACT, C.EMPLOYMENT, C.CASE_STATUS}),
    ReferralType.INTERPRETATION: frozenset({C.CONTACT, C.CASE_STATUS}),
}
"""Minimum necessary: the most a referral of each type shares. Refusing consent never blocks a referral:
the recipient sees what of this the survivor permits, and decides whether that is enough."""


def sharing(
    records: Iterable[ConsentRecord],
    party: Party,
    at_most: Iterable[Category],
    purpose: Purpose,
    at: datetime,
    home: frozenset[str] = frozenset(),
) -> tuple[frozenset[Category], frozenset[Category]]:
    """What a referral to ``party`` shares of ``at_most`` (what consent permits now) and what it withholds.

    Refusing consent never blocks a referral: with nothing permitted it shares nothing and goes ahead.

    >>> from datetime import UTC
    >>> from events.consent import OrgType
    >>> sharing([], Party("harbour-shelter", OrgType.SHELTER), [Category.CONTACT],
    ...         Purpose.SERVICE_DELIVERY, datetime.now(UTC))
    (frozenset(), frozenset({<Category.CONTACT: 'contact'>}))
    """
    records = list(records)
    withheld = frozenset(c for c in at_most if not decide(records, party, c, purpose, at, home).permitted)
    return frozenset(at_most) - withheld, withheld


RESPONSE_TIME: dict[Urgency, timedelta] = {
    Urgency.EMERGENCY: timedelta(hours=4),
    Urgency.URGENT: timedelta(days=2),
    Urgency.ROUTINE: timedelta(days=14),
}
"""How long a provider has to answer, by urgency: an emergency bed is hours, a consultation days."""


class RejectionReason(StrEnum):
    NO_CAPACITY = "no_capacity"
    INELIGIBLE = "ineligible"
    UNREACHABLE = "unreachable"
    INSUFFICIENT_INFORMATION = "insufficient_information"
    OTHER = "other"


class CancellationReason(StrEnum):
    BY_REFERRER = "by_referrer"
    CONSENT_WITHDRAWN = "consent_withdrawn"


SYSTEM_ORG = "haven"
"""The actor of transitions Haven makes itself: expiry, re-routing, cancellation on revocation."""


# ---------------------------------------------------------------- commands


class RequestReferral(EventData):
    """Command: refer a survivor to a provider (or onward, or on re-route, with a parent).

    Version 2 seals the note (version 1 carried it in clear), as every referral command and event does."""

    event_type = "referrals.request"
    version = 2
    topic = REFERRALS_COMMANDS.name

    referral_id: ReferralId
    survivor_id: SurvivorId
    referrer_org: OrgId
    recipient_org: OrgId
    referral_type: ReferralType
    urgency: Urgency
    purpose: Purpose = Purpose.SERVICE_DELIVERY
    allow_reroute: bool = False
    respond_by: AwareDatetime | None = Field(
        default=None, description="Sooner than the urgency's response time, if the referrer needs it sooner."
    )
    parent_referral_id: ReferralId | None = None
    note: Sealed | None = Field(default=None, description="Free text, sealed with the survivor's key (FREE_TEXT).")


class ReferralAction(EventData):
    """A command that moves an existing referral on; ``target`` is the state it leads to."""

    version = 2
    topic = REFERRALS_COMMANDS.name
    target: ClassVar[ReferralStatus]

    referral_id: ReferralId
    survivor_id: SurvivorId
    actor_org: OrgId
    note: Sealed | None = Field(default=None, description="Free text, sealed with the survivor's key (FREE_TEXT).")

    def reason_code(self) -> str | None:
        return None


class ReceiveReferral(ReferralAction):
    event_type = "referrals.receive"
    target = ReferralStatus.RECEIVED


class AcceptReferral(ReferralAction):
    event_type = "referrals.accept"
    target = ReferralStatus.ACCEPTED


class StartReferral(ReferralAction):
    event_type = "referrals.start"
    target = ReferralStatus.IN_PROGRESS


class PutReferralOnHold(ReferralAction):
    event_type = "referrals.put_on_hold"
    target = ReferralStatus.ON_HOLD
    reason: Code = "waitlist"

    def reason_code(self) -> str | None:
        return self.reason


class ResumeReferral(ReferralAction):
    event_type = "referrals.resume"
    target = ReferralStatus.IN_PROGRESS


class CompleteReferral(ReferralAction):
    event_type = "referrals.complete"
    target = ReferralStatus.COMPLETED
    outcome: Code

    def reason_code(self) -> str | None:
        return self.outcome


class FailReferral(ReferralAction):
    event_type = "referrals.fail"
    target = ReferralStatus.FAILED
    reason: Code

    def reason_code(self) -> str | None:
        return self.reason


class RejectReferral(ReferralAction):
    event_type = "referrals.reject"
    target = ReferralStatus.REJECTED
    reason: RejectionReason

    def reason_code(self) -> str | None:
        return self.reason


class RecordSurvivorDecline(ReferralAction):
    event_type = "referrals.record_survivor_decline"
    target = ReferralStatus.DECLINED_BY_SURVIVOR


class CancelReferral(ReferralAction):
    event_type = "referrals.cancel"
    target = ReferralStatus.CANCELLED
    reason: CancellationReason = CancellationReason.BY_REFERRER

    def reason_code(self) -> str | None:
        return self.reason


class ExpireReferral(ReferralAction):
    """Sent by the deadline worker when a referral's answer is overdue."""

    event_type = "referrals.expire"
    target = ReferralStatus.EXPIRED
    deadline: AwareDatetime

    def reason_code(self) -> str | None:
        return "deadline_missed"


class MarkReferralEnteredInError(ReferralAction):
    event_type = "referrals.mark_entered_in_error"
    target = ReferralStatus.ENTERED_IN_ERROR


# ---------------------------------------------------------------- events


class ReferralEvent(EventData):
    """Fields every referral event carries: which referral, whose, who acted, and why."""

    version = 2
    topic = REFERRALS.name
    status: ClassVar[ReferralStatus]

    referral_id: ReferralId
    survivor_id: SurvivorId
    actor_org: OrgId
    referrer_org: OrgId
    recipient_org: OrgId
    reason: Code | None = None
    note: Sealed | None = Field(default=None, description="Free text, sealed with the survivor's key (FREE_TEXT).")
    referral_type: ReferralType | None = Field(
        default=None,
        description="The referral's type, on every event about it (absent from events written before it was added).",
    )

    def extensions(self) -> dict[str, str]:
        """``ce_referraltype``: a provider passes over, undecoded, the referrals of types it does not offer."""
        return {"referraltype": self.referral_type.value} if self.referral_type is not None else {}


class Border(BaseModel):
    """The border a referral crosses: the survivor's jurisdictions and the recipient's (they share none)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    home: frozenset[CountryCode] = Field(min_length=1)
    recipient: frozenset[CountryCode] = Field(min_length=1)


class ReferralRequested(ReferralEvent):
    event_type = "referral.requested"
    status = ReferralStatus.REQUESTED

    referral_type: ReferralType
    urgency: Urgency
    purpose: Purpose
    categories: frozenset[Category] = Field(description="What the survivor's consent shares with the recipient.")
    withheld: frozenset[Category] = Field(
        default=frozenset(), description="What the referral type could share but the survivor's consent does not."
    )
    deadline: AwareDatetime
    allow_reroute: bool = False
    parent_referral_id: ReferralId | None = None
    is_minor: bool | None = Field(default=None, description="Whether the survivor is, or is presumed, a minor.")
    statistics: Sealed | None = Field(
        default=None,
        description="The coded facts matching uses (age band, gender, disability), sealed with the survivor's key "
        "(STATISTICS) as identification sealed them: the recipient needs nothing else to match.",
    )
    border: Border | None = Field(
        default=None, description="Set when the referral crosses a border, which the survivor's consent permitted."
    )


class ReferralReceived(ReferralEvent):
    event_type = "referral.received"
    status = ReferralStatus.RECEIVED


class ReferralAccepted(ReferralEvent):
    event_type = "referral.accepted"
    status = ReferralStatus.ACCEPTED


class ReferralStarted(ReferralEvent):
    event_type = "referral.started"
    status = ReferralStatus.IN_PROGRESS


class ReferralPutOnHold(ReferralEvent):
    event_type = "referral.put_on_hold"
    status = ReferralStatus.ON_HOLD


class ReferralResumed(ReferralEvent):
    event_type = "referral.resumed"
    status = ReferralStatus.IN_PROGRESS


class ReferralCompleted(ReferralEvent):
    event_type = "referral.completed"
    status = ReferralStatus.COMPLETED


class ReferralFailed(ReferralEvent):
    event_type = "referral.failed"
    status = ReferralStatus.FAILED


class ReferralRejected(ReferralEvent):
    event_type = "referral.rejected"
    status = ReferralStatus.REJECTED


class ReferralDeclinedBySurvivor(ReferralEvent):
    event_type = "referral.declined_by_survivor"
    status = ReferralStatus.DECLINED_BY_SURVIVOR


class ReferralCancelled(ReferralEvent):
    event_type = "referral.cancelled"
    status = ReferralStatus.CANCELLED


class ReferralExpired(ReferralEvent):
    event_type = "referral.expired"
    status = ReferralStatus.EXPIRED

    rerouted_to: ReferralId | None = None


class ReferralEnteredInError(ReferralEvent):
    event_type = "referral.entered_in_error"
    status = ReferralStatus.ENTERED_IN_ERROR


class ReferralEscalated(EventData):
    """The referrer is alerted: an answer is overdue (and whether Haven re-routed the referral)."""

    event_type = "referral.escalated"
    topic = REFERRALS.name

    referral_id: ReferralId
    survivor_id: SurvivorId
    referrer_org: OrgId
    recipient_org: OrgId
    reason: Code
    rerouted_to: ReferralId | None = None


EVENT_FOR: dict[type[ReferralAction], type[ReferralEvent]] = {
    ReceiveReferral: ReferralReceived,
    AcceptReferral: ReferralAccepted,
    StartReferral: ReferralStarted,
    PutReferralOnHold: ReferralPutOnHold,
    ResumeReferral: ReferralResumed,
    CompleteReferral: ReferralCompleted,
    FailReferral: ReferralFailed,
    RejectReferral: ReferralRejected,
    RecordSurvivorDecline: ReferralDeclinedBySurvivor,
    CancelReferral: ReferralCancelled,
    ExpireReferral: ReferralExpired,
    MarkReferralEnteredInError: ReferralEnteredInError,
}
"""Each command that moves a referral on, and the event its service publishes when it applies it."""

_EVENTS: tuple[type[ReferralEvent], ...] = (ReferralRequested, *EVENT_FOR.values())
EVENT_STATUS: dict[type[ReferralEvent], ReferralStatus] = {event: event.status for event in _EVENTS}
"""Each referral event and the state it puts the referral in."""

PARTNER_MOVES: dict[str, type[ReferralAction]] = {
    action.event_type.removeprefix("referrals."): action for action in EVENT_FOR if action is not ExpireReferral
}
"""The moves a partner may ask for, by name (``accept``, ``put_on_hold`` …); Haven expires referrals itself."""


_NOTED: tuple[type[EventData], ...] = (RequestReferral, *ReferralAction.__subclasses__(), *EVENT_STATUS)
for _model in _NOTED:
    REGISTRY.upcaster(_model.event_type, 1)(drop_plain_text("note"))
