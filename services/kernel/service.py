"""Bootstrapping services: each one's pool and schema, its outbox relay, its background tasks; one consumer for all.

Each ``services/<name>/app.py`` (and the gateway's ``gateway/app.py``) describes itself with a ``ServiceSpec``
built by its ``build(settings)``. ``serve`` runs one or several of them in one process: every service keeps its
own pool (as its own database role), schema, inbox rows, relay and Kafka user for what it publishes, while one
Kafka consumer reads each topic once and hands every event to each service that handles its type
(``services.kernel.host`` runs them, ``--services all`` or one service per process).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import uvloop

from events.base import EventData
from events.catalog import IDENTIFICATION
from events.envelope import Envelope
from events.errors import DomainError
from events.identification import SurvivorErased
from services.kernel import erasure, kafka, telemetry
from services.kernel.consumer import BatchHandler, Handler, IdempotentConsumer, PermanentFailure, Subscriber, UnitOfWork
from services.kernel.db import Listener, Notifications, Pool, create_pool
from services.kernel.health import Check, Health
from services.kernel.lifecycle import Component, reconnecting, run_until_stopped
from services.kernel.migrations import migrate
from services.kernel.relay import OutboxRelay
from services.kernel.settings import Settings

log = logging.getLogger(__name__)

D = TypeVar("D", bound=EventData)
Background = Callable[[Pool, asyncio.Event], Coroutine[Any, Any, None]]


def on(message: type[D], handler: Callable[[D, UnitOfWork], Awaitable[object]]) -> tuple[str, Handler]:
    """Register ``handler`` for ``message``'s type: it gets the payload; a ``DomainError`` refuses the command
    (``command.refused`` reaches its sender on ``haven.outcomes``).

    A command (anything on a ``.commands`` topic) about an erased survivor is refused ``survivor_erased``
    before its handler runs, in every service.

    >>> from events.consent import ConsentRevoked
    >>> async def forget_what_it_covered(event: ConsentRevoked, uow: UnitOfWork) -> None: ...
    >>> handlers = dict([on(ConsentRevoked, forget_what_it_covered)])
    >>> list(handlers)
    ['consent.revoked']
    """
    is_command = message.topic.endswith(".commands")

    async def handle(envelope: Envelope, uow: UnitOfWork) -> None:
        data = envelope.data
        if not isinstance(data, message):
            raise PermanentFailure("wrong_type", f"{envelope.type} did not decode to {message.__name__}")
        try:
            if is_command:
                await erasure.refuse_if_erased(uow.conn, data)
            await handler(data, uow)
        except DomainError as exc:
            detail = f"{exc.field + ': ' if exc.field else ''}{exc.message}"
            raise PermanentFailure(exc.code, detail, field=exc.field, message=exc.message) from None

    functools.update_wrapper(handle, handler)
    return message.event_type, handle


def remembering_erasures(handlers: Mapping[str, Handler], *, pass_over_erased: bool = False) -> dict[str, Handler]:
    """``handlers``, with every ``survivor.erased`` also recorded in the kernel's tombstone table; with
    ``pass_over_erased``, any other event about a survivor erased before it is passed over (an event on another
    topic may arrive after the erasure, and a replay may bring one again: nothing more is kept about them)."""
    purge = handlers.get(SurvivorErased.event_type)

    async def erased(envelope: Envelope, uow: UnitOfWork) -> None:
        await erasure.remember(uow.conn, envelope.data.survivor_id)  # type: ignore[attr-defined]
        if purge is not None:
            await purge(envelope, uow)

    def unless_erased(handler: Handler) -> Handler:
        async def guarded(envelope: Envelope, uow: UnitOfWork) -> None:
            survivor = getattr(envelope.data, "survivor_id", None)
            if survivor is not None and await erasure.was_erased(uow.conn, survivor):
                return
            await handler(envelope, uow)

        return functools.update_wrapper(guarded, handler)

    kept = {t: unless_erased(h) for t, h in handlers.items()} if pass_over_erased else dict(handlers)
    return {**kept, SurvivorErased.event_type: erased}


@dataclass(frozen=True)
class ServiceSpec:
    """What a service is: its schema name, migrations, what it consumes, and what else it runs."""

    name: str
    migrations: Path
    topics: Sequence[str]
    handlers: Mapping[str, Handler]
    background: Sequence[Background] = field(default=())
    listening: Sequence[tuple[str, Listener]] = field(default=())
    """NOTIFY channels and their callbacks, heard on the process's one LISTEN connection (``db.Notifications``)."""
    batch_handlers: Mapping[str, BatchHandler] = field(default_factory=dict)
    """Set-based handlers for runs of consecutive events of a type (see ``IdempotentConsumer``)."""
    only: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Header → values: a message whose header has another value is passed over undecoded (see ``Subscriber``)."""
    remember_erasures: bool = True
    """Record every ``survivor.erased`` it reads in the kernel's tombstones (commands about them are refused)."""
    pass_over_erased: bool = False
    """Pass over events about a survivor erased before them (see ``remembering_erasures``): for a service that keeps
    nothing about an erased survivor, whatever arrives later."""


async def serve(spec: ServiceSpec, settings: Settings | None = None, stop: asyncio.Event | None = None) -> None:
    """Run ``spec`` alone until SIGTERM/SIGINT (or ``stop``): migrate, then relay, consume and run tasks."""
    settings = settings or Settings()
    await serve_all([(spec, settings)], settings, group=spec.name, stop=stop)


async def serve_all(
    services: Sequence[tuple[ServiceSpec, Settings]], settings: Settings, *, group: str,
    stop: asyncio.Event | None = None,
) -> None:  # fmt: skip
    """Run each ``(spec, its settings)`` in this process, one Kafka consumer (group ``group``, as ``settings``'
    Kafka user) handing each a share of what it reads; probes on ``settings.health_port`` (each service's checks
    prefixed with its name when there are several)."""
    pools: list[Pool] = []
    notifications = Notifications()  # one LISTEN connection for every relay and listening task of the process
    try:
        components: list[Component] = []
        checks: dict[str, Check] = {}
        subscribers: list[Subscriber] = []
        for spec, own in services:
            pool = await create_pool(own, schema=spec.name, reset=False)
            pools.append(pool)
            await migrate(pool, spec.name, spec.migrations)
            # Each publishes as the service's own Kafka user, woken through the process's one LISTEN connection.
            relay = OutboxRelay(pool, spec.name, kafka.producer(own), notifications=notifications,
                                reader=functools.partial(kafka.reader, own))  # fmt: skip
            components.append(relay.run)
            prefix = f"{spec.name}." if len(services) > 1 else ""
            checks.update({prefix + k: v for k, v in probes(pool, relay).items()})
            if spec.topics:
                remembered = spec.remember_erasures and IDENTIFICATION.name in spec.topics
                handlers = (remembering_erasures(spec.handlers, pass_over_erased=spec.pass_over_erased) if remembered
                            else spec.handlers)  # fmt: skip
                subscribers.append(Subscriber(name=spec.name, pool=pool, handlers=handlers,
                                              batch_handlers=spec.batch_handlers, topics=spec.topics,
                                              only=spec.only))  # fmt: skip
            components += [reconnecting(f"{spec.name} {task.__name__}", functools.partial(task, pool))
                           for task in spec.background]  # fmt: skip
            for channel, callback in spec.listening:
                notifications.add(channel, callback)
        components.append(reconnecting("notifications", functools.partial(notifications.run, pools[0])))
        if subscribers:
            topics = sorted({t for spec, _ in services for t in spec.topics})
            consumer = IdempotentConsumer(
                name=group,
                consumer=kafka.consumer(settings, group, topics, instance=settings.kafka_instance_id),
                dead_letters=kafka.producer(settings),
                subscribers=subscribers,
                commit_seconds=settings.kafka_commit_seconds,
            )
            components.append(consumer.run)
            checks["consumer"] = consumer.joined
        if settings.health_port:
            health = Health(group, checks)
            components.append(functools.partial(health.serve, settings.health_host, settings.health_port))
        for spec, _ in services:
            log.info("%s: serving %s", spec.name, ", ".join(spec.topics) or "no topics")
        await run_until_stopped(*components, stop=stop)
    finally:
        for pool in pools:
            await pool.close()


def probes(pool: Pool, relay: OutboxRelay) -> dict[str, Check]:
    """What every process's ``/readyz`` asks: the database answers, Kafka answers, the relay leads or stands by."""
    return {"database": lambda: pool.fetchval("SELECT 1"), "kafka": relay.reachable, "relay": relay.settled}


def main(build: Callable[[Settings], ServiceSpec]) -> None:
    """The ``python -m services.<name>.app`` entry point: settings read once, the spec built, served."""
    settings = Settings()
    spec = build(settings)
    telemetry.configure(spec.name)
    uvloop.run(serve(spec, settings))
