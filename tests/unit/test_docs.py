"""The documents a partner reads say what the code does."""

from __future__ import annotations

from events.consent import Category, Purpose
from infra.docs import DOCS, GENERATED
from infra.errors_doc import catalogue


def test_the_generated_documents_are_up_to_date() -> None:
    for name, make in GENERATED.items():
        assert (DOCS / name).read_text() == make(), f"docs/{name} is stale: run make asyncapi"


def test_the_catalogue_lists_the_refusals_partners_meet() -> None:
    text = catalogue()
    for code in ("not_in_care_team", "survivor_erased", "illegal_transition", "service_not_offered", "FORBIDDEN",
                 "BAD_CURSOR", "RATE_LIMITED", "CONSENT_REQUIRED", "SUBSCRIPTIONS_ONLY"):  # fmt: skip
        assert f"| `{code}` |" in text, code


def test_the_consent_document_explains_every_category_and_purpose() -> None:
    text = (DOCS / "consent.md").read_text()
    for code in [*Category, *Purpose]:
        assert f"| `{code}` |" in text, f"docs/consent.md does not explain {code}"
