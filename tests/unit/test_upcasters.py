"""Events written before free text and statistics were sealed still decode, as the current version,
without carrying the clear text forward."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from events.consent import (
    LEGACY_JUSTIFICATION,
    Category,
    ConsentGranted,
    ConsentRecord,
    Party,
    Purpose,
    decide,
)
from events.envelope import Envelope, from_kafka, to_kafka
from events.identification import SurvivorIdentified
from events.referrals import ReferralAccepted
from tests.support.consent import SEALED_TEXT, shelter_directive


def as_version_1(envelope: Envelope, **changes: Any) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The record as version 1 of its type would have carried it, with ``changes`` to its JSON data."""
    record = to_kafka(envelope)
    data = {**json.loads(record.value), **changes}
    headers = [(k, b"1" if k == "ce_schemaversion" else v) for k, v in record.headers]
    return json.dumps(data).encode(), headers


def test_a_referral_events_clear_note_is_not_carried_forward() -> None:
    ids = {"referral_id": uuid4(), "survivor_id": uuid4()}
    accepted = ReferralAccepted(**ids, actor_org="harbour-shelter", referrer_org="city-hotline",
                                recipient_org="harbour-shelter")  # fmt: skip
    value, headers = as_version_1(Envelope.new(accepted, source="haven/referrals"), note="she prefers Tagalog")
    decoded = from_kafka(value, headers)
    assert isinstance(decoded.data, ReferralAccepted)
    assert decoded.data.note is None
    assert decoded.schemaversion == ReferralAccepted.version == 2


def test_clear_statistics_of_an_old_identification_are_not_carried_forward() -> None:
    profile = {"identity": SEALED_TEXT.model_dump(), "narrative": SEALED_TEXT.model_dump()}
    identified = SurvivorIdentified.model_validate({
        "survivor_id": uuid4(), "screening_id": uuid4(), "screener_org": "city-hotline", "screener_type": "hotline",
        "outcome": "probable_victim", "decided_by": "city-hotline", "decided_by_role": "screener", "is_minor": False,
        "profile": profile,
    })  # fmt: skip
    stats = {"age_band": "age_25_34", "gender": "female", "nationality": "PH", "disability": False}
    value, headers = as_version_1(Envelope.new(identified, source="haven/identification"), statistics=stats)
    decoded = from_kafka(value, headers).data
    assert isinstance(decoded, SurvivorIdentified)
    assert decoded.profile.statistics is None


def test_an_old_childs_directive_keeps_its_effect_without_its_clear_justification_or_names() -> None:
    now = datetime.now(UTC)
    directive = shelter_directive(now, basis="guardian", justification=SEALED_TEXT, approvers=("x", "y"),
                                  subject_is_minor=True)  # fmt: skip
    granted = ConsentGranted(survivor_id=uuid4(), directive=directive)
    old = json.loads(granted.model_dump_json())["directive"] | {
        "justification": "mother is abroad; aunt present",
        "approvers": ["Ana Reyes", "Ben Cruz"],
        "obtained": None,
    }
    value, headers = as_version_1(Envelope.new(granted, source="haven/consent"), directive=old)
    decoded = from_kafka(value, headers).data
    assert isinstance(decoded, ConsentGranted)
    assert decoded.directive.justification is not None
    assert decoded.directive.justification.model_dump() == LEGACY_JUSTIFICATION
    assert len(set(decoded.directive.approvers)) == 2
    assert all(a.startswith("legacy-") for a in decoded.directive.approvers), "names are not carried forward"

    party = Party("harbour-shelter", "shelter")  # type: ignore[arg-type]
    later = now + timedelta(minutes=1)
    assert decide(
        [ConsentRecord(decoded.directive)], party, Category.CONTACT, Purpose.SERVICE_DELIVERY, later
    ).permitted
