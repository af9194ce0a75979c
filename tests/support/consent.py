"""Consent directives for tests: the shelter may see contact details and case status, for 90 days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from events.consent import Category, ConsentMethod, Directive, Grantee, HowObtained, Purpose
from events.types import Sealed

HOW_OBTAINED = HowObtained(method=ConsentMethod.WRITTEN, language="tl", interpreter=True, form_reference="CF-2026-0113")
"""A signed form, explained in Tagalog through an interpreter."""

SEALED_TEXT = Sealed(kid="test", nonce="AAAAAAAAAAAAAAAA", ciphertext="AAAA")
"""A sealed free text nobody opens (a child directive's justification, in tests of the rules only)."""


def shelter_directive(now: datetime | None = None, **changes: Any) -> Directive:
    now = now or datetime.now(UTC)
    fields: dict[str, Any] = {
        "directive_id": uuid4(),
        "version": 1,
        "grantee": Grantee(org_id="harbour-shelter"),
        "categories": frozenset({Category.CONTACT, Category.CASE_STATUS}),
        "purposes": frozenset({Purpose.SERVICE_DELIVERY}),
        "valid_from": now - timedelta(minutes=1),
        "valid_until": now + timedelta(days=90),
        "recorded_by": "city-hotline",
        "obtained": HOW_OBTAINED,
    }
    return Directive.model_validate({**fields, **changes})
