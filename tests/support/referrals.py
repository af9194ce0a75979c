"""Referral helpers for tests: consent that the referrals service has seen, requests, refusals."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

from aiokafka import AIOKafkaProducer

from events.catalog import OUTCOMES
from events.consent import Category, GrantConsent, Grantee
from events.envelope import Envelope
from events.needs import ReferralType, Urgency
from events.referrals import RequestReferral
from services.kernel.db import Pool
from services.kernel.settings import Settings
from tests.support.consent import shelter_directive
from tests.support.intakes import send
from tests.support.observe import eventually, read_until

SHELTER_NEEDS = frozenset({Category.IDENTITY, Category.CONTACT, Category.CASE_STATUS})


async def consent_to(producer: AIOKafkaProducer, db: Pool, survivor: UUID, grantee: Grantee,
                     categories: frozenset[Category] = SHELTER_NEEDS, *, recorded_by: str) -> UUID:  # fmt: skip
    """The survivor consents, recorded by a member of their care team; returns once the referrals service knows it."""
    directive = shelter_directive(grantee=grantee, categories=categories, recorded_by=recorded_by)
    await send(producer, GrantConsent(survivor_id=survivor, directive=directive))

    async def projected() -> bool:
        return bool(await db.fetchval(
            "SELECT 1 FROM referrals.consent_directives WHERE directive_id = $1", directive.directive_id))  # fmt: skip

    await eventually(projected)
    return directive.directive_id


def request(survivor: UUID, referrer: str, recipient: str, **changes: Any) -> RequestReferral:
    fields: dict[str, Any] = {
        "referral_id": uuid4(), "survivor_id": survivor, "referrer_org": referrer, "recipient_org": recipient,
        "referral_type": ReferralType.EMERGENCY_SHELTER, "urgency": Urgency.EMERGENCY,
    }  # fmt: skip
    return RequestReferral.model_validate({**fields, **changes})


async def refusals_for(settings: Settings, sent: list[Envelope]) -> dict[UUID, tuple[str, str]]:
    """The refusals of ``sent`` commands, as their senders read them on the outcomes topic:
    command id → (code, "field: message")."""
    ids = {str(e.id) for e in sent}

    def refused(messages: list[Any]) -> dict[UUID, tuple[str, str]]:
        found = {}
        for m in messages:
            outcome = json.loads(m.value)
            if outcome.get("command_id") in ids and "code" in outcome:
                detail = f"{outcome['field'] + ': ' if outcome.get('field') else ''}{outcome['message']}"
                found[UUID(outcome["command_id"])] = (outcome["code"], detail)
        return found

    messages = await read_until(settings, OUTCOMES.name, lambda ms: len(refused(ms)) == len(ids), timeout=30)
    return refused(messages)
