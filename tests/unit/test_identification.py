"""The screening intake's validation and identification's needs assessment."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from events.identification import Narrative, ScreeningIntake
from events.needs import ReferralType, Urgency
from services.identification.domain import assess_needs
from tests.support.intakes import intake_data


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as refused:
        ScreeningIntake.model_validate(data)
    return str(refused.value)


def test_a_complete_adult_screening_is_accepted() -> None:
    intake = ScreeningIntake.model_validate(intake_data())
    assert not intake.is_minor
    assert set(intake.personal_parts()) == {"identity", "contact", "narrative", "statistics"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"narrative__acts": []}, "narrative.acts"),
        ({"narrative__purposes": []}, "narrative.purposes"),
        ({"narrative__means": ["hypnosis"]}, "narrative.means"),
        ({"narrative__indicators": ["looked_sad"]}, "narrative.indicators"),
        ({"screener_type": "journalist"}, "screener_type"),
        ({"statistics__nationality": "Philippines"}, "statistics.nationality"),
        ({"identity__given_name": "x" * 201}, "identity.given_name"),
        ({"narrative__story": "y" * 20_001}, "narrative.story"),
        ({"identity__date_of_birth": "02/03/1994"}, "identity.date_of_birth"),
        ({"identity__date_of_birth": "1994-02-30"}, "identity.date_of_birth"),
        ({"contact__phone": "call me"}, "contact.phone"),
    ],
)
def test_an_invalid_intake_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    assert field in refusal(intake_data(**change))


def test_a_missing_required_element_is_named() -> None:
    data = intake_data()
    del data["narrative"]["sector"]
    assert "narrative.sector" in refusal(data)
    assert "Field required" in refusal(data)


def test_an_unknown_field_is_refused_rather_than_silently_dropped() -> None:
    assert "passport_scan" in refusal(intake_data(identity__passport_scan="…"))


def test_an_adult_needs_the_means_but_a_child_does_not() -> None:
    assert "narrative.means is required for an adult" in refusal(intake_data(narrative__means=[]))
    child = ScreeningIntake.model_validate(intake_data(narrative__means=[], statistics__age_band="age_9_17"))
    assert child.is_minor
    presumed = ScreeningIntake.model_validate(intake_data(narrative__means=[], presumed_minor=True))
    assert presumed.is_minor, "when age is uncertain, the presumption of minority applies"


def test_only_a_competent_authority_confirms_a_victim() -> None:
    assert "competent_authority" in refusal(intake_data(outcome="confirmed_victim"))
    ScreeningIntake.model_validate(intake_data(outcome="confirmed_victim", decided_by_role="competent_authority"))


def needs_of(**narrative: Any) -> dict[ReferralType, Urgency]:
    story = Narrative.model_validate(
        {"acts": ["recruitment"], "purposes": ["forced_labour"], "sector": "agriculture", **narrative}
    )
    return {n.referral_type: n.urgency for n in assess_needs(story, is_minor=False)}


def test_no_safe_place_tonight_is_an_emergency_shelter_need() -> None:
    assert needs_of(indicators=["no_safe_accommodation"])[ReferralType.EMERGENCY_SHELTER] is Urgency.EMERGENCY
    assert ReferralType.EMERGENCY_SHELTER not in needs_of(indicators=[])


def test_injuries_are_an_emergency_and_violence_urgent() -> None:
    assert needs_of(indicators=["injuries", "physical_violence"])[ReferralType.MEDICAL] is Urgency.EMERGENCY
    assert needs_of(indicators=["physical_violence"])[ReferralType.MEDICAL] is Urgency.URGENT


def test_everyone_is_offered_psychosocial_support_and_a_child_child_protection() -> None:
    story = Narrative.model_validate({"acts": ["receipt"], "purposes": ["other"], "sector": "other"})
    adult = {n.referral_type: n.urgency for n in assess_needs(story, is_minor=False)}
    child = {n.referral_type: n.urgency for n in assess_needs(story, is_minor=True)}
    assert adult[ReferralType.PSYCHOSOCIAL] is Urgency.ROUTINE
    assert child[ReferralType.PSYCHOSOCIAL] is Urgency.URGENT
    assert child[ReferralType.CHILD_PROTECTION] is Urgency.EMERGENCY
    assert ReferralType.EMPLOYMENT not in child


def test_forced_criminality_calls_for_non_punishment_advice_and_status_for_immigration_advice() -> None:
    needs = needs_of(purposes=["forced_criminality"], indicators=["irregular_immigration_status"])
    assert needs[ReferralType.LEGAL_AID] is Urgency.URGENT
    assert needs[ReferralType.IMMIGRATION_LEGAL] is Urgency.URGENT


def test_needs_come_most_urgent_first_one_per_type() -> None:
    story = Narrative.model_validate(
        {"acts": ["recruitment"], "purposes": ["sexual_exploitation"], "sector": "sex_industry",
         "indicators": ["injuries", "sexual_violence", "no_safe_accommodation"]}
    )  # fmt: skip
    needs = assess_needs(story, is_minor=False)
    ranks = {"emergency": 0, "urgent": 1, "routine": 2}
    assert [ranks[n.urgency] for n in needs] == sorted(ranks[n.urgency] for n in needs)
    assert len({n.referral_type for n in needs}) == len(needs)


def test_age_bands_are_ctdcs_and_a_band_recorded_before_them_maps_only_where_it_fits_inside_one() -> None:
    from events.identification import AgeBand, Statistics

    assert [b.value for b in AgeBand][:9] == ["age_0_8", "age_9_17", "age_18_20", "age_21_23", "age_24_26",
                                              "age_27_29", "age_30_38", "age_39_47", "age_48_plus"]  # fmt: skip
    assert Statistics.model_validate({"age_band": "age_12_17"}).age_band is AgeBand.AGE_9_17
    assert Statistics.model_validate({"age_band": "age_25_34"}).age_band is AgeBand.UNKNOWN, "one of three bands"
    assert AgeBand("age_55_plus") is AgeBand.AGE_48_PLUS
