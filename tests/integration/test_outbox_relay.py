"""The outbox and its relay on the real stack: exactly once, in per-key order, only on commit."""

from __future__ import annotations

import asyncio
import functools
import json
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest

from events.envelope import from_kafka
from services.kernel import kafka, outbox
from services.kernel.db import Notifications, Pool
from services.kernel.relay import OutboxRelay
from services.kernel.settings import Settings
from tests.support.ledger import entry
from tests.support.observe import eventually, read_to_end, read_topic

KEYS = [f"survivor-{i:02d}" for i in range(50)]


@pytest.fixture
async def relay(settings: Settings, pool: Pool, schema: str) -> AsyncIterator[OutboxRelay]:
    relay = OutboxRelay(pool, schema, kafka.producer(settings), sweep_interval=60.0)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    yield relay
    stop.set()
    await task


async def test_ten_thousand_transactions_reach_kafka_exactly_once_in_key_order(
    settings: Settings, pool: Pool, topic: str, relay: OutboxRelay
) -> None:
    written = []
    for n in range(10_000):
        event = entry(topic, KEYS[n % len(KEYS)], n)
        async with pool.acquire() as conn, conn.transaction():
            await outbox.write(conn, event)
        written.append(event)

    messages = await read_topic(settings, topic, expect=len(written))

    ids = [from_kafka(m.value, m.headers).id for m in messages]
    assert len(ids) == len(written), "every event published, none twice"
    assert set(ids) == {e.id for e in written}
    per_key: dict[bytes, list[int]] = defaultdict(list)
    for m in messages:
        per_key[m.key].append(json.loads(m.value)["n"])
    assert all(ns == sorted(ns) for ns in per_key.values()), "one survivor's events stay in order"

    async def emptied() -> bool:
        """Published rows leave the outbox with no commit after them to wake the relay (its sweep is a minute away)."""
        return bool(await pool.fetchval("SELECT count(*) FROM outbox") == 0)

    await eventually(emptied, timeout=5)


async def test_a_backlog_goes_out_in_pipelined_batches_exactly_once_in_key_order(
    settings: Settings, pool: Pool, schema: str, topic: str
) -> None:
    """Committed while no relay ran (a restart, an outage): full batches, each read while the last is in flight."""
    async with pool.acquire() as conn, conn.transaction():
        written = [entry(topic, KEYS[n % len(KEYS)], n) for n in range(3_000)]
        for event in written:
            await outbox.write(conn, event)
    relay = OutboxRelay(pool, schema, kafka.producer(settings), batch_size=100, sweep_interval=60.0)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        messages = await read_topic(settings, topic, expect=len(written))
    finally:
        stop.set()
        await task
    assert sorted(from_kafka(m.value, m.headers).id for m in messages) == sorted(e.id for e in written)
    per_key: dict[bytes, list[int]] = defaultdict(list)
    for m in messages:
        per_key[m.key].append(json.loads(m.value)["n"])
    assert all(ns == sorted(ns) for ns in per_key.values()), "one survivor's events stay in order"
    assert relay.published == len(written), "thirty batches, none sent twice"
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0, "a stopping relay settles what it sent"


async def test_a_relay_taking_over_does_not_send_again_what_its_dead_predecessor_published(
    settings: Settings, pool: Pool, schema: str, topic: str
) -> None:
    """The leader died after Kafka acknowledged 30 events and before it deleted their rows: the next leader finds
    them on the topic by event id and deletes them instead of publishing a second copy."""
    written = [entry(topic, KEYS[n % 5], n) for n in range(50)]
    async with pool.acquire() as conn, conn.transaction():
        for event in written:
            await outbox.write(conn, event)
    predecessor = kafka.producer(settings)
    await predecessor.start()
    try:
        for r in await pool.fetch("SELECT topic, key, headers, payload FROM outbox ORDER BY seq LIMIT 30"):
            await predecessor.send_and_wait(r["topic"], r["payload"], key=r["key"],
                                            headers=[(k, v.encode()) for k, v in r["headers"]])  # fmt: skip
    finally:
        await predecessor.stop()
    relay = OutboxRelay(pool, schema, kafka.producer(settings), sweep_interval=60.0,
                        reader=functools.partial(kafka.reader, settings))  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await read_topic(settings, topic, expect=len(written))
    finally:
        stop.set()
        await task
    on_kafka = [from_kafka(m.value, m.headers).id for m in await read_to_end(settings, topic)]
    assert sorted(on_kafka) == sorted(e.id for e in written), "each event once: none lost, none sent twice"
    assert (relay.already_published, relay.published) == (30, 20)
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_rolled_back_transaction_publishes_nothing(
    settings: Settings, pool: Pool, topic: str, relay: OutboxRelay
) -> None:
    doomed = entry(topic, "survivor-a", 1)
    kept = entry(topic, "survivor-a", 2)

    async def refused_change() -> None:
        async with pool.acquire() as conn, conn.transaction():
            await outbox.write(conn, doomed)
            raise RuntimeError("change refused")

    with pytest.raises(RuntimeError, match="change refused"):
        await refused_change()
    async with pool.acquire() as conn, conn.transaction():
        await outbox.write(conn, kept)

    messages = await read_topic(settings, topic, expect=1)

    assert [from_kafka(m.value, m.headers).id for m in messages] == [kept.id]


async def test_the_relay_is_woken_by_the_commit_not_the_sweep(
    settings: Settings, pool: Pool, topic: str, relay: OutboxRelay
) -> None:
    await asyncio.sleep(0.5)  # let the relay finish its first sweep and start waiting (sweep: 60 s)
    async with pool.acquire() as conn, conn.transaction():
        await outbox.write(conn, entry(topic, "survivor-b", 1))

    messages = await read_topic(settings, topic, expect=1, timeout=15)

    assert len(messages) == 1, "published long before the next sweep"


async def test_writing_to_the_outbox_outside_a_transaction_is_refused(pool: Pool, topic: str) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="needs an open transaction"):
            await outbox.write(conn, entry(topic, "survivor-c", 1))
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_second_relay_stands_by_and_nothing_is_published_twice(
    settings: Settings, pool: Pool, schema: str, topic: str, relay: OutboxRelay
) -> None:
    standby = OutboxRelay(pool, schema, kafka.producer(settings), sweep_interval=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(standby.run(stop))
    for n in range(200):
        async with pool.acquire() as conn, conn.transaction():
            await outbox.write(conn, entry(topic, KEYS[n % 5], n))

    messages = await read_topic(settings, topic, expect=200)
    stop.set()
    await task

    assert len(messages) == 200
    assert sorted([relay.published, standby.published]) == [0, 200], "one leader publishes, the other stands by"


async def test_relays_sharing_one_listen_connection_are_each_woken_by_their_own_commits(
    settings: Settings, pool: Pool, schema: str, topic: str
) -> None:
    """As in one process running every service: the relays are woken through one LISTEN, not one each. Their sweep is
    a minute away, so each event reaching Kafka at once says a notification woke its relay."""
    shared = Notifications()
    relay = OutboxRelay(pool, schema, kafka.producer(settings), sweep_interval=60.0, notifications=shared)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(part(stop)) for part in (functools.partial(shared.run, pool), relay.run)]
    await asyncio.wait_for(shared.listening.wait(), 10)

    async def leading() -> bool:
        return relay.role == "leading"

    await eventually(leading)
    try:
        for n in range(3):  # each after the last is out: three separate wakeups
            async with pool.acquire() as conn, conn.transaction():
                await outbox.write(conn, entry(topic, "survivor-w", n))
            await asyncio.wait_for(read_topic(settings, topic, expect=n + 1), 10)
        assert relay.published == 3
    finally:
        stop.set()
        await asyncio.gather(*tasks)
