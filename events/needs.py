"""What a survivor may be referred for, and how urgently. Shared by identification and referrals."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class ReferralType(StrEnum):
    """Kinds of service a survivor can be referred to."""

    EMERGENCY_SHELTER = "emergency_shelter"
    TRANSITIONAL_HOUSING = "transitional_housing"
    MEDICAL = "medical"
    MENTAL_HEALTH = "mental_health"
    SEXUAL_REPRODUCTIVE_HEALTH = "sexual_reproductive_health"
    PSYCHOSOCIAL = "psychosocial"
    LEGAL_AID = "legal_aid"
    IMMIGRATION_LEGAL = "immigration_legal"
    CHILD_PROTECTION = "child_protection"
    EMPLOYMENT = "employment"
    INTERPRETATION = "interpretation"


HAVEN_PROVIDERS: Mapping[str, frozenset[ReferralType]] = {
    "shelter": frozenset({ReferralType.EMERGENCY_SHELTER, ReferralType.TRANSITIONAL_HOUSING}),
    "legal_aid": frozenset({ReferralType.LEGAL_AID, ReferralType.IMMIGRATION_LEGAL}),
    "health": frozenset(
        {
            ReferralType.MEDICAL,
            ReferralType.MENTAL_HEALTH,
            ReferralType.SEXUAL_REPRODUCTIVE_HEALTH,
            ReferralType.PSYCHOSOCIAL,
        }
    ),
    "employment": frozenset({ReferralType.EMPLOYMENT}),
}
"""The referral types each of Haven's own provider services takes in, for every recipient organisation."""

RECEIVED_ON_DELIVERY: frozenset[ReferralType] = frozenset().union(*HAVEN_PROVIDERS.values())
"""A referral of these types is ``received`` as it is requested: its provider service reads it from Haven's own
topic, so the referrals service records the receipt in the request's transaction instead of waiting for a
round trip that says so (child protection and interpretation have no Haven service: their recipients say it)."""


class Urgency(StrEnum):
    """How soon a need must be met: sets a referral's deadline."""

    EMERGENCY = "emergency"
    URGENT = "urgent"
    ROUTINE = "routine"
