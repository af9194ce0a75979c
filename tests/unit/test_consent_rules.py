"""What the consent service refuses to record, and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.consent import Basis, Directive
from events.errors import DomainError
from services.consent.domain import check_grant
from tests.support.consent import shelter_directive

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


def test_a_version_must_be_newer_than_the_recorded_one() -> None:
    error = refused(directive(version=2), latest=2)
    assert (error.code, error.field) == ("stale_version", "directive.version")


def test_a_period_already_over_is_refused() -> None:
    error = refused(directive(valid_from=NOW - timedelta(days=2), valid_until=NOW - timedelta(days=1)))
    assert error.code == "already_expired"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({}, "child_basis_required"),
        ({"basis": Basis.GUARDIAN}, "justification_required"),
        (
            {"basis": Basis.GUARDIAN, "justification": "guardian present", "approvers": ("ana",)},
            "second_approver_required",
        ),
        (
            {"basis": Basis.BEST_INTEREST, "justification": "no guardian", "approvers": ("ana", "ana")},
            "second_approver_required",
        ),
    ],
)
def test_a_childs_directive_needs_its_basis_justification_and_second_approver(
    changes: dict[str, Any], code: str
) -> None:
    assert refused(directive(**changes), minor=True).code == code


def test_a_complete_childs_directive_is_recorded_and_marked_as_a_childs() -> None:
    d = directive(basis=Basis.BEST_INTEREST, justification="no guardian reachable", approvers=("ana", "ben"))
    recorded = check_grant(d, latest_version=None, survivor_is_minor=True, now=NOW)
    assert recorded.subject_is_minor
