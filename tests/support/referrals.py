"""Referral helpers for tests: consent that the referrals service has seen, requests, dead letters."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from aiokafka import AIOKafkaProducer

from events.catalog import REFERRALS_COMMANDS
from events.consent import Category, GrantConsent, Grantee
from events.envelope import Envelope, header_map
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


async def dead_letters_for(
    settings: Settings, sent: list[Envelope], topic: str = REFERRALS_COMMANDS.name
) -> dict[UUID, tuple[str, str]]:
    """The dead letters of ``sent`` commands: id → (reason, detail)."""
    ids = {str(e.id) for e in sent}

    def all_there(messages: list[Any]) -> bool:
        return ids <= {header_map(m.headers).get("ce_id") for m in messages}

    messages = await read_until(settings, f"{topic}.dlq", all_there, timeout=30)
    found = {}
    for m in messages:
        h = header_map(m.headers)
        if h.get("ce_id") in ids:
            found[UUID(h["ce_id"])] = (h["haven_dlq_reason"], h["haven_dlq_detail"])
    return found
