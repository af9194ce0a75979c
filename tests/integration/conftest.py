"""Fixtures on the real stack: a fresh schema with the kernel's tables, fresh topics, and a reader."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewTopic
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from events.catalog import dlq_name
from services.kernel import kafka
from services.kernel.db import Pool, create_pool
from services.kernel.migrations import migrate
from services.kernel.settings import Settings
from tests.support.ledger import LEDGER_DDL

_exporter = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Finished spans of this test (the global tracer provider can be set only once per process)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        trace.set_tracer_provider(provider)
    _exporter.clear()
    yield _exporter
    _exporter.clear()


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
async def db(settings: Settings) -> AsyncIterator[Pool]:
    """A pool on the whole database (no search path): tests name the schema, as in ``referrals.transitions``."""
    pool = await create_pool(settings)
    yield pool
    await pool.close()


@pytest.fixture
async def pool(settings: Settings, schema: str) -> AsyncIterator[Pool]:
    pool = await create_pool(settings, schema=schema)
    yield pool
    await pool.close()


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """An idempotent producer that sends at once (no linger)."""
    producer = kafka.producer(settings, linger_ms=0)
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
async def topic(settings: Settings) -> AsyncIterator[str]:
    """A new 3-partition topic and its dead-letter topic."""
    name = f"test.{uuid4().hex[:12]}"
    admin = kafka.admin(settings)
    await admin.start()
    await admin.create_topics([NewTopic(name, 3, 1), NewTopic(dlq_name(name), 1, 1)])
    yield name
    await admin.delete_topics([name, dlq_name(name)])
    await admin.close()
