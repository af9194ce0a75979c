"""The console speaks English, Spanish and French completely: every message in the code and the templates has a
translation in each catalog, and every code the console shows has words."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from gateway.console import i18n
from gateway.projection import MatterStatus, PlacementStatus

from events.consent import Basis, Category, ConsentMethod, OrgType, Purpose
from events.directory import CapacityStatus
from events.employment import ProgramType, WageBand
from events.health import HealthService
from events.identification import Act, AgeBand, ExploitationPurpose, Gender, Means, ScreeningOutcome, Sector
from events.legal_aid import MatterOutcome, MatterType, Milestone
from events.needs import ReferralType, Urgency
from events.referrals import CancellationReason, ReferralStatus, RejectionReason
from events.shelter import Destination, UnitType

CONSOLE = Path(i18n.__file__).parent
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def messages() -> set[str]:
    found = {message for _file, _line, message, *_ in extract_from_dir(CONSOLE, METHODS, OPTIONS)}
    return {m for m in found if isinstance(m, str)}  # the console has no plural messages


@pytest.mark.parametrize("language", [code for code in i18n.LANGUAGES if code != "en"])
def test_every_message_is_translated(language: str) -> None:
    with (CONSOLE / "locale" / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=language)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    missing = messages() - translated
    assert not missing, f"{language} has no translation for {sorted(missing)} (make messages, then translate)"


SHOWN: list[type[StrEnum]] = [Category, ReferralStatus, Urgency, ReferralType, UnitType, RejectionReason,
                              CancellationReason, Act, Means, ExploitationPurpose, Sector, AgeBand, Gender,
                              ScreeningOutcome, ConsentMethod, Basis, OrgType, Destination, CapacityStatus, MatterType,
                              Milestone, MatterOutcome, HealthService, ProgramType, WageBand, PlacementStatus,
                              MatterStatus]  # fmt: skip


def test_every_code_the_console_shows_has_words() -> None:
    bare = [m.name for vocabulary in SHOWN for m in vocabulary if m.name not in i18n.LABELS]
    assert not bare, f"shown as raw codes: {bare}"
    assert all(p.name in i18n.LABELS or p.name in i18n.PURPOSES for p in Purpose)


def test_spanish_words_for_a_category_and_a_date() -> None:
    token = i18n.CURRENT.set("es")
    try:
        assert i18n.label("IDENTITY") == "Quién es usted (nombre, fecha de nacimiento, documentos)"
        assert i18n.label("STATISTICS", "purpose") == "para estadísticas, contado sin su nombre"
        assert "nov" in i18n.when("2026-11-23T10:00:00+00:00")
    finally:
        i18n.CURRENT.reset(token)
