"""The outbox relay: publishes committed outbox rows to Kafka in order, then deletes them.

One relay per schema is active at a time (a PostgreSQL advisory lock); others wait as standbys.
It wakes on LISTEN/NOTIFY and also sweeps every ``sweep_interval`` seconds, so a lost
notification delays an event by at most one sweep and never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiokafka import AIOKafkaProducer

from services.kernel import metrics, telemetry
from services.kernel.db import CONNECTION_LOST, Notifications, Pool, quote_ident, unlisten
from services.kernel.lifecycle import reconnecting, wait_any

log = logging.getLogger(__name__)


def outbox_channel(schema: str) -> str:
    """The NOTIFY channel the outbox trigger signals (see kernel migration 001)."""
    return f"haven_outbox_{schema}"


class OutboxRelay:
    """Publishes ``schema``'s outbox through ``producer``, keeping the order of ``seq`` (hence per key).

    Each service builds one in its ``app.py`` and runs it beside its consumer (``run_until_stopped``);
    ``tests/integration/test_outbox_relay.py`` runs it against the broker.
    """

    def __init__(
        self,
        pool: Pool,
        schema: str,
        producer: AIOKafkaProducer,
        *,
        batch_size: int = 1000,
        sweep_interval: float = 1.0,
        notifications: Notifications | None = None,
    ) -> None:
        self._pool = pool
        self._schema = schema
        self._table = f"{quote_ident(schema)}.outbox"
        self._producer = producer
        self._batch_size = batch_size
        self._sweep_interval = sweep_interval
        self._wake = asyncio.Event()
        self._shared = notifications  # the process's one LISTEN connection, if it has one; else the relay's own
        if notifications is not None:
            notifications.add(outbox_channel(schema), self._notified)
        self.published = 0
        self.role = "starting"  # then "standing by" (another relay leads this schema) or "leading"
        metrics.follow_outbox(schema, self.backlog)

    async def backlog(self) -> tuple[int, float]:
        """Events waiting in the outbox, and the age in seconds of the oldest (0 when empty)."""
        row = await self._pool.fetchrow(
            f"SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float AS age "
            f"FROM {self._table}"
        )
        assert row is not None
        return row["n"], row["age"]

    async def reachable(self) -> None:
        """Raises unless the Kafka cluster answers a metadata request (a readiness check)."""
        await self._producer.client.fetch_all_metadata()

    async def settled(self) -> str:
        """Readiness: the relay leads its schema's outbox or stands by for the relay that does; raises until it has
        first reached the database (an outage after that is the database check's to report)."""
        if self.role == "starting":
            raise RuntimeError("the relay has not reached its outbox yet")
        return self.role

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set; the producer is started and stopped here. When the database goes away the
        relay waits and retries (with backoff, up to 5 s) instead of stopping its service."""
        await self._producer.start()
        try:
            await reconnecting(f"{self._schema} relay", self._serve)(stop)
        finally:
            await self._producer.stop()

    async def _serve(self, stop: asyncio.Event) -> None:
        """Lead (one relay per schema publishes), then publish on every NOTIFY and every sweep."""
        async with self._pool.acquire() as listener:
            while not stop.is_set() and not await self._lead(listener):
                self.role = "standing by"
                await wait_any(stop, timeout=self._sweep_interval)
            if stop.is_set():
                return
            self.role = "leading"
            if self._shared is None:
                await listener.add_listener(outbox_channel(self._schema), self._notified)
            try:
                while not stop.is_set():
                    self._wake.clear()
                    await self.drain()
                    await wait_any(stop, self._wake, timeout=self._sweep_interval)
                await self.drain()  # what committed before the stop still goes out
            finally:  # on a connection the server dropped there is nothing to undo: the lock went with it
                if self._shared is None:
                    await unlisten(listener, outbox_channel(self._schema), self._notified)
                with contextlib.suppress(*CONNECTION_LOST):
                    await listener.execute("SELECT pg_advisory_unlock_all()")

    async def _lead(self, conn: Any) -> bool:
        lead: bool = await conn.fetchval("SELECT pg_try_advisory_lock(hashtext('haven-outbox:' || $1))", self._schema)
        return lead

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def drain(self) -> int:
        """Publish until the outbox is empty; return how many events went out.

        A read that comes back short of a full batch was the last: no trailing empty read. Under load, each full
        batch's DELETE and the next batch's SELECT are one statement (one round trip per batch)."""
        total, sent = 0, list[int]()
        async with self._pool.acquire() as conn:
            while True:
                rows = await conn.fetch(
                    f"WITH gone AS (DELETE FROM {self._table} WHERE seq = ANY($1::bigint[])) "
                    f"SELECT seq, topic, key, headers, payload FROM {self._table} WHERE seq > $2 ORDER BY seq LIMIT $3",
                    sent, sent[-1] if sent else 0, self._batch_size,
                )  # fmt: skip
                if rows:
                    await self._publish(rows)
                    total += len(rows)
                sent = [int(r["seq"]) for r in rows]
                if len(rows) < self._batch_size:
                    break
            if sent:  # A crash before this delete republishes the batch: consumers' inboxes drop the copies.
                await conn.execute(f"DELETE FROM {self._table} WHERE seq = ANY($1::bigint[])", sent)
        self.published += total
        return total

    async def _publish(self, rows: list[Any]) -> None:
        """Send ``rows`` in order and wait until Kafka has acknowledged every one."""
        # send() enqueues in call order; the idempotent producer keeps that order per partition. Each row's
        # send span is a child of the create span its traceparent header names, and ends on Kafka's ack.
        spans = [telemetry.sending(r["topic"], r["key"], dict(r["headers"]).get("traceparent")) for r in rows]
        started = time.perf_counter()
        try:
            acks = [
                await self._producer.send(
                    r["topic"], value=r["payload"], key=r["key"], headers=[(k, v.encode()) for k, v in r["headers"]]
                )
                for r in rows
            ]
            sent = await asyncio.gather(*acks)
            metrics.RELAY_PUBLISH.record(time.perf_counter() - started, {"haven.schema": self._schema})
            for span, meta in zip(spans, sent, strict=True):
                span.set_attributes({"messaging.destination.partition.id": str(meta.partition),
                                     "messaging.kafka.offset": meta.offset})  # fmt: skip
        finally:
            for span in spans:
                span.end()
