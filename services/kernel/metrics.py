"""What each process counts, as OpenTelemetry instruments, scraped by Prometheus at ``/metrics`` on its probe port.

The instruments exist from import (the API hands out proxies until :func:`services.kernel.telemetry.configure`
installs the meter provider), so code counts without knowing whether anyone collects. Nothing here carries a
survivor id or any personal data: attributes are event types, topics, partitions, codes and outcomes.

Gauges that need the database (outbox depth and age) are sampled when Prometheus scrapes, not on a timer: an
idle process costs nothing, and a scrape sees fresh figures.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

_meter = metrics.get_meter("haven")

EVENTS = _meter.create_counter(
    "haven.events", unit="{event}", description="Events a consumer took, by type and outcome "
    "(applied, refused, duplicate, dead_lettered, parked)."
)  # fmt: skip
DEAD_LETTERS = _meter.create_counter(
    "haven.dlq.messages", unit="{message}", description="Messages sent to a dead-letter topic, by topic and reason."
)
RELAY_PUBLISH = _meter.create_histogram(
    "haven.relay.publish.duration", unit="s", description="From send to Kafka's acknowledgement of a relay batch."
)
HTTP_DURATION = _meter.create_histogram(
    "http.server.request.duration", unit="s", description="Gateway HTTP requests, by route, method and status."
)
GRAPHQL_DURATION = _meter.create_histogram(
    "haven.graphql.operation.duration", unit="s", description="GraphQL operations, by type and operation name."
)
CONSENT_DECISIONS = _meter.create_counter(
    "haven.consent.decisions", unit="{decision}", description="Consent decisions at the field, by category, "
    "purpose and outcome (permitted or denied)."
)  # fmt: skip
KAFKA_REQUESTS = _meter.create_counter(
    "haven.kafka.requests", unit="{request}", description="Requests this process sent to Kafka, by API (Produce, "
    "Fetch, OffsetCommit, Heartbeat, …): what each event costs the broker."
)  # fmt: skip
DEADLINES_BREACHED = _meter.create_counter(
    "haven.referral.deadlines_breached", unit="{referral}", description="Referrals expired unanswered."
)


def count_kafka_requests() -> None:
    """Count every request the Kafka clients of this process send (``haven.kafka.requests``), by API: aiokafka has no
    metrics of its own, so its connection's ``send`` is wrapped, once."""
    from aiokafka.conn import AIOKafkaConnection

    original = AIOKafkaConnection.send
    if getattr(original, "_haven_counted", False):
        return
    apis: dict[type, dict[str, str]] = {}

    def send(self: AIOKafkaConnection, request: object, *args: object, **kwargs: object) -> object:
        about = apis.get(type(request))
        if about is None:  # ProduceRequest_v7 → Produce
            name = type(request).__name__.split("_")[0].removesuffix("Struct").removesuffix("Request")
            about = apis[type(request)] = {"kafka.api": name}
        KAFKA_REQUESTS.add(1, about)
        return original(self, request, *args, **kwargs)

    send._haven_counted = True  # type: ignore[attr-defined]
    AIOKafkaConnection.send = send


class Lagging(Protocol):
    """A consumer that knows its lag per partition as of its last fetch."""

    name: str

    def lag(self) -> dict[tuple[str, int], int]: ...


_consumers: weakref.WeakSet[Lagging] = weakref.WeakSet()
_outboxes: dict[str, tuple[int, float]] = {}
_samplers: dict[str, Callable[[], Awaitable[tuple[int, float]]]] = {}


def follow_lag(consumer: Lagging) -> None:
    """Report ``consumer``'s lag per partition for as long as it exists."""
    _consumers.add(consumer)


def follow_outbox(schema: str, sample: Callable[[], Awaitable[tuple[int, float]]]) -> None:
    """At each scrape, ``sample()`` gives the depth of ``schema``'s outbox and the age of its oldest row (s)."""
    _samplers[schema] = sample


async def sample() -> None:
    """Refresh what is sampled on scrape; a sampler that fails leaves its last figures (the readiness probe says
    why the database is not answering)."""
    for schema, sampler in list(_samplers.items()):
        try:
            _outboxes[schema] = await sampler()
        except Exception:  # a scrape must answer even while the database is away
            continue


def _lag(_: CallbackOptions) -> Iterable[Observation]:
    for consumer in list(_consumers):
        for (topic, partition), lag in consumer.lag().items():
            yield Observation(lag, {"messaging.consumer.group.name": consumer.name,
                                    "messaging.destination.name": topic,
                                    "messaging.destination.partition.id": str(partition)})  # fmt: skip


def _outbox(index: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(_: CallbackOptions) -> Iterable[Observation]:
        return [Observation(figures[index], {"haven.schema": schema}) for schema, figures in _outboxes.items()]

    return observe


_meter.create_observable_gauge(
    "haven.consumer.lag", [_lag], unit="{message}", description="Messages behind the partition's end, per partition."
)
_meter.create_observable_gauge(
    "haven.outbox.depth", [_outbox(0)], unit="{event}", description="Events committed but not yet published."
)
_meter.create_observable_gauge(
    "haven.outbox.oldest_age", [_outbox(1)], unit="s", description="Age of the oldest unpublished event."
)
