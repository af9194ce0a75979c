"""A consumer killed with SIGKILL mid-stream and restarted loses nothing and duplicates nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from uuid import uuid4

from aiokafka import AIOKafkaProducer

from events.envelope import to_kafka
from services.kernel import kafka
from services.kernel.db import Pool
from services.kernel.settings import Settings
from tests.support.ledger import entry
from tests.support.observe import eventually

EVENTS = 3_000


async def _start(schema: str, topic: str, group: str, delay_ms: int = 0) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.ledger", schema, topic, group, str(delay_ms),
        stdout=subprocess.PIPE, env={**os.environ},
    )  # fmt: skip
    assert proc.stdout is not None
    assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"
    return proc


async def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(
    settings: Settings, pool: Pool, schema: str, topic: str
) -> None:
    producer: AIOKafkaProducer = kafka.producer(settings)
    await producer.start()
    events = [entry(topic, f"survivor-{n % 40}", n) for n in range(EVENTS)]
    for event in events:
        record = to_kafka(event)
        await producer.send(topic, value=record.value, key=record.key, headers=record.headers)
    await producer.flush()
    await producer.stop()
    group = f"crash-{uuid4().hex[:6]}"

    victim = await _start(schema, topic, group, delay_ms=1)

    async def recorded() -> int:
        count: int = await pool.fetchval("SELECT count(*) FROM ledger")
        return count

    async def midstream() -> bool:
        return 0 < await recorded() < EVENTS

    await eventually(midstream, timeout=60)
    victim.send_signal(signal.SIGKILL)
    await victim.wait()
    assert await recorded() < EVENTS, "killed before the end of the stream"

    survivor = await _start(schema, topic, group)

    async def all_recorded() -> bool:
        return await recorded() >= EVENTS

    await eventually(all_recorded, timeout=120)
    await asyncio.sleep(1.0)  # would a duplicate still arrive?
    survivor.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(survivor.wait(), 30) == 0, "SIGTERM stops it cleanly"

    rows = await pool.fetch("SELECT event_id, count(*) AS times FROM ledger GROUP BY event_id")
    assert {r["event_id"] for r in rows} == {e.id for e in events}, "nothing lost"
    assert max(r["times"] for r in rows) == 1, "nothing twice"
