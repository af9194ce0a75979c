"""The raw ceiling: aiokafka produce → consume of same-size messages on the same broker, no Haven code."""

from __future__ import annotations

import asyncio
import time
from uuid import uuid4

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import NewTopic

from bench.progress import progress
from services.kernel import kafka
from services.kernel.settings import Settings


async def measure(n: int, size: int) -> dict[str, float]:
    """Messages per second from the first send to the last receive, with an idempotent acks=all producer."""
    settings = Settings()
    topic = f"bench.ceiling.{uuid4().hex[:8]}"
    admin = kafka.admin(settings)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1)])
    reader = AIOKafkaConsumer(
        topic,
        **kafka.auth(settings),
        group_id=None,
        auto_offset_reset="earliest",
        max_poll_records=5000,
    )
    await reader.start()
    producer = kafka.producer(settings)
    await producer.start()
    payload = b"x" * size
    got = 0

    async def consume() -> None:
        nonlocal got
        while got < n:
            for batch in (await reader.getmany(timeout_ms=200)).values():
                got += len(batch)
            progress(got, n, "raw Kafka produce→consume")

    try:
        began = time.perf_counter()
        consumer = asyncio.create_task(consume())
        for start in range(0, n, 2000):
            acks = [
                await producer.send(topic, payload, key=str(i % 500).encode())
                for i in range(start, min(start + 2000, n))
            ]
            await asyncio.gather(*acks)
        await consumer
        seconds = time.perf_counter() - began
    finally:
        await producer.stop()
        await reader.stop()
        await admin.delete_topics([topic])
        await admin.close()
    return {"messages": n, "message_bytes": size, "messages_per_s": round(n / seconds)}
