"""Fixtures on the real stack: a fresh schema with the kernel's tables, fresh topics, and a reader."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from events.catalog import dlq_name
from events.envelope import Envelope, from_kafka
from services.kernel.db import Pool, create_pool
from services.kernel.migrations import migrate
from services.kernel.settings import Settings
from tests.support.ledger import LEDGER_DDL


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
async def schema(settings: Settings) -> AsyncIterator[str]:
    """A new schema with the kernel's outbox and inbox and the test ledger; dropped afterwards."""
    name = f"t_{uuid4().hex[:12]}"
    pool = await create_pool(settings)
    await migrate(pool, name)
    await pool.execute(f"SET search_path TO {name}; {LEDGER_DDL}")
    yield name
    await pool.execute(f"DROP SCHEMA {name} CASCADE")
    await pool.close()


@pytest.fixture
async def pool(settings: Settings, schema: str) -> AsyncIterator[Pool]:
    pool = await create_pool(settings, schema=schema)
    yield pool
    await pool.close()


@pytest.fixture
async def topic(settings: Settings) -> AsyncIterator[str]:
    """A new 3-partition topic and its dead-letter topic."""
    name = f"test.{uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    await admin.create_topics([NewTopic(name, 3, 1), NewTopic(dlq_name(name), 1, 1)])
    yield name
    await admin.delete_topics([name, dlq_name(name)])
    await admin.close()


async def read_topic(settings: Settings, topic: str, *, expect: int, timeout: float = 60.0) -> list[Any]:
    """Every message on ``topic`` from the beginning, once ``expect`` have arrived (or the timeout)."""
    reader = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap_servers, auto_offset_reset="earliest", group_id=None
    )
    await reader.start()
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < expect and time.monotonic() < deadline:
            for batch in (await reader.getmany(timeout_ms=200)).values():
                messages.extend(batch)
        # Anything beyond `expect` (a duplicate) would show up in this extra poll.
        for batch in (await reader.getmany(timeout_ms=300)).values():
            messages.extend(batch)
    finally:
        await reader.stop()
    return messages


async def eventually(check: Any, *, timeout: float = 30.0) -> None:
    """Poll ``check()`` (async, truthy when done) until it holds or the timeout passes."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check.__doc__ or check}")
        await asyncio.sleep(0.1)


async def wait_for_events(
    settings: Settings, topic: str, *, subject: str, types: list[str], timeout: float = 30.0
) -> list[Envelope]:
    """The events about ``subject`` on ``topic``, once every type in ``types`` (in any order) has appeared.

    Reads from the beginning and keeps reading 300 ms past the last expected one, so that an
    unexpected extra event (a duplicate) is returned too.
    """
    reader = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap_servers, auto_offset_reset="earliest", group_id=None
    )
    await reader.start()
    found: list[Envelope] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for batch in (await reader.getmany(timeout_ms=200)).values():
                found += [from_kafka(m.value, m.headers) for m in batch if m.key == subject.encode()]
            missing = list(types)
            for event in found:
                if event.type in missing:
                    missing.remove(event.type)
            if not missing:
                for batch in (await reader.getmany(timeout_ms=300)).values():
                    found += [from_kafka(m.value, m.headers) for m in batch if m.key == subject.encode()]
                return found
        raise AssertionError(f"on {topic} for {subject}: wanted {types}, saw {[e.type for e in found]}")
    finally:
        await reader.stop()
