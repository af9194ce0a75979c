"""One trace spans the producing transaction and the consumer, through the outbox and Kafka."""

from __future__ import annotations

import asyncio
from uuid import uuid4

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.kernel import kafka, outbox
from services.kernel.db import Pool
from services.kernel.relay import OutboxRelay
from services.kernel.settings import Settings
from tests.support.ledger import entry, ledger_consumer
from tests.support.observe import eventually


async def test_one_trace_covers_the_producer_and_the_consumer(
    settings: Settings, pool: Pool, schema: str, topic: str, spans: InMemorySpanExporter
) -> None:
    stop = asyncio.Event()
    relay = OutboxRelay(pool, schema, kafka.producer(settings))
    consumer = ledger_consumer(settings, pool, topic, f"trace-{uuid4().hex[:6]}")
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(consumer.run(stop))]
    event = entry(topic, "survivor-t", 1)
    with trace.get_tracer("test").start_as_current_span("accept referral (mutation)") as request:
        async with pool.acquire() as conn, conn.transaction():
            await outbox.write(conn, event)

    async def consumed() -> bool:
        return consumer.stats.handled == 1

    await eventually(consumed)
    stop.set()
    await asyncio.gather(*tasks)

    finished = {s.name: s for s in spans.get_finished_spans() if s.kind in (SpanKind.PRODUCER, SpanKind.CONSUMER)}
    producer, send = finished[f"create {topic}"], finished[f"send {topic}"]
    consumer_span = finished[f"process {topic}"]
    assert send.parent is not None
    assert send.parent.span_id == producer.context.span_id, "the relay's send is the create's child"
    trace_id = request.get_span_context().trace_id
    assert producer.context.trace_id == consumer_span.context.trace_id == trace_id
    assert consumer_span.parent is not None
    assert consumer_span.parent.span_id == producer.context.span_id, "the consumer is the producer's child"
    assert consumer_span.attributes is not None
    assert consumer_span.attributes["messaging.message.id"] == str(event.id)
