"""OpenTelemetry: one trace from the producing transaction through Kafka to every consumer.

The producer side injects W3C ``traceparent`` into the outbox row; the consumer side extracts
it from the Kafka headers itself (aiokafka instrumentation leaves no active span after ``getone``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from events.envelope import Envelope

_propagator = TraceContextTextMapPropagator()


def tracer() -> trace.Tracer:
    # Looked up on each use, so a tracer provider installed after import (tests, app start) is honoured.
    return trace.get_tracer("haven")


def current_traceparent() -> str | None:
    """The W3C traceparent of the active span, if any."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def _attributes(event: Envelope, **extra: str) -> dict[str, str]:
    """OpenTelemetry messaging semantic conventions, plus the CloudEvents type."""
    return {
        "messaging.system": "kafka",
        "messaging.destination.name": event.topic,
        "messaging.message.id": str(event.id),
        "cloudevents.event_type": event.type,
        **extra,
    }


@contextmanager
def producing(event: Envelope) -> Iterator[str | None]:
    """A PRODUCER span for ``event``; yields the traceparent to store with it."""
    with tracer().start_as_current_span(
        f"{event.topic} publish",
        kind=SpanKind.PRODUCER,
        attributes=_attributes(event),
    ):
        yield current_traceparent()


@contextmanager
def consuming(event: Envelope, traceparent: str | None, consumer: str) -> Iterator[Span]:
    """A CONSUMER span for ``event``, child of the producer's span carried in ``traceparent``."""
    parent = _propagator.extract({"traceparent": traceparent} if traceparent else {})
    token = otel_context.attach(parent)
    try:
        with tracer().start_as_current_span(
            f"{event.topic} process",
            kind=SpanKind.CONSUMER,
            attributes=_attributes(event, **{"messaging.consumer.group.name": consumer}),
        ) as span:
            yield span
    finally:
        otel_context.detach(token)
