"""Rebuilding the gateway's read model from the topics (``bin/haven replay``), in events per second.

Publishes ``n`` referral events (one referral requested for every four further moves) straight to
``haven.referrals``, then times a full replay of every topic into the read model.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from bench.progress import progress
from events.envelope import Envelope, to_kafka
from events.needs import ReferralType, Urgency
from events.referrals import ReferralAccepted, ReferralCompleted, ReferralReceived, ReferralRequested, ReferralStarted
from services.kernel import kafka
from services.kernel.settings import Settings

MOVES = (ReferralReceived, ReferralAccepted, ReferralStarted, ReferralCompleted)


async def publish(settings: Settings, n: int) -> None:
    producer = kafka.producer(settings, linger_ms=20)
    await producer.start()
    now = datetime.now(UTC)
    try:
        acks = []
        for i in range(0, n, 5):
            survivor, referral = uuid4(), uuid4()
            common = {"referral_id": referral, "survivor_id": survivor, "referrer_org": "bench-hotline",
                      "recipient_org": "bench-shelter"}  # fmt: skip
            requested = ReferralRequested(
                **common, actor_org="bench-hotline", referral_type=ReferralType.EMERGENCY_SHELTER,
                urgency=Urgency.EMERGENCY, purpose="service_delivery", categories=frozenset({"case_status"}),
                deadline=now + timedelta(hours=4),
            )  # fmt: skip
            for data in (requested, *(move(**common, actor_org="bench-shelter") for move in MOVES)):
                record = to_kafka(Envelope.new(data, source="haven/bench"))
                acks.append(await producer.send(record.topic, record.value, key=record.key, headers=record.headers))
            if len(acks) >= 5000:
                await asyncio.gather(*acks)
                acks.clear()
                progress(i + 5, n, "publishing referral events")
        await asyncio.gather(*acks)
        progress(n, n, "publishing referral events")
    finally:
        await producer.stop()


async def measure(n: int) -> dict[str, float]:
    from gateway.app import GatewaySettings  # graphql/ is on sys.path for make bench
    from gateway.cli import replay

    settings = GatewaySettings()
    await publish(settings, n)
    began = time.perf_counter()
    handled = await replay(settings)
    seconds = time.perf_counter() - began
    return {"published": n, "events_replayed": handled, "seconds": round(seconds, 1),
            "events_per_s": round(handled / seconds)}  # fmt: skip
