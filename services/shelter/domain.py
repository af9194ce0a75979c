"""Shelter rules, pure: which unit types may house a survivor."""

from __future__ import annotations

from dataclasses import dataclass

from events.identification import Gender
from events.shelter import UnitType


@dataclass(frozen=True)
class Facts:
    """What identification shares in clear; unknowns are not held against the survivor."""

    is_minor: bool = False
    gender: Gender = Gender.UNDISCLOSED
    disability: bool | None = None


def unit_serves(unit: UnitType, facts: Facts) -> bool:
    """A child goes to a minors' unit only; women's and men's units by gender; anyone may use an accessible unit.

    >>> unit_serves(UnitType.ADULT_MEN, Facts(gender=Gender.FEMALE))
    False
    """
    if facts.is_minor:
        return unit is UnitType.MINORS
    match unit:
        case UnitType.MINORS:
            return False
        case UnitType.ADULT_WOMEN:
            return facts.gender is not Gender.MALE
        case UnitType.ADULT_MEN:
            return facts.gender is not Gender.FEMALE
        case UnitType.FAMILIES | UnitType.ACCESSIBLE:
            return True


def suitable_units(facts: Facts) -> list[UnitType]:
    """Every unit type that may house the survivor, the accessible one first where they need it."""
    units = [u for u in UnitType if unit_serves(u, facts)]
    if facts.disability:
        units.sort(key=lambda u: u is not UnitType.ACCESSIBLE)
    return units
