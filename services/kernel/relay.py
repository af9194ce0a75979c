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
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

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
        linger: float = 0.1,
        notifications: Notifications | None = None,
        reader: Callable[[], AIOKafkaConsumer] | None = None,
    ) -> None:
        self._pool = pool
        self._schema = schema
        self._table = f"{quote_ident(schema)}.outbox"
        self._producer = producer
        self._batch_size = batch_size
        self._sweep_interval = sweep_interval
        self._linger = linger  # after an acknowledgement, how long its delete waits to ride on the next read
        self._reader = reader  # a consumer (no group) as the relay's Kafka user: what a dead leader published
        self.already_published = 0  # rows found on Kafka at takeover, deleted without sending them again
        self._wake = asyncio.Event()
        self._shared = notifications  # the process's one LISTEN connection, if it has one; else the relay's own
        if notifications is not None:
            notifications.add(outbox_channel(schema), self._notified)
        self.published = 0
        self._flying: list[tuple[list[int], asyncio.Future[list[Any]]]] = []  # sent, not yet deleted: seqs, acks
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
            try:
                await self._reconcile(listener)
            except Exception:  # e.g. no Read ACL yet on what it publishes: copies are possible, nothing is lost
                log.warning("%s relay: could not look for what a previous leader published", self._schema,
                            exc_info=True)  # fmt: skip
            if self._shared is None:
                await listener.add_listener(outbox_channel(self._schema), self._notified)
            try:
                while not stop.is_set():
                    self._wake.clear()
                    await self.drain()
                    await wait_any(stop, self._wake, timeout=self._sweep_interval)
                await self.drain(settle=True)  # what committed before the stop still goes out
            finally:  # on a connection the server dropped there is nothing to undo: the lock went with it
                self._abandon()
                if self._shared is None:
                    await unlisten(listener, outbox_channel(self._schema), self._notified)
                with contextlib.suppress(*CONNECTION_LOST):
                    await listener.execute("SELECT pg_advisory_unlock_all()")

    async def _lead(self, conn: Any) -> bool:
        lead: bool = await conn.fetchval("SELECT pg_try_advisory_lock(hashtext('haven-outbox:' || $1))", self._schema)
        return lead

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def drain(self, *, settle: bool = False) -> int:
        """Publish what the outbox holds; return how many events went out. With ``settle``, also wait for every
        acknowledgement and delete what it covers (on stop, and in tests that count what is left).

        Pipelined: a batch is sent and the relay reads the next without waiting for Kafka's acknowledgement (at
        most two batches in flight); the rows of acknowledged batches are deleted in the statement that reads the
        next, or ``linger`` after their acknowledgement when no read came. Rows still in flight are left out of a
        read, so nothing is sent twice while the relay runs. A read that comes back short of a full batch was the
        last: no trailing empty read. A crash before the delete republishes those rows: consumers' inboxes drop
        the copies."""
        total = 0
        async with self._pool.acquire() as conn:
            while True:
                if len(self._flying) >= 2:
                    await asyncio.wait([self._flying[0][1]])
                acked = self._acknowledged()
                rows = await conn.fetch(
                    f"WITH gone AS (DELETE FROM {self._table} WHERE seq = ANY($1::bigint[])) "
                    f"SELECT seq, topic, key, headers, payload FROM {self._table} WHERE seq <> ALL($2::bigint[]) "
                    f"ORDER BY seq LIMIT $3",
                    acked, acked + [seq for seqs, _ in self._flying for seq in seqs], self._batch_size,
                )  # fmt: skip
                if rows:
                    self._flying.append(([int(r["seq"]) for r in rows], await self._publish(rows)))
                    total += len(rows)
                if len(rows) < self._batch_size:
                    break
            if settle and self._flying:
                await asyncio.wait([acks for _, acks in self._flying])
                await conn.execute(f"DELETE FROM {self._table} WHERE seq = ANY($1::bigint[])", self._acknowledged())
        self.published += total
        return total

    async def _reconcile(self, conn: Any) -> None:
        """At takeover: delete the rows a previous leader had already published. It may have died after Kafka's
        acknowledgement and before its DELETE (at most the two batches it had in flight, the outbox's first rows);
        sending them again would put a second copy of each event on its topic. They are looked for, by event id,
        on each of their topics' partitions from a minute before the oldest of them was written."""
        if self._reader is None:
            return
        doubt = await conn.fetch(f"SELECT seq, topic, headers, created_at FROM {self._table} ORDER BY seq LIMIT $1",
                                 2 * self._batch_size)  # fmt: skip
        if not doubt:
            return
        seq_of = {dict(r["headers"]).get("ce_id"): int(r["seq"]) for r in doubt}
        since = int((min(r["created_at"] for r in doubt).timestamp() - 60) * 1000)
        reader = self._reader()
        await reader.start()
        found: list[int] = []
        try:
            topics = {r["topic"] for r in doubt}
            tps = [TopicPartition(t, p) for t in topics for p in await self._producer.partitions_for(t)]
            reader.assign(tps)
            ends = await reader.end_offsets(tps)
            for tp, start in (await reader.offsets_for_times(dict.fromkeys(tps, since))).items():
                reader.seek(tp, start.offset if start is not None else ends[tp])
            deadline = time.monotonic() + 60  # past it the look fails (logged): copies possible, nothing lost
            while any([await reader.position(tp) < end for tp, end in ends.items()]):
                if time.monotonic() > deadline:
                    raise TimeoutError("the topics' tails were not read within 60 s")
                for messages in (await reader.getmany(timeout_ms=1000, max_records=5000)).values():
                    for m in messages:
                        event_id = next((v.decode() for k, v in m.headers or () if k == "ce_id"), None)
                        if event_id in seq_of:
                            found.append(seq_of[event_id])
        finally:
            await reader.stop()
        if found:
            await conn.execute(f"DELETE FROM {self._table} WHERE seq = ANY($1::bigint[])", found)
            self.already_published += len(found)
            log.info("%s relay: %d events the previous leader had published are not sent again", self._schema,
                     len(found))  # fmt: skip

    def _acknowledged(self) -> list[int]:
        """The seqs of the batches Kafka has acknowledged, no longer in flight; raises a batch's send error."""
        done = [(seqs, acks) for seqs, acks in self._flying if acks.done()]
        self._flying = [(seqs, acks) for seqs, acks in self._flying if not acks.done()]
        for _, acks in done:
            acks.result()  # a failed send: the relay restarts, and republishes from the outbox
        return [seq for seqs, _ in done for seq in seqs]

    def _abandon(self) -> None:
        """Forget what is in flight: its rows stay in the outbox, and the next leader sends them again."""
        for _, acks in self._flying:
            acks.cancel()
        self._flying = []

    async def _publish(self, rows: list[Any]) -> asyncio.Future[list[Any]]:
        """Send ``rows`` in order; the future completes when Kafka has acknowledged every one."""
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
        except BaseException:
            for span in spans:
                span.end()
            raise
        everything = asyncio.gather(*acks)

        def acknowledged(done: asyncio.Future[list[Any]]) -> None:
            if not done.cancelled() and done.exception() is None:
                metrics.RELAY_PUBLISH.record(time.perf_counter() - started, {"haven.schema": self._schema})
                for span, meta in zip(spans, done.result(), strict=True):
                    span.set_attributes({"messaging.destination.partition.id": str(meta.partition),
                                         "messaging.kafka.offset": meta.offset})  # fmt: skip
            for span in spans:
                span.end()
            if not done.cancelled():
                asyncio.get_running_loop().call_later(self._linger, self._wake.set)  # delete it, if no read has

        everything.add_done_callback(acknowledged)
        return everything
