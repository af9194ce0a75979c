"""Every referral state as an SDOHCC referral Task that the FHIR R4 models accept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from fhir.resources.R4B.task import Task
from gateway.fhir import SDOH_EXCLUDED, task

from events.referrals import ReferralStatus

TASK_STATUS = {"draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "in-progress",
               "on-hold", "failed", "completed", "entered-in-error"}  # fmt: skip
"""http://hl7.org/fhir/task-status (R4)."""
REFERRAL_TASK_STATUS = TASK_STATUS - {"ready", "received"}
"""SDOHCC ValueSet Referral Task Status: TaskStatus, excluding ready and received (the IG's own FSH source)."""


def row(status: ReferralStatus, **changes: Any) -> dict[str, Any]:
    now = datetime(2026, 11, 23, 9, tzinfo=UTC)
    return {"referral_id": uuid4(), "survivor_id": uuid4(), "referrer_org": "city-hotline",
            "recipient_org": "harbour-shelter", "referral_type": "emergency_shelter", "urgency": "emergency",
            "status": status.value, "deadline": now + timedelta(hours=4), "parent_referral_id": None,
            "created_at": now, "updated_at": now, "last_reason": None, **changes}  # fmt: skip


@pytest.mark.parametrize("status", list(ReferralStatus))
def test_each_state_is_a_valid_referral_task_in_the_igs_value_set(status: ReferralStatus) -> None:
    resource = task(row(status, last_reason="no_capacity" if status is ReferralStatus.REJECTED else None))
    validated: Any = Task.model_validate(resource)
    assert validated.status in REFERRAL_TASK_STATUS, "only codes of the IG's referral task status set"
    assert validated.intent == "order"
    assert validated.code.coding[0].code == "fulfill"
    assert validated.focus.reference == "#referral"
    assert validated.contained[0].get_resource_type() == "ServiceRequest"
    assert all(c.system for c in validated.code.coding), "a code system on every coding"
    if validated.status in {"rejected", "cancelled", "on-hold", "failed"}:
        assert validated.statusReason.text, "the IG wants the reason in text"
    if validated.businessStatus is not None:
        assert all(c.system for c in validated.businessStatus.coding)


def test_received_which_the_ig_excludes_is_requested_with_its_business_status() -> None:
    validated: Any = Task.model_validate(task(row(ReferralStatus.RECEIVED)))
    assert validated.status == "requested"
    assert validated.businessStatus.coding[0].code == "received"
    assert {"ready", "received"} == SDOH_EXCLUDED


def test_states_fhir_folds_together_stay_apart_in_the_business_status() -> None:
    pairs = {(t["status"], (t.get("businessStatus") or {}).get("text")) for t in (task(row(s)) for s in ReferralStatus)}
    assert len(pairs) == len(ReferralStatus), "no two of our states look alike as a Task"
