"""OpenTelemetry and logs: one trace from a mutation through the outbox and Kafka to every consumer's handler.

Spans follow the OpenTelemetry messaging conventions: ``create {topic}`` when an event is written to the outbox
(in its transaction), ``send {topic}`` when the relay publishes it, ``process {topic}`` when a consumer handles it,
each with ``messaging.operation.name``/``type``, the destination, and Kafka's key, partition and offset. The
outbox row carries the W3C ``traceparent`` of its ``create`` span; the relay's ``send`` and every ``process`` are
its children.

:func:`configure` runs once at process start: metrics for Prometheus always; traces exported by OTLP/HTTP when the
standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, nothing otherwise; and
logs as JSON lines or readable text.
"""

from __future__ import annotations

import atexit
import contextvars
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from events.envelope import Envelope
from services.kernel import metrics as haven_metrics

_propagator = TraceContextTextMapPropagator()
_event: contextvars.ContextVar[Envelope | None] = contextvars.ContextVar("haven_event", default=None)

LIBRARY_CHATTER = ("aiokafka", "kafka", "faust", "mode", "uvicorn.error", "asyncio")
"""Loggers kept at WARNING: partition lists, banners and tables say nothing a person running Haven needs."""


def tracer() -> trace.Tracer:
    # Looked up on each use, so a tracer provider installed after import (tests, app start) is honoured.
    return trace.get_tracer("haven")


def current_traceparent() -> str | None:
    """The W3C traceparent of the active span, if any."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def _attributes(topic: str, operation: Literal["create", "send", "process"], **extra: Any) -> dict[str, Any]:
    return {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.operation.name": operation,
        "messaging.operation.type": operation,
        **{k: v for k, v in extra.items() if v is not None},
    }


def _about(event: Envelope) -> dict[str, str]:
    return {"messaging.message.id": str(event.id), "cloudevents.event_type": event.type}


def _key(key: bytes | None) -> str | None:
    return key.decode(errors="replace") if key else None


@contextmanager
def producing(event: Envelope) -> Iterator[str | None]:
    """The ``create`` span of ``event`` written to the outbox; yields the traceparent to store with it."""
    with tracer().start_as_current_span(
        f"create {event.topic}",
        kind=SpanKind.PRODUCER,
        attributes=_attributes(event.topic, "create", **_about(event)),
    ):
        yield current_traceparent()


def sending(topic: str, key: bytes | None, traceparent: str | None) -> Span:
    """The relay's ``send`` span of one outbox row, child of the row's ``create``; the caller ends it on the ack."""
    parent = _propagator.extract({"traceparent": traceparent} if traceparent else {})
    return tracer().start_span(
        f"send {topic}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes=_attributes(topic, "send", **{"messaging.kafka.message.key": _key(key)}),
    )


@contextmanager
def consuming(event: Envelope, traceparent: str | None, consumer: str, message: Any = None) -> Iterator[Span]:
    """The ``process`` span of ``event`` (read from Kafka as ``message``), child of its ``create`` span."""
    parent = _propagator.extract({"traceparent": traceparent} if traceparent else {})
    token = otel_context.attach(parent)
    handling = _event.set(event)
    where = {} if message is None else {"messaging.destination.partition.id": str(message.partition),
                                        "messaging.kafka.offset": message.offset,
                                        "messaging.kafka.message.key": _key(message.key)}  # fmt: skip
    about = {**_about(event), "messaging.consumer.group.name": consumer, **where}
    try:
        with tracer().start_as_current_span(
            f"process {event.topic}",
            kind=SpanKind.CONSUMER,
            attributes=_attributes(event.topic, "process", **about),
        ) as span:
            yield span
    finally:
        _event.reset(handling)
        otel_context.detach(token)


@contextmanager
def consuming_run(topic: str, headers: list[Any], consumer: str) -> Iterator[Span]:
    """One ``process`` span for a run of events handled in one call (set-based), linked to each one's ``create``
    span (from its messages' ``headers``), as OpenTelemetry's messaging conventions do for a batch."""
    links = []
    if isinstance(trace.get_tracer_provider(), TracerProvider):  # read no headers when nothing is exported
        for each in headers:
            parent = next((v.decode() for k, v in each or () if k == "traceparent"), None)
            context = trace.get_current_span(_propagator.extract({"traceparent": parent} if parent else {}))
            if context.get_span_context().is_valid:
                links.append(Link(context.get_span_context()))
    about = {"messaging.consumer.group.name": consumer, "messaging.batch.message_count": len(headers)}
    with tracer().start_as_current_span(f"process {topic}", kind=SpanKind.CONSUMER, links=links,
                                        attributes=_attributes(topic, "process", **about)) as span:  # fmt: skip
        yield span


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, service, logger, message, and the event being handled and the trace
    it belongs to when there is one. Log calls in Haven name ids and codes, never personal data; exceptions are
    given by type and traceback."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        event = _event.get()
        if event is not None:
            line["event_type"], line["event_id"] = event.type, str(event.id)
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"], line["span_id"] = f"{span.trace_id:032x}", f"{span.span_id:016x}"
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(service: str, fmt: str | None = None) -> None:
    """JSON lines when ``HAVEN_LOG_FORMAT=json`` (the chart's default), readable lines otherwise; libraries' chatter
    at WARNING."""
    # sys.__stderr__: faust (mode) replaces sys.stderr with a proxy into logging, which would loop back here.
    handler = logging.StreamHandler(sys.__stderr__)
    if (fmt or os.environ.get("HAVEN_LOG_FORMAT", "text")) == "json":
        handler.setFormatter(JsonLines(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("HAVEN_LOG_LEVEL", "INFO").upper())
    for name in LIBRARY_CHATTER:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure(service: str) -> None:
    """Once per process, at start: logs, metrics for ``/metrics``, and traces by OTLP if the environment asks."""
    configure_logging(service)
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", f"haven-{service}")})
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[PrometheusMetricReader()]))
    haven_metrics.count_kafka_requests()
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        atexit.register(provider.shutdown)  # what is still batched leaves before the process does
