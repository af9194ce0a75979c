"""The idempotent consumer on the real stack: effects once, dead letters with reasons, nothing skipped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaProducer

from events.envelope import Envelope, header_map, to_kafka
from events.referrals import ReferralReceived
from services.kernel import kafka
from services.kernel.consumer import IdempotentConsumer, UnitOfWork
from services.kernel.db import Pool
from services.kernel.settings import Settings
from tests.support.ledger import entry, ledger_consumer, ledger_event, record
from tests.support.observe import eventually, read_topic

Runner = Callable[..., Awaitable[IdempotentConsumer]]


@pytest.fixture
async def running(settings: Settings, pool: Pool, topic: str) -> AsyncIterator[Runner]:
    """Start a ledger consumer on ``topic``; it is stopped after the test."""
    stops: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(group: str | None = None, **kwargs: Any) -> IdempotentConsumer:
        consumer = ledger_consumer(settings, pool, topic, group or f"g-{uuid4().hex[:8]}", **kwargs)
        stop = asyncio.Event()
        stops.append((stop, asyncio.create_task(consumer.run(stop))))
        return consumer

    yield start
    for stop, task in stops:
        stop.set()
        await task


async def send(producer: AIOKafkaProducer, event: Envelope, topic: str) -> None:
    record_ = to_kafka(event)
    await producer.send_and_wait(topic, value=record_.value, key=record_.key, headers=record_.headers)


async def ledger(pool: Pool) -> list[Any]:
    return list(await pool.fetch("SELECT event_id, key, n FROM ledger ORDER BY n"))


async def test_an_event_delivered_twice_takes_effect_once(
    pool: Pool, topic: str, producer: AIOKafkaProducer, running: Runner
) -> None:
    twice = entry(topic, "survivor-a", 1)
    after = entry(topic, "survivor-a", 2)
    for event in (twice, twice, after):
        await send(producer, event, topic)
    consumer = await running()

    async def both_handled() -> bool:
        return len(await ledger(pool)) >= 2 and consumer.stats.duplicates >= 1

    await eventually(both_handled)
    assert [r["event_id"] for r in await ledger(pool)] == [twice.id, after.id]


async def test_events_published_again_change_nothing(
    settings: Settings, pool: Pool, topic: str, producer: AIOKafkaProducer, running: Runner
) -> None:
    for n in range(20):
        await send(producer, entry(topic, f"survivor-{n % 3}", n), topic)
    first = await running(group="ledger")

    async def all_handled() -> bool:
        return first.stats.handled == 20

    await eventually(all_handled)
    # The same events again, as after a producer retry or a relay crash before its delete.
    messages = await read_topic(settings, topic, expect=20)
    for m in messages:
        await producer.send_and_wait(topic, value=m.value, key=m.key, headers=list(m.headers))

    async def duplicates_seen() -> bool:
        return first.stats.duplicates == 20

    await eventually(duplicates_seen)
    assert len(await ledger(pool)) == 20


MALFORMED = [
    ("bad_json", b"{not json", "test.ledger.{topic}"),
    ("unknown_type", b'{"key": "k", "n": 1}', "test.no_such_event"),
    ("schema_invalid", b'{"key": "k", "n": "one"}', "test.ledger.{topic}"),
]


async def test_malformed_messages_go_to_the_dead_letter_topic_and_the_consumer_moves_on(
    settings: Settings, pool: Pool, topic: str, producer: AIOKafkaProducer, running: Runner
) -> None:
    template = to_kafka(entry(topic, "survivor-d", 0))
    for _, value, ce_type in MALFORMED:
        headers = [(k, ce_type.format(topic=topic).encode() if k == "ce_type" else v) for k, v in template.headers]
        await producer.send_and_wait(topic, value=value, key=b"survivor-d", headers=headers, partition=0)
    good = entry(topic, "survivor-d", 7)
    record_ = to_kafka(good)
    await producer.send_and_wait(topic, value=record_.value, key=record_.key, headers=record_.headers, partition=0)
    consumer = await running()

    dead = await read_topic(settings, f"{topic}.dlq", expect=len(MALFORMED))

    assert [header_map(m.headers)["haven_dlq_reason"] for m in dead] == [code for code, _, _ in MALFORMED]
    assert [m.value for m in dead] == [value for _, value, _ in MALFORMED], "the original bytes are kept"
    assert all(header_map(m.headers)["haven_dlq_detail"] for m in dead), "each says what was wrong"
    assert header_map(dead[2].headers)["haven_dlq_detail"].startswith("n:"), "names the invalid field"

    async def good_one_handled() -> bool:
        return consumer.stats.handled == 1

    await eventually(good_one_handled)
    assert [r["event_id"] for r in await ledger(pool)] == [good.id]


async def test_a_permanent_handler_failure_dead_letters_that_event_only(
    settings: Settings, pool: Pool, topic: str, producer: AIOKafkaProducer, running: Runner
) -> None:
    events = [entry(topic, "survivor-e", n) for n in (1, -1, 2)]
    for event in events:
        record_ = to_kafka(event)
        await producer.send(topic, value=record_.value, key=record_.key, headers=record_.headers, partition=0)
    await producer.flush()
    await running()

    dead = await read_topic(settings, f"{topic}.dlq", expect=1)

    assert [header_map(m.headers)["haven_dlq_reason"] for m in dead] == ["negative_entry"]
    assert [r["n"] for r in await ledger(pool)] == [1, 2], "the rest of the batch took effect"
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 2, "the dead letter is not marked handled"


async def test_a_transient_failure_is_retried_and_takes_effect_once(
    settings: Settings, pool: Pool, topic: str, producer: AIOKafkaProducer
) -> None:
    failures = {"left": 2}

    async def flaky(event: Envelope, uow: UnitOfWork) -> None:
        await record(event, uow)  # written, then rolled back with the failure below
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionResetError("database went away")

    for n in range(5):
        await send(producer, entry(topic, "survivor-f", n), topic)
    consumer = IdempotentConsumer(
        name="flaky",
        pool=pool,
        consumer=kafka.consumer(settings, f"flaky-{uuid4().hex[:6]}", [topic]),
        dead_letters=kafka.producer(settings),
        handlers={ledger_event(topic).event_type: flaky},
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))

    async def all_handled() -> bool:
        return consumer.stats.handled == 5

    await eventually(all_handled)
    stop.set()
    await task
    assert consumer.stats.retries == 2
    assert sorted(r["n"] for r in await ledger(pool)) == [0, 1, 2, 3, 4]


async def test_events_of_types_it_does_not_handle_are_passed_over(
    pool: Pool, topic: str, producer: AIOKafkaProducer, running: Runner
) -> None:
    foreign = Envelope.new(
        ReferralReceived(
            referral_id=uuid4(),
            survivor_id=uuid4(),
            actor_org="harbour-shelter",
            referrer_org="city-hotline",
            recipient_org="harbour-shelter",
        ),
        source="haven/test",
    )
    await send(producer, foreign, topic)
    await send(producer, entry(topic, "survivor-g", 1), topic)
    consumer = await running()

    async def handled() -> bool:
        return consumer.stats.handled == 1

    await eventually(handled)
    assert consumer.stats.dead_lettered == 0
