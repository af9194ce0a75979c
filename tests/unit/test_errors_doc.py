"""The error catalogue a partner reads is the one the code raises."""

from __future__ import annotations

from infra.errors_doc import DOC, catalogue


def test_the_committed_error_catalogue_is_up_to_date() -> None:
    assert DOC.read_text() == catalogue(), "docs/errors.md is stale: run make asyncapi"


def test_the_catalogue_lists_the_refusals_partners_meet() -> None:
    text = catalogue()
    for code in ("not_in_care_team", "survivor_erased", "illegal_transition", "service_not_offered", "FORBIDDEN",
                 "BAD_CURSOR", "RATE_LIMITED", "CONSENT_REQUIRED", "SUBSCRIPTIONS_ONLY"):  # fmt: skip
        assert f"| `{code}` |" in text, code
