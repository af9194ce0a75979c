"""Identification rules, pure: what a screening suggests a survivor needs, and how urgently.

The rules follow common National Referral Mechanism practice: a child is referred to child
protection at once; no safe place to sleep tonight is an emergency; injuries are an emergency
and violence urgent; everyone is offered psychosocial support; irregular status calls for
immigration advice before anything else is decided; labour exploitation opens a claim.
"""

from __future__ import annotations

from events.identification import ExploitationPurpose as P
from events.identification import Indicator as I
from events.identification import Narrative, Need
from events.needs import ReferralType as T
from events.needs import Urgency as U

_RANK = {U.EMERGENCY: 0, U.URGENT: 1, U.ROUTINE: 2}


def assess_needs(narrative: Narrative, *, is_minor: bool) -> tuple[Need, ...]:
    """Suggested referrals with their urgency, one per referral type, most urgent first.

    >>> from events.identification import Act, Means, Sector
    >>> story = Narrative(acts={Act.RECRUITMENT}, means={Means.DECEPTION}, purposes={P.FORCED_LABOUR},
    ...                   indicators={I.NO_SAFE_ACCOMMODATION}, sector=Sector.AGRICULTURE)
    >>> [(n.referral_type.value, n.urgency.value) for n in assess_needs(story, is_minor=False)][:1]
    [('emergency_shelter', 'emergency')]
    """
    seen = narrative.indicators
    purposes = narrative.purposes
    violence = bool(seen & {I.PHYSICAL_VIOLENCE, I.SEXUAL_VIOLENCE})
    wanted: list[tuple[T, U, str]] = []
    if is_minor:
        wanted.append((T.CHILD_PROTECTION, U.EMERGENCY, "minor"))
    if I.NO_SAFE_ACCOMMODATION in seen:
        wanted.append((T.EMERGENCY_SHELTER, U.EMERGENCY, "no_safe_accommodation"))
    if I.INJURIES in seen:
        wanted.append((T.MEDICAL, U.EMERGENCY, "injuries"))
    elif violence:
        wanted.append((T.MEDICAL, U.URGENT, "violence"))
    if I.SEXUAL_VIOLENCE in seen or P.SEXUAL_EXPLOITATION in purposes:
        wanted.append((T.SEXUAL_REPRODUCTIVE_HEALTH, U.URGENT, "sexual_exploitation_or_violence"))
    wanted.append((T.PSYCHOSOCIAL, U.URGENT if is_minor or violence else U.ROUTINE, "offered_to_everyone"))
    if I.IRREGULAR_IMMIGRATION_STATUS in seen:
        wanted.append((T.IMMIGRATION_LEGAL, U.URGENT, "irregular_immigration_status"))
    if P.FORCED_CRIMINALITY in purposes:
        wanted.append((T.LEGAL_AID, U.URGENT, "non_punishment"))
    elif seen & {I.WITHHELD_WAGES, I.DEBT_BONDAGE} or P.FORCED_LABOUR in purposes:
        wanted.append((T.LEGAL_AID, U.ROUTINE, "labour_claim"))
    if not is_minor and purposes & {P.FORCED_LABOUR, P.DOMESTIC_SERVITUDE, P.FORCED_CRIMINALITY}:
        wanted.append((T.EMPLOYMENT, U.ROUTINE, "reintegration"))
    best: dict[T, Need] = {}
    for kind, urgency, reason in wanted:
        if kind not in best or _RANK[urgency] < _RANK[best[kind].urgency]:
            best[kind] = Need(referral_type=kind, urgency=urgency, reason=reason)
    return tuple(sorted(best.values(), key=lambda n: (_RANK[n.urgency], n.referral_type.value)))


def same_screening(first: dict[str, object], retry: dict[str, object]) -> bool:
    """Whether a retried intake (same idempotency key) says what the first said, in its clear parts."""
    ignore = {"survivor_id", "screening_id", "profile"}
    return {k: v for k, v in first.items() if k not in ignore} == {k: v for k, v in retry.items() if k not in ignore}
