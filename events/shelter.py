"""Shelter: beds by unit type, placements, check-in and check-out.

A shelter's address is location data: it travels only sealed with the survivor's own key
(category ``location``), so that only a partner the survivor consented to can read it.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from events.base import REGISTRY, EventData, drop_plain_text
from events.catalog import SHELTER, SHELTER_COMMANDS
from events.types import OrgId, ReferralId, Sealed, SurvivorId


class UnitType(StrEnum):
    ADULT_WOMEN = "adult_women"
    ADULT_MEN = "adult_men"
    FAMILIES = "families"
    MINORS = "minors"
    ACCESSIBLE = "accessible"


class Destination(StrEnum):
    """Where a survivor went on leaving (an outcome the referrer sees)."""

    TRANSITIONAL_HOUSING = "transitional_housing"
    INDEPENDENT_LIVING = "independent_living"
    FAMILY_REUNIFICATION = "family_reunification"
    OTHER_SHELTER = "other_shelter"
    HOSPITAL = "hospital"
    REPATRIATION = "repatriation"
    LEFT_WITHOUT_NOTICE = "left_without_notice"
    UNKNOWN = "unknown"


# ---------------------------------------------------------------- commands


class ConfigureShelter(EventData):
    """Command: how many beds of each unit type a shelter has (beds in use are never removed)."""

    event_type = "shelter.configure"
    topic = SHELTER_COMMANDS.name

    org_id: OrgId
    beds: dict[UnitType, int] = Field(min_length=1)

    def subject(self) -> str:
        return self.org_id


class ShelterAction(EventData):
    version = 2  # the note is sealed since version 2
    topic = SHELTER_COMMANDS.name

    referral_id: ReferralId
    survivor_id: SurvivorId
    actor_org: OrgId
    note: Sealed | None = Field(default=None, description="Free text, sealed with the survivor's key (FREE_TEXT).")


class AcceptPlacement(ShelterAction):
    """Command: take the referral into a free bed of ``unit_type`` (or reject it: no capacity)."""

    event_type = "shelter.accept_placement"
    unit_type: UnitType


class CheckIn(ShelterAction):
    event_type = "shelter.check_in"


class CheckOut(ShelterAction):
    event_type = "shelter.check_out"
    destination: Destination


# ---------------------------------------------------------------- events


class PlacementEvent(EventData):
    topic = SHELTER.name

    survivor_id: SurvivorId
    referral_id: ReferralId
    shelter_org: OrgId
    unit_type: UnitType


class PlacementReserved(PlacementEvent):
    event_type = "placement.reserved"

    location: Sealed | None = Field(default=None, description="The shelter's address, sealed (category location).")


class PlacementCheckedIn(PlacementEvent):
    event_type = "placement.checked_in"


class PlacementCheckedOut(PlacementEvent):
    event_type = "placement.checked_out"

    destination: Destination


class PlacementReleased(PlacementEvent):
    """The bed is free again: the referral ended before check-in (cancelled, declined, in error)."""

    event_type = "placement.released"


for _model in ShelterAction.__subclasses__():
    REGISTRY.upcaster(_model.event_type, 1)(drop_plain_text("note"))
