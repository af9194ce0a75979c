"""What a survivor may be referred for, and how urgently. Shared by identification and referrals."""

from __future__ import annotations

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


class Urgency(StrEnum):
    """How soon a need must be met: sets a referral's deadline."""

    EMERGENCY = "emergency"
    URGENT = "urgent"
    ROUTINE = "routine"
