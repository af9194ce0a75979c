"""Shelter events. A shelter's address is location data and never travels here in plaintext."""

from __future__ import annotations

from events.base import EventData
from events.catalog import SHELTER
from events.types import Code, OrgId, ReferralId, SurvivorId


class PlacementEvent(EventData):
    topic = SHELTER.name

    survivor_id: SurvivorId
    referral_id: ReferralId
    shelter_org: OrgId
    unit_type: Code


class PlacementCheckedIn(PlacementEvent):
    event_type = "placement.checked_in"


class PlacementCheckedOut(PlacementEvent):
    event_type = "placement.checked_out"

    destination: Code
