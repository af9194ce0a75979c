"""What the consent service refuses to record, and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.consent import Basis, Directive
from events.errors import DomainError
from services.consent.domain import check_grant
from tests.support.consent import SEALED_TEXT, shelter_directive

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def directive(**changes: Any) -> Directive:
    return shelter_directive(NOW, **{"valid_from": NOW, **changes})


def refused(d: Directive, *, latest: int | None = None, minor: bool = False) -> DomainError:
    with pytest.raises(DomainError) as error:
        check_grant(d, latest_version=latest, survivor_is_minor=minor, now=NOW)
    return error.value


def test_an_adults_consent_is_recorded_as_given() -> None:
    d = directive()
    assert check_grant(d, latest_version=None, survivor_is_minor=False, now=NOW) == d


@pytest.mark.parametrize(("version", "latest"), [(2, 2), (1, 2), (4, 2), (2, None)])
def test_each_version_must_be_the_next_one(version: int, latest: int | None) -> None:
    error = refused(directive(version=version), latest=latest)
    assert (error.code, error.field) == ("stale_version", "directive.version")


def test_the_next_version_is_recorded() -> None:
    assert check_grant(directive(version=3), latest_version=2, survivor_is_minor=False, now=NOW).version == 3


def test_how_consent_was_obtained_is_required() -> None:
    error = refused(directive(obtained=None))
    assert (error.code, error.field) == ("consent_method_required", "directive.obtained")


def test_the_child_rule_follows_the_recorded_age_not_the_request() -> None:
    claimed_adult = directive(subject_is_minor=False)
    assert refused(claimed_adult, minor=True).code == "child_basis_required"
    claimed_child = check_grant(directive(subject_is_minor=True), latest_version=None, survivor_is_minor=False, now=NOW)
    assert not claimed_child.subject_is_minor, "a flag in the request does not make an adult's directive a child's"


def test_a_period_already_over_is_refused() -> None:
    error = refused(directive(valid_from=NOW - timedelta(days=2), valid_until=NOW - timedelta(days=1)))
    assert error.code == "already_expired"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({}, "child_basis_required"),
        ({"basis": Basis.GUARDIAN}, "justification_required"),
        (
            {"basis": Basis.GUARDIAN, "justification": SEALED_TEXT, "approvers": ("ana",)},
            "second_approver_required",
        ),
        (
            {"basis": Basis.BEST_INTEREST, "justification": SEALED_TEXT, "approvers": ("ana", "ana")},
            "second_approver_required",
        ),
    ],
)
def test_a_childs_directive_needs_its_basis_justification_and_second_approver(
    changes: dict[str, Any], code: str
) -> None:
    assert refused(directive(**changes), minor=True).code == code


def test_a_complete_childs_directive_is_recorded_and_marked_as_a_childs() -> None:
    d = directive(basis=Basis.BEST_INTEREST, justification=SEALED_TEXT, approvers=("ana", "ben"))
    recorded = check_grant(d, latest_version=None, survivor_is_minor=True, now=NOW)
    assert recorded.subject_is_minor
