"""Outbox relay throughput against the raw producer ceiling, measured in the same run.

``make bench-relay`` (needs ``make infra-up``): writes N events to a fresh schema's outbox,
times the relay publishing all of them, then times a bare idempotent aiokafka producer
sending the same records to the same broker. Prints both rates and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from uuid import uuid4

from aiokafka.admin import NewTopic

from bench.progress import progress
from events.envelope import Envelope, to_kafka
from events.referrals import ReferralReceived
from services.kernel import kafka, outbox
from services.kernel.db import create_pool
from services.kernel.migrations import migrate
from services.kernel.relay import OutboxRelay
from services.kernel.settings import Settings


async def measure(n: int) -> dict[str, float]:
    settings = Settings()
    schema, topic = f"bench_{uuid4().hex[:8]}", f"bench.{uuid4().hex[:8]}"
    admin = kafka.admin(settings)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1), NewTopic(f"{topic}.raw", 6, 1)])
    pool = await create_pool(settings, schema=schema)
    await migrate(pool, schema)
    survivors = [uuid4() for _ in range(500)]
    events = [
        Envelope.new(
            ReferralReceived(
                referral_id=uuid4(),
                survivor_id=survivors[i % 500],
                actor_org="harbour-shelter",
                referrer_org="city-hotline",
                recipient_org="harbour-shelter",
            ),
            source="haven/bench",
        )
        for i in range(n)
    ]
    try:
        # Fill the outbox first (in batches of 1,000 per transaction), so only the relay is timed.
        for start in range(0, n, 1000):
            async with pool.acquire() as conn, conn.transaction():
                await outbox.write(conn, *events[start : start + 1000])
            progress(min(start + 1000, n), n, "filling the outbox")
        # To the benchmark's own topic: in haven.referrals every service would consume them later.
        await pool.execute("UPDATE outbox SET topic = $1", topic)
        relay = OutboxRelay(pool, schema, kafka.producer(settings))
        stop = asyncio.Event()
        began = time.perf_counter()
        task = asyncio.create_task(relay.run(stop))
        while relay.published < n:
            await asyncio.sleep(0.05)
            progress(relay.published, n, "relay → Kafka")
        relay_s = time.perf_counter() - began  # includes the producer's start, as a service's would
        stop.set()
        await task

        records = [to_kafka(e) for e in events]
        producer = kafka.producer(settings)
        await producer.start()
        began = time.perf_counter()
        for start in range(0, n, 1000):
            acks = [
                await producer.send(f"{topic}.raw", value=r.value, key=r.key, headers=r.headers)
                for r in records[start : start + 1000]
            ]
            await asyncio.gather(*acks)
            progress(min(start + 1000, n), n, "raw producer → Kafka")
        raw_s = time.perf_counter() - began
        await producer.stop()
    finally:
        await pool.execute(f"DROP SCHEMA {schema} CASCADE")
        await pool.close()
        await admin.delete_topics([topic, f"{topic}.raw"])
        await admin.close()
    result = {
        "events": n,
        "relay_events_per_s": round(n / relay_s),
        "raw_producer_events_per_s": round(n / raw_s),
        "relay_to_raw_ratio": round(raw_s / relay_s, 3),
    }
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=50_000, help="events to publish")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args()
    result = asyncio.run(measure(args.n))
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    sys.exit(0)
