"""A test-only event type and consumer: each handled event appends one row to a ledger table.

The ledger has no unique constraint on purpose: a duplicated effect shows up as a second row.
Run as a process (``python -m tests.support.ledger SCHEMA TOPIC GROUP [DELAY_MS]``) for the SIGKILL
test; the delay per event keeps the stream long enough to be killed in the middle.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from events.base import EventData
from events.envelope import Envelope
from services.kernel import kafka
from services.kernel.consumer import IdempotentConsumer, PermanentFailure, UnitOfWork
from services.kernel.db import Pool, create_pool
from services.kernel.lifecycle import run_until_stopped
from services.kernel.settings import Settings

LEDGER_DDL = "CREATE TABLE ledger (event_id uuid NOT NULL, key text NOT NULL, n integer NOT NULL)"

_types: dict[str, type[EventData]] = {}


def ledger_event(topic: str) -> type[EventData]:
    """The event type ``test.ledger.<topic>`` published on ``topic``, registered once per process."""
    if topic not in _types:
        namespace: dict[str, Any] = {
            "__annotations__": {"key": "str", "n": "int"},
            "__module__": __name__,
            "event_type": f"test.ledger.{topic}",
            "topic": topic,
        }
        _types[topic] = type("LedgerEntry", (EventData,), namespace)
    return _types[topic]


def entry(topic: str, key: str, n: int) -> Envelope:
    return Envelope.new(ledger_event(topic)(key=key, n=n), source="haven/tests", subject=key)  # type: ignore[call-arg]


async def record(event: Envelope, uow: UnitOfWork) -> None:
    """The handler under test: refuses n < 0 for good, otherwise appends to the ledger."""
    data: Any = event.data
    if data.n < 0:
        raise PermanentFailure("negative_entry", f"entry {data.n} is negative")
    await uow.conn.execute("INSERT INTO ledger (event_id, key, n) VALUES ($1, $2, $3)", event.id, data.key, data.n)


def ledger_consumer(settings: Settings, pool: Pool, topic: str, group: str, **kwargs: Any) -> IdempotentConsumer:
    kwargs.setdefault("handlers", {ledger_event(topic).event_type: record})
    return IdempotentConsumer(
        name=group,
        pool=pool,
        consumer=kafka.consumer(settings, group, [topic]),
        dead_letters=kafka.producer(settings),
        **kwargs,
    )


async def _serve(schema: str, topic: str, group: str, delay_ms: str = "0") -> None:
    settings = Settings()
    pool = await create_pool(settings, schema=schema)
    delay = float(delay_ms) / 1000

    async def slow_record(event: Envelope, uow: UnitOfWork) -> None:
        await asyncio.sleep(delay)
        await record(event, uow)

    handler = slow_record if delay else record
    consumer = ledger_consumer(settings, pool, topic, group, handlers={ledger_event(topic).event_type: handler})
    print("ready", flush=True)
    try:
        await run_until_stopped(consumer.run)
    finally:
        await pool.close()


if __name__ == "__main__":
    asyncio.run(_serve(*sys.argv[1:5]))
