"""Kafka clients as Haven needs them: idempotent acks=all producers, manual-commit consumers."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.kernel.settings import Settings


def producer(settings: Settings, *, linger_ms: int = 5) -> AIOKafkaProducer:
    """An idempotent producer that waits for every in-sync replica (never loses an acknowledged send)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )


def consumer(settings: Settings, group_id: str, topics: Iterable[str], *, max_records: int = 500) -> AIOKafkaConsumer:
    """A consumer whose offsets are committed only by us, after the database commit."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=max_records,
    )
