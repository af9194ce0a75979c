"""The idempotent consumer: inbox row and effects in one transaction; offsets committed to Kafka every few seconds.

One Kafka consumer hands what it fetches to one or more *subscribers* — each a service with its own handlers,
inbox rows and database pool (``make run`` runs every service in one process, one consumer per process; the
chart runs one service per process, one subscriber each). For everything one ``getmany`` returns, across all
its partitions (each partition's messages in order; partitions are independent, so their order among each
other never mattered):

1. read each message's ``ce_type`` header: a type of the contract that no subscriber handles is passed over
   there, undecoded, with no transaction and no inbox row; what cannot be decoded is set aside for the
   dead-letter topic;
2. each subscriber, in one database transaction of its own, records its events' ids in its inbox and runs
   the handler of each event not seen before (a redelivered event finds its inbox row and is skipped);
3. send the set-aside messages to ``<topic>.dlq`` with the reason in headers;
4. note the offsets past the batch; they are committed to Kafka every ``commit_seconds``, when partitions
   are taken away by a rebalance, and on stop.

A crash anywhere before the commit redelivers what followed the last one; the inboxes make the effects happen once.
Every command (a message of a ``.commands`` topic) gets an answer in the same transaction:
``command.applied`` when its handler succeeds, ``command.refused`` (code, field, message) when it
raises ``PermanentFailure`` — its effects rolled back to a savepoint. Any other message whose handler
raises ``PermanentFailure`` goes to the dead-letter topic. Any other exception rolls the batch back
and retries it after a pause, so nothing is skipped.

A command about a survivor this service does not know yet (its ``survivor.identified`` is still on
the way, on another topic) raises ``WaitForSurvivor``: the message is parked in the ``parked``
table, in the same transaction, and run again — in arrival order — right after the survivor's
``survivor.identified`` or ``survivor.erased`` is handled. Retrying the batch instead could wait
forever when the event it waits for came in the same fetch, behind it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from events.base import REGISTRY
from events.catalog import dlq_name
from events.envelope import Envelope, UndecodableEvent, from_kafka, header_map
from events.outcomes import CommandApplied, CommandRefused, requester
from services.kernel import metrics, outbox, telemetry
from services.kernel.db import Connection, Pool

log = logging.getLogger(__name__)


class PermanentFailure(Exception):
    """Raised by a handler for a message that can never be handled: a command is refused, anything else
    goes to the dead-letter topic. ``field`` and ``message`` are what the sender of a command is told."""

    def __init__(self, code: str, detail: str, *, field: str | None = None, message: str | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.field = field
        self.message = message or detail


class WaitForSurvivor(Exception):
    """Raised by a handler for a command about a survivor (or a referral of theirs) this service has not heard of
    yet."""

    def __init__(self, survivor_id: Any) -> None:
        super().__init__(f"survivor {survivor_id} is not known here yet")
        self.survivor_id = survivor_id


UNPARKED_BY = frozenset({"survivor.identified", "survivor.erased", "referral.requested"})
"""After one of these is handled, the messages parked for its survivor run again."""


@dataclass(frozen=True)
class _Stored:
    """A parked message, as it came from Kafka (what the dead-letter topic needs of it)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


class UnitOfWork:
    """The open transaction a handler writes its effects in; events it emits commit with them.

    ``deferred`` (the consumer's): the emitted events are made into outbox rows at once (each ``create`` span a child
    of the handler's), and inserted together by ``flush`` before the transaction commits — one statement for a
    whole batch instead of one per handler."""

    def __init__(self, conn: Connection, *, deferred: bool = False) -> None:
        self.conn = conn
        self._rows: list[tuple[Any, ...]] | None = [] if deferred else None

    async def emit(self, *events: Envelope) -> None:
        if self._rows is None:
            await outbox.write(self.conn, *events)
        else:
            self._rows += outbox.rows(*events)

    def mark(self) -> int:
        """Where the deferred rows stand, to ``undo`` to when a savepoint rolls back what came after."""
        return len(self._rows) if self._rows is not None else 0

    def undo(self, mark: int) -> None:
        if self._rows is not None:
            del self._rows[mark:]

    async def flush(self) -> None:
        if self._rows:
            await outbox.write_rows(self.conn, self._rows)
            self._rows = []


Handler = Callable[[Envelope, UnitOfWork], Awaitable[None]]
BatchHandler = Callable[[Sequence[Envelope], UnitOfWork], Awaitable[None]]
"""Applies a run of consecutive events in one go (set-based SQL); it must do what the per-event handler does."""


@dataclass
class ConsumerStats:
    handled: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    refused: int = 0
    parked: int = 0
    retries: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Dead:
    message: Any
    code: str
    detail: str
    consumer: str


def event_type_of(headers: Any) -> str | None:
    """A message's ``ce_type`` header, read without decoding anything else (the last one wins, as in decoding).

    >>> event_type_of([("ce_id", b"1"), ("ce_type", b"referral.requested")])
    'referral.requested'
    >>> event_type_of([]) is None
    True
    """
    found = None
    for name, value in headers or ():
        if name == "ce_type":
            found = value
    return found.decode("utf-8", "replace") if found else None


class _BatchNeedsIsolation(Exception):
    """A handler failed permanently inside a fast batch; redo the batch one savepoint per event."""


class Subscriber:
    """One service's share of a consumer: its handlers (event type → handler), its inbox rows (``name``) and its
    database ``pool``. ``topics`` limits it to some of the consumer's topics (None: all of them); ``only`` (header →
    values) passes over, undecoded, a message whose header has another value (one without the header is handled)."""

    def __init__(
        self,
        *,
        name: str,
        pool: Pool,
        handlers: Mapping[str, Handler],
        batch_handlers: Mapping[str, BatchHandler] | None = None,
        topics: Sequence[str] | None = None,
        only: Mapping[str, frozenset[str]] | None = None,
        stats: ConsumerStats | None = None,
    ) -> None:
        self.name = name
        self._only = {k: frozenset(v) for k, v in (only or {}).items()}
        self._pool = pool
        self._handlers = dict(handlers)
        # Runs of consecutive events of these types go to one call, without a span per event (a replay
        # wants throughput); a permanent failure among them falls back to the per-event handlers.
        self._batch_handlers = dict(batch_handlers or {})
        self.topics = frozenset(topics) if topics is not None else None
        self.stats = stats or ConsumerStats()
        # Metrics of the batch in hand, (event type, outcome, code) → how many, added once it commits.
        self._counts: dict[tuple[str, str, str | None], int] = {}

    def reads(self, topic: str) -> bool:
        return self.topics is None or topic in self.topics

    def wants(self, message: Any, event_type: str) -> bool:
        if event_type not in self._handlers or not self.reads(message.topic):
            return False
        if self._only:
            for name, value in message.headers or ():
                allowed = self._only.get(name)
                if allowed is not None and value.decode("utf-8", "replace") not in allowed:
                    return False
        return True

    async def handle(self, mine: list[tuple[Any, Envelope]]) -> list[_Dead]:
        """Apply ``mine`` (in order) in one transaction; what must go to the dead-letter topic instead."""
        dead: list[_Dead] = []
        try:
            await self._apply(mine, isolate=False, dead=dead)
        except _BatchNeedsIsolation:
            await self._apply(mine, isolate=True, dead=dead)
        return dead

    async def _apply(self, mine: list[tuple[Any, Envelope]], *, isolate: bool, dead: list[_Dead]) -> None:
        handled = duplicates = 0
        failed: list[_Dead] = []
        self._counts = {}
        async with self._pool.acquire() as conn, conn.transaction():
            fresh = await self._record_in_inbox(conn, mine)
            uow = UnitOfWork(conn, deferred=True)
            run: list[tuple[Any, Envelope]] = []
            run_handler: BatchHandler | None = None
            for message, event in mine:
                if event.id not in fresh:
                    duplicates += 1
                    self._count(event, "duplicate")
                    continue
                fresh.discard(event.id)  # the same event twice in one batch takes effect once
                batch = None if isolate else self._batch_handlers.get(event.type)
                if run and batch is not run_handler:
                    await self._apply_run(run_handler, run, uow)
                    run = []
                if batch is not None:
                    run_handler = batch
                    run.append((message, event))
                    handled += 1
                    self._count(event, "applied")
                    continue
                if await self._handle_one(conn, uow, message, event, isolate=isolate, failed=failed):
                    handled += 1
                if event.type in UNPARKED_BY:
                    handled += await self._unpark(conn, uow, event, isolate=isolate, failed=failed)
            if run:
                await self._apply_run(run_handler, run, uow)
            await uow.flush()  # every event the batch emitted, in one statement, before it commits
        self.stats.handled += handled
        self.stats.duplicates += duplicates
        for (event_type, outcome, code), n in self._counts.items():  # one add per kind, not per event
            about = {
                "messaging.consumer.group.name": self.name,
                "cloudevents.event_type": event_type,
                "outcome": outcome,
            }
            metrics.EVENTS.add(n, {**about, "code": code} if code else about)
        dead.extend(failed)

    async def _handle_one(
        self, conn: Connection, uow: UnitOfWork, message: Any, event: Envelope, *, isolate: bool, failed: list[_Dead]
    ) -> bool:
        """Run one event's handler; False when it was refused, dead-lettered or parked instead."""
        traceparent = header_map(message.headers).get("traceparent")
        command = event.data.topic.endswith(".commands")
        with telemetry.consuming(event, traceparent, self.name, message):
            if not isolate:
                try:
                    await self._handlers[event.type](event, uow)
                except (PermanentFailure, WaitForSurvivor):
                    raise _BatchNeedsIsolation() from None
                if command:
                    await uow.emit(self._outcome(event, None))
                self._count(event, "applied")
                return True
            mark = uow.mark()
            try:
                async with conn.transaction():
                    await self._handlers[event.type](event, uow)
            except PermanentFailure as exc:
                uow.undo(mark)  # what it emitted goes with its savepoint
                if command:  # the sender is told, in this transaction; the effects went with the savepoint
                    await uow.emit(self._outcome(event, exc))
                    self.stats.refused += 1
                    self._count(event, "refused", exc.code)
                    log.info("%s: %s %s refused: %s", self.name, event.type, event.id, exc.code)
                    return False
                # Not marked handled: if we crash before the dead-letter send, it is redone.
                await conn.execute("DELETE FROM inbox WHERE consumer = $1 AND event_id = $2", self.name, event.id)
                failed.append(_Dead(message, exc.code, exc.detail, self.name))
                return False
            except WaitForSurvivor as wait:
                uow.undo(mark)
                await conn.execute(
                    """INSERT INTO parked (consumer, event_id, survivor_id, topic, partition, "offset", key, headers,
                                           value) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING""",
                    self.name, event.id, wait.survivor_id, message.topic, message.partition, message.offset,
                    message.key, [[k, v.decode("latin-1")] for k, v in message.headers or ()], message.value,
                )  # fmt: skip
                self.stats.parked += 1
                self._count(event, "parked")
                log.info("%s: %s parked until survivor %s is known", self.name, event.type, wait.survivor_id)
                return False
        if command:
            await uow.emit(self._outcome(event, None))
        self._count(event, "applied")
        return True

    def _count(self, event: Envelope, outcome: str, code: str | None = None) -> None:
        """Counted once the transaction commits (a batch rerun one by one must not count twice)."""
        key = (event.type, outcome, code)
        self._counts[key] = self._counts.get(key, 0) + 1

    def _outcome(self, command: Envelope, refusal: PermanentFailure | None) -> Envelope:
        """``command.applied``, or ``command.refused`` with the refusal's code, field and message."""
        about = {"command_id": command.id, "command_type": command.type, "requested_by": requester(command.data),
                 "decided_at": datetime.now(UTC)}  # fmt: skip
        if refusal is None:
            return Envelope.new(CommandApplied(**about), source=f"haven/{self.name}")
        refused = CommandRefused(**about, code=refusal.code, field=refusal.field, message=refusal.message[:1000])
        return Envelope.new(refused, source=f"haven/{self.name}")

    async def _unpark(
        self, conn: Connection, uow: UnitOfWork, event: Envelope, *, isolate: bool, failed: list[_Dead]
    ) -> int:
        """Run again, in arrival order, what was parked for the survivor ``event`` is about."""
        survivor_id = getattr(event.data, "survivor_id", None)
        rows = await conn.fetch(
            "DELETE FROM parked WHERE consumer = $1 AND survivor_id = $2 RETURNING *", self.name, survivor_id
        )
        handled = 0
        for row in sorted(rows, key=lambda r: r["seq"]):
            stored = _Stored(row["topic"], row["partition"], row["offset"], row["key"], row["value"],
                             [(k, v.encode("latin-1")) for k, v in row["headers"]])  # fmt: skip
            waiting = from_kafka(stored.value, stored.headers)  # it decoded once, before it was parked
            if await self._handle_one(conn, uow, stored, waiting, isolate=isolate, failed=failed):
                handled += 1
        return handled

    async def _apply_run(self, handler: BatchHandler | None, run: list[tuple[Any, Envelope]], uow: UnitOfWork) -> None:
        """One call for the run, in one ``process`` span linked to each event's ``create`` span."""
        assert handler is not None
        with telemetry.consuming_run(run[0][1].topic, [m.headers for m, _ in run], self.name):
            try:
                await handler([e for _, e in run], uow)
            except PermanentFailure:
                raise _BatchNeedsIsolation() from None

    async def _record_in_inbox(self, conn: Connection, mine: list[tuple[Any, Envelope]]) -> set[Any]:
        rows = await conn.fetch(
            """
            INSERT INTO inbox (consumer, event_id, event_type, topic, partition, "offset")
            SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::int[], $6::bigint[])
            ON CONFLICT DO NOTHING
            RETURNING event_id
            """,
            self.name,
            [e.id for _, e in mine],
            [e.type for _, e in mine],
            [m.topic for m, _ in mine],
            [m.partition for m, _ in mine],
            [m.offset for m, _ in mine],
        )
        return {r["event_id"] for r in rows}


class IdempotentConsumer:
    """Runs ``handlers`` (event type → handler) over ``topics`` as consumer group ``name`` — or, given
    ``subscribers``, hands each fetched event to every subscriber that handles its type.

    Each service builds one through ``services.kernel.service``; ``tests/integration/test_idempotent_consumer.py``
    runs it against the broker.
    """

    def __init__(
        self,
        *,
        name: str,
        consumer: AIOKafkaConsumer,
        dead_letters: AIOKafkaProducer,
        pool: Pool | None = None,
        handlers: Mapping[str, Handler] | None = None,
        batch_handlers: Mapping[str, BatchHandler] | None = None,
        subscribers: Sequence[Subscriber] = (),
        max_backoff: float = 30.0,
        commit_seconds: float = 5.0,
    ) -> None:
        self.name = name
        self._consumer = consumer
        self._dlq = dead_letters
        self.stats = ConsumerStats()
        if handlers is not None:
            assert pool is not None, "handlers need the pool their inbox is in"
            subscribers = [Subscriber(name=name, pool=pool, handlers=handlers, batch_handlers=batch_handlers,
                                      stats=self.stats), *subscribers]  # fmt: skip
        if not subscribers:
            raise ValueError("a consumer needs handlers or subscribers")
        self.subscribers = list(subscribers)
        self._max_backoff = max_backoff
        self._commit_seconds = commit_seconds
        self._pending: dict[TopicPartition, int] = {}  # offsets past what was handled, not yet committed to Kafka
        self._committed_at = time.monotonic()
        self.started = asyncio.Event()  # set once the Kafka consumer is up: positions can be asked for
        self._lag: dict[tuple[str, int], int] = {}
        self._next: dict[tuple[str, int], int] = {}  # the next offset to handle, per partition fetched from

        metrics.follow_lag(self)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; finishes the batch in hand, commits, then closes its clients."""
        topics = self._consumer.subscription()
        if topics and not self._consumer.assignment():  # subscribed (not assigned partitions by hand, as a replay
            # does): commit what was handled before a rebalance takes partitions away
            self._consumer.subscribe(topics=list(topics), listener=_CommitOnRevoke(self))
        await self._dlq.start()
        await self._consumer.start()
        self.started.set()
        backoff = 0.1
        try:
            while not stop.is_set():
                batches = await self._consumer.getmany(timeout_ms=200)
                await self._note_lag(batches)
                if batches:
                    try:
                        await self._handle_batch(batches)
                        backoff = 0.1
                    except Exception:
                        # Transient (database down, a bug): nothing was noted as handled; read the batch again.
                        self.stats.retries += 1
                        where = ", ".join(f"{tp.topic}[{tp.partition}]@{m[0].offset}" for tp, m in batches.items())
                        log.exception("%s: batch %s failed; retrying", self.name, where)
                        for tp, messages in batches.items():
                            self._consumer.seek(tp, messages[0].offset)
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, self._max_backoff)
                        continue
                if time.monotonic() - self._committed_at >= self._commit_seconds:
                    await self.commit()
            await self.commit()
        finally:
            await self._consumer.stop()
            await self._dlq.stop()

    async def commit(self, partitions: Sequence[TopicPartition] | None = None) -> None:
        """Commit to Kafka the offsets past what was handled (of ``partitions``, or all still assigned)."""
        self._committed_at = time.monotonic()
        mine = set(partitions) if partitions is not None else self._consumer.assignment()
        offsets = {tp: o for tp, o in self._pending.items() if tp in mine}
        # What is neither committed now nor still assigned belongs to another member now: it is not ours to commit.
        self._pending = {tp: o for tp, o in self._pending.items() if tp not in mine and partitions is not None}
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError):
            # A partition moved to another member during a rebalance; it will redeliver, the inbox dedups.
            log.warning("%s: offset commit for %s lost to a rebalance", self.name, ", ".join(map(str, offsets)))

    async def _note_lag(self, batches: Mapping[TopicPartition, Sequence[Any]]) -> None:
        """Lag per assigned partition as of this fetch: its end (high watermark) less the next offset to handle
        (the consumer's position, asked once per partition, until something is fetched from it)."""
        assigned = self._consumer.assignment()
        for tp, messages in batches.items():
            self._next[(tp.topic, tp.partition)] = messages[-1].offset + 1
        self._next = {k: v for k, v in self._next.items() if TopicPartition(*k) in assigned}
        for tp in assigned:
            key = (tp.topic, tp.partition)
            if key not in self._next:
                try:  # known locally once the group has given the partition its offset; never holds the loop up long
                    self._next[key] = await asyncio.wait_for(self._consumer.position(tp), 0.5)
                except (IllegalStateError, TimeoutError):  # revoked by a rebalance, or its offset is still coming
                    continue
            end = self._consumer.highwater(tp)
            self._lag[key] = max((end if end is not None else self._next[key]) - self._next[key], 0)
        self._lag = {k: v for k, v in self._lag.items() if k in self._next}

    async def joined(self) -> int:
        """Readiness: the consumer is up, with partitions assigned or waiting for its group to assign some (another
        member may hold them all); raises before it has started. Returns how many partitions it holds."""
        if not self.started.is_set():
            raise RuntimeError("the consumer has not started yet")
        return len(self._consumer.assignment())

    def lag(self) -> dict[tuple[str, int], int]:
        """Messages behind each assigned partition's end, as of the last fetch (``haven.consumer.lag``)."""
        return dict(self._lag)

    async def _handle_batch(self, batches: Mapping[TopicPartition, Sequence[Any]]) -> None:
        shares: dict[int, list[tuple[Any, Envelope]]] = {}
        dead: list[_Dead] = []
        for message in (m for messages in batches.values() for m in messages):
            event_type = event_type_of(message.headers)
            if event_type is not None and REGISTRY.model(event_type) is not None:
                takers = [n for n, s in enumerate(self.subscribers) if s.wants(message, event_type)]
                if not takers:
                    continue  # a type of the contract nobody here handles: passed over without decoding it
            else:  # no type, or one the contract does not know: decoding says why, for the dead-letter topic
                takers = [n for n, s in enumerate(self.subscribers) if s.reads(message.topic)]
            try:
                event = from_kafka(message.value, message.headers)
            except UndecodableEvent as exc:
                dead.append(_Dead(message, exc.code, exc.detail, self.name))
                continue
            for n in takers:
                shares.setdefault(n, []).append((message, event))
        # Each subscriber in its own transaction, side by side; a failure of one retries the batch (the others' inboxes
        # drop what they already did). Every one is let finish before that, so no retry runs beside a straggler.
        outcomes = await asyncio.gather(*(self.subscribers[n].handle(share) for n, share in shares.items()),
                                        return_exceptions=True)  # fmt: skip
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            dead.extend(outcome)
        # Sent together, then all awaited: a backlog of bad messages costs one round trip, not one each.
        by_place = sorted(dead, key=lambda d: (d.message.topic, d.message.partition, d.message.offset))
        acks = [await self._dead_letter(item) for item in by_place]
        await asyncio.gather(*acks)
        self._pending.update({tp: messages[-1].offset + 1 for tp, messages in batches.items()})

    async def _dead_letter(self, item: _Dead) -> asyncio.Future[Any]:
        """Queue ``item`` for its dead-letter topic; the returned future resolves when Kafka has it."""
        m = item.message
        reason = [
            ("haven_dlq_reason", item.code),
            ("haven_dlq_detail", item.detail[:2000]),
            ("haven_dlq_topic", m.topic),
            ("haven_dlq_partition", str(m.partition)),
            ("haven_dlq_offset", str(m.offset)),
            ("haven_dlq_consumer", item.consumer),
        ]
        headers = list(m.headers or ()) + [(k, v.encode()) for k, v in reason]
        ack: asyncio.Future[Any] = await self._dlq.send(dlq_name(m.topic), value=m.value, key=m.key, headers=headers)
        self.stats.dead_lettered += 1
        metrics.DEAD_LETTERS.add(1, {"messaging.destination.name": m.topic, "reason": item.code,
                                     "messaging.consumer.group.name": item.consumer})  # fmt: skip
        self.stats.by_reason[item.code] = self.stats.by_reason.get(item.code, 0) + 1
        log.warning("%s: %s@%d dead-lettered: %s", item.consumer, m.topic, m.offset, item.code)
        return ack


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before a rebalance takes partitions away, what was handled on them is committed: their next owner
    starts where this one stopped, not at the last periodic commit."""

    def __init__(self, consumer: IdempotentConsumer) -> None:
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.consumer.commit(list(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        pass
