"""Referral rules, pure: the lifecycle, who may move it, deadlines, consent's minimum, re-routing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from events.directory import CapacityStatus, Offer, rank
from events.errors import DomainError
from events.needs import Urgency
from events.referrals import RESPONSE_TIME, CancellationReason, ReferralStatus

S = ReferralStatus
_UNDO = frozenset({S.ENTERED_IN_ERROR})

NEXT: dict[ReferralStatus, frozenset[ReferralStatus]] = {
    S.REQUESTED: frozenset({S.RECEIVED, S.ACCEPTED, S.REJECTED, S.DECLINED_BY_SURVIVOR, S.CANCELLED, S.EXPIRED})
    | _UNDO,
    S.RECEIVED: frozenset({S.ACCEPTED, S.REJECTED, S.DECLINED_BY_SURVIVOR, S.CANCELLED, S.EXPIRED}) | _UNDO,
    S.ACCEPTED: frozenset({S.IN_PROGRESS, S.DECLINED_BY_SURVIVOR, S.CANCELLED, S.FAILED}) | _UNDO,
    S.IN_PROGRESS: frozenset({S.ON_HOLD, S.COMPLETED, S.FAILED, S.CANCELLED, S.DECLINED_BY_SURVIVOR}) | _UNDO,
    S.ON_HOLD: frozenset({S.IN_PROGRESS, S.FAILED, S.CANCELLED, S.DECLINED_BY_SURVIVOR}) | _UNDO,
    S.COMPLETED: _UNDO,
    S.FAILED: _UNDO,
    S.REJECTED: _UNDO,
    S.DECLINED_BY_SURVIVOR: _UNDO,
    S.CANCELLED: _UNDO,
    S.EXPIRED: _UNDO,
    S.ENTERED_IN_ERROR: frozenset(),
}
"""Every legal move; anything else is refused naming both states."""

BY_RECIPIENT = frozenset({S.RECEIVED, S.ACCEPTED, S.IN_PROGRESS, S.ON_HOLD, S.COMPLETED, S.FAILED, S.REJECTED})
BY_EITHER = frozenset({S.DECLINED_BY_SURVIVOR, S.ENTERED_IN_ERROR})
SYSTEM_ORG = "haven"


def check_transition(
    current: ReferralStatus, target: ReferralStatus, only_from: frozenset[ReferralStatus] | None = None
) -> None:
    """Refuse a move the lifecycle does not have (``only_from`` narrows it: resuming needs a hold).

    >>> check_transition(S.REQUESTED, S.COMPLETED)
    Traceback (most recent call last):
    events.errors.DomainError: a referral that is requested cannot become completed
    """
    if target not in NEXT[current] or (only_from is not None and current not in only_from):
        raise DomainError("illegal_transition", f"a referral that is {current} cannot become {target}", field="status")


@dataclass(frozen=True)
class Parties:
    referrer: str
    recipient: str


def check_actor(target: ReferralStatus, actor: str, parties: Parties, reason: str | None = None) -> None:
    """Only the recipient answers and delivers; only the referrer cancels; Haven expires and withdraws."""
    if target in BY_RECIPIENT:
        allowed = {parties.recipient}
    elif target in BY_EITHER:
        allowed = {parties.referrer, parties.recipient}
    elif target is S.CANCELLED and reason == CancellationReason.CONSENT_WITHDRAWN:
        allowed = {SYSTEM_ORG}
    elif target is S.CANCELLED:
        allowed = {parties.referrer}
    else:  # expired
        allowed = {SYSTEM_ORG}
    if actor not in allowed:
        raise DomainError("not_a_party", f"{actor} may not make this referral {target}", field="actor_org")


def deadline(urgency: Urgency, requested_at: datetime, respond_by: datetime | None) -> datetime:
    """When the provider's answer is due: the urgency's response time, or sooner if the referrer asked."""
    latest = requested_at + RESPONSE_TIME[urgency]
    if respond_by is None:
        return latest
    if not requested_at < respond_by <= latest:
        raise DomainError(
            "respond_by_out_of_range",
            f"respond_by must fall after now and no later than the {urgency} response time ({latest:%Y-%m-%d %H:%M}Z)",
            field="respond_by",
        )
    return respond_by


def reroute_target(offers: Sequence[Offer], tried: set[str], withheld: Mapping[str, int] | None = None) -> Offer | None:
    """The best provider with capacity that this referral's chain has not tried yet.

    Providers the survivor's consent shares more with come first (``withheld``: org → categories not
    shared); consent never rules one out, so a survivor's privacy choice never costs them the bed.
    """
    withheld = withheld or {}
    ranked = sorted(rank(offers), key=lambda o: withheld.get(o.org_id, 0))  # stable: capacity order within a tier
    for offer in ranked:
        if offer.status is CapacityStatus.CAPACITY and offer.available > 0 and offer.org_id not in tried:
            return offer
    return None
