"""The referral lifecycle, who may move it, deadlines, minimum necessary, eligibility and re-routing."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from events.consent import Category
from events.directory import CapacityStatus, Eligibility, Offer, Organisation, Seeker, serves
from events.errors import DomainError
from events.identification import AgeBand, Gender
from events.needs import ReferralType, Urgency
from events.referrals import FHIR_TASK, SHARED_AT_MOST, CancellationReason, ReferralStatus
from services.referrals.domain import (
    NEXT,
    SYSTEM_ORG,
    Parties,
    check_actor,
    check_transition,
    deadline,
    reroute_target,
)

S = ReferralStatus
NOW = datetime(2026, 11, 22, 21, tzinfo=UTC)
PARTIES = Parties(referrer="city-hotline", recipient="harbour-shelter")

FHIR_TASK_STATUSES = {"draft", "requested", "received", "accepted", "rejected", "ready", "cancelled",
                      "in-progress", "on-hold", "failed", "completed", "entered-in-error"}  # fmt: skip


def test_every_state_maps_to_its_own_fhir_task_status() -> None:
    assert set(FHIR_TASK) == set(ReferralStatus)
    assert len(set(FHIR_TASK.values())) == len(FHIR_TASK), "one-to-one"
    assert {status for status, _ in FHIR_TASK.values()} <= FHIR_TASK_STATUSES


def test_the_closed_loop_with_a_waitlist_is_legal() -> None:
    path = [S.REQUESTED, S.RECEIVED, S.ACCEPTED, S.IN_PROGRESS, S.ON_HOLD, S.IN_PROGRESS, S.COMPLETED]
    for current, target in itertools.pairwise(path):
        check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [(S.REQUESTED, S.COMPLETED), (S.COMPLETED, S.IN_PROGRESS), (S.REJECTED, S.ACCEPTED), (S.EXPIRED, S.RECEIVED),
     (S.ACCEPTED, S.EXPIRED), (S.ENTERED_IN_ERROR, S.REQUESTED)],
)  # fmt: skip
def test_an_illegal_transition_is_refused_naming_both_states(current: S, target: S) -> None:
    with pytest.raises(DomainError) as refused:
        check_transition(current, target)
    assert refused.value.code == "illegal_transition"
    assert str(current) in refused.value.message
    assert str(target) in refused.value.message


def test_finished_referrals_can_only_be_marked_entered_in_error() -> None:
    for state in (S.COMPLETED, S.FAILED, S.REJECTED, S.DECLINED_BY_SURVIVOR, S.CANCELLED, S.EXPIRED):
        assert frozenset({S.ENTERED_IN_ERROR}) == NEXT[state]


def test_resuming_needs_a_hold() -> None:
    with pytest.raises(DomainError, match="accepted cannot become in_progress"):
        check_transition(S.ACCEPTED, S.IN_PROGRESS, only_from=frozenset({S.ON_HOLD}))


@pytest.mark.parametrize(
    ("target", "actor", "reason"),
    [(S.ACCEPTED, "city-hotline", None), (S.CANCELLED, "harbour-shelter", CancellationReason.BY_REFERRER),
     (S.CANCELLED, "city-hotline", CancellationReason.CONSENT_WITHDRAWN), (S.EXPIRED, "harbour-shelter", None),
     (S.COMPLETED, "other-shelter", None)],
)  # fmt: skip
def test_only_the_right_party_moves_a_referral(target: S, actor: str, reason: str | None) -> None:
    with pytest.raises(DomainError) as refused:
        check_actor(target, actor, PARTIES, reason)
    assert (refused.value.code, refused.value.field) == ("not_a_party", "actor_org")


def test_the_parties_and_haven_may_make_their_own_moves() -> None:
    check_actor(S.ACCEPTED, "harbour-shelter", PARTIES)
    check_actor(S.CANCELLED, "city-hotline", PARTIES, CancellationReason.BY_REFERRER)
    check_actor(S.DECLINED_BY_SURVIVOR, "city-hotline", PARTIES)
    check_actor(S.EXPIRED, SYSTEM_ORG, PARTIES)
    check_actor(S.CANCELLED, SYSTEM_ORG, PARTIES, CancellationReason.CONSENT_WITHDRAWN)


def test_an_emergency_is_answered_within_hours_and_a_routine_need_within_days() -> None:
    assert deadline(Urgency.EMERGENCY, NOW, None) - NOW == timedelta(hours=4)
    assert deadline(Urgency.ROUTINE, NOW, None) - NOW >= timedelta(days=7)
    assert deadline(Urgency.EMERGENCY, NOW, NOW + timedelta(hours=1)) == NOW + timedelta(hours=1)
    with pytest.raises(DomainError, match="respond_by"):
        deadline(Urgency.EMERGENCY, NOW, NOW + timedelta(hours=5))
    with pytest.raises(DomainError, match="respond_by"):
        deadline(Urgency.EMERGENCY, NOW, NOW - timedelta(minutes=1))


def test_a_shelter_placement_does_not_ask_for_the_narrative() -> None:
    assert set(SHARED_AT_MOST) == set(ReferralType)
    assert Category.NARRATIVE not in SHARED_AT_MOST[ReferralType.EMERGENCY_SHELTER]
    assert Category.HEALTH not in SHARED_AT_MOST[ReferralType.LEGAL_AID]
    assert all(Category.CASE_STATUS in needed for needed in SHARED_AT_MOST.values())


def shelter(**eligibility: object) -> Organisation:
    return Organisation(
        org_id="harbour-shelter", name="Harbour", org_type="shelter", services={ReferralType.EMERGENCY_SHELTER},
        jurisdictions={"GB"}, languages={"en", "tl"}, eligibility=Eligibility.model_validate(eligibility),
    )  # fmt: skip


def test_eligibility_admits_whom_the_provider_serves() -> None:
    women = shelter(genders={"female"}, min_age=18)
    assert serves(women, Seeker(AgeBand.AGE_24_26, Gender.FEMALE, "tl"))
    assert not serves(women, Seeker(AgeBand.AGE_24_26, Gender.MALE))
    assert not serves(women, Seeker(AgeBand.AGE_9_17, Gender.FEMALE))
    assert not serves(women, Seeker(wheelchair=True))
    assert not serves(women, Seeker(language="ru"))
    assert serves(women, Seeker()), "an unknown age or gender is not held against the seeker"


def test_reroute_goes_to_the_best_untried_provider_with_capacity() -> None:
    offers = [
        Offer("a", "A", CapacityStatus.CAPACITY, 1),
        Offer("b", "B", CapacityStatus.CAPACITY, 5),
        Offer("c", "C", CapacityStatus.WAITLIST, 9),
        Offer("d", "D", CapacityStatus.NO_CAPACITY, 0),
    ]
    assert reroute_target(offers, tried=set()) == offers[1]
    assert reroute_target(offers, tried={"b"}) == offers[0]
    assert reroute_target(offers, tried={"a", "b"}) is None, "a waitlist is not a place"


def test_reroute_prefers_providers_the_survivor_shares_more_with_but_never_requires_consent() -> None:
    offers = [Offer("roomy", "R", CapacityStatus.CAPACITY, 9), Offer("trusted", "T", CapacityStatus.CAPACITY, 1)]
    withheld = {"roomy": 3, "trusted": 0}
    assert reroute_target(offers, tried=set(), withheld=withheld) == offers[1], "consent shares more with it"
    assert reroute_target(offers, tried={"trusted"}, withheld=withheld) == offers[0], "nothing shared still gets a bed"
