"""Partner organisations for tests: registered in the directory, each with a fresh id."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from aiokafka import AIOKafkaProducer

from events.consent import OrgType
from events.directory import CapacityChanged, CapacityStatus, Organisation, RegisterOrganisation
from events.envelope import Envelope, to_kafka
from events.needs import ReferralType
from services.kernel.db import Pool
from tests.support.intakes import send
from tests.support.observe import eventually


def organisation(kind: OrgType, *services: ReferralType, **changes: Any) -> Organisation:
    fields: dict[str, Any] = {
        "org_id": f"{kind.replace('_', '-')}-{uuid4().hex[:8]}",
        "name": f"Test {kind}",
        "org_type": kind,
        "services": frozenset(services),
        "jurisdictions": frozenset({"GB"}),
        "languages": frozenset({"en"}),
    }
    return Organisation.model_validate({**fields, **changes})


async def register(producer: AIOKafkaProducer, db: Pool, *orgs: Organisation) -> None:
    """Register ``orgs`` with the referrals service and wait until its directory has them."""
    await send(producer, *(RegisterOrganisation(organisation=org) for org in orgs))
    ids = [org.org_id for org in orgs]

    async def known() -> bool:
        found: int = await db.fetchval("SELECT count(*) FROM referrals.organisations WHERE org_id = ANY($1)", ids)
        return found == len(ids)

    await eventually(known)


async def announce_capacity(
    producer: AIOKafkaProducer, org: Organisation, service: ReferralType, status: CapacityStatus, available: int
) -> None:
    """What a provider service publishes when its capacity changes."""
    change = CapacityChanged(org_id=org.org_id, service=service, status=status, available=available)
    record = to_kafka(Envelope.new(change, source=f"haven/{org.org_id}"))
    await producer.send_and_wait(record.topic, value=record.value, key=record.key, headers=record.headers)
