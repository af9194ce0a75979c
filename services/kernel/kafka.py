"""Kafka clients as Haven needs them: idempotent acks=all producers, manual-commit consumers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from services.kernel.settings import Settings


def auth(settings: Settings) -> dict[str, Any]:
    """How every client of this process reaches Kafka: as its own user, by SCRAM-SHA-512 (aiokafka's keywords)."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return {"bootstrap_servers": settings.kafka_bootstrap_servers}
    return {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": settings.kafka_username,
        "sasl_plain_password": settings.kafka_password_text(),
        **({"ssl_context": create_ssl_context()} if settings.kafka_security_protocol == "SASL_SSL" else {}),
    }


def admin(settings: Settings, **options: Any) -> AIOKafkaAdminClient:
    """An admin client as this process's user."""
    return AIOKafkaAdminClient(**auth(settings), **options)


def producer(settings: Settings, *, linger_ms: int = 5) -> AIOKafkaProducer:
    """An idempotent producer that waits for every in-sync replica (never loses an acknowledged send)."""
    return AIOKafkaProducer(
        **auth(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )


def reader(settings: Settings) -> AIOKafkaConsumer:
    """A consumer in no group, as this process's user, for reading partitions it assigns itself."""
    return AIOKafkaConsumer(**auth(settings), group_id=None, enable_auto_commit=False)


def consumer(
    settings: Settings, group_id: str, topics: Iterable[str], *, max_records: int = 500, instance: str | None = None
) -> AIOKafkaConsumer:
    """A consumer whose offsets are committed only by us, after the database commit; ``instance`` makes it a static
    member of its group."""
    return AIOKafkaConsumer(
        *topics,
        **auth(settings),
        group_id=group_id,
        group_instance_id=instance,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=max_records,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        fetch_min_bytes=settings.kafka_fetch_min_bytes,
    )
