"""Consent rules, pure: whether a directive may be recorded as it stands."""

from __future__ import annotations

from datetime import datetime

from events.consent import Basis, Directive
from events.errors import DomainError


def restates(recorded: Directive, given: Directive) -> bool:
    """``given`` is ``recorded`` sent again: the same version, grantee, scope, period and basis, by the same team.

    Sealed parts (a justification) are sealed afresh on each attempt, so they are not compared.

    >>> from datetime import UTC, datetime
    >>> from uuid import UUID
    >>> d = Directive(directive_id=UUID(int=1), version=1, grantee={"org_type": "shelter"}, categories={"identity"},
    ...               purposes={"service_delivery"}, valid_from=datetime(2026, 1, 1, tzinfo=UTC),
    ...               valid_until=datetime(2027, 1, 1, tzinfo=UTC), recorded_by="hotline")
    >>> restates(d, d), restates(d, d.model_copy(update={"valid_until": datetime(2028, 1, 1, tzinfo=UTC)}))
    (True, False)
    """
    unsealed = {"justification", "subject_is_minor"}
    return recorded.model_dump(exclude=unsealed) == given.model_dump(exclude=unsealed)


def check_grant(
    directive: Directive, *, latest_version: int | None, survivor_is_minor: bool, now: datetime
) -> Directive:
    """The directive to record, marked for a minor from the survivor's recorded age, or a ``DomainError``.

    Refusing consent never blocks a service, so nothing here requires a permit; it only keeps
    the directives coherent: each version the next one, a period not already over, a record of how
    consent was obtained, and for a child a guardian or best-interest basis, a written
    justification and a second approver. Whether the survivor is a child comes from the age
    identification recorded, never from the request (``directive.subject_is_minor`` is overwritten).
    """
    expected = (latest_version or 0) + 1
    if directive.version != expected:
        raise DomainError(
            "stale_version",
            f"version {directive.version} is not the next version of this directive ({expected})",
            field="directive.version",
        )
    if directive.valid_until <= now:
        raise DomainError("already_expired", "valid_until has already passed", field="directive.valid_until")
    if directive.obtained is None:
        raise DomainError(
            "consent_method_required",
            "say how consent was obtained: method, the language it was explained in, and whether an interpreter helped",
            field="directive.obtained",
        )
    if survivor_is_minor:
        if directive.basis is Basis.CONSENT:
            raise DomainError(
                "child_basis_required",
                "a child's directive rests on a guardian or best_interest basis, not the child's consent alone",
                field="directive.basis",
            )
        if not directive.justification:
            raise DomainError(
                "justification_required", "a child's directive needs a written justification",
                field="directive.justification",
            )  # fmt: skip
        if len(set(directive.approvers)) < 2:
            raise DomainError(
                "second_approver_required", "a child's directive needs two distinct approvers",
                field="directive.approvers",
            )  # fmt: skip
    return directive.model_copy(update={"subject_is_minor": survivor_is_minor})
