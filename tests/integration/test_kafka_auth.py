"""Kafka refuses whoever does not authenticate: every client of Haven signs in by SCRAM-SHA-512 as its own user,
and a client that does not (or signs in with a wrong password) gets nothing from the broker."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAuthorizationFailedError
from pydantic import SecretStr

from events.catalog import CONSENT_COMMANDS, REFERRALS, REFERRALS_COMMANDS
from services.kernel import kafka
from services.kernel.migrations import role_of
from services.kernel.settings import Settings


async def test_an_anonymous_client_is_refused(settings: Settings) -> None:
    anonymous = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=3000)
    with pytest.raises(KafkaConnectionError):
        await anonymous.start()  # the broker closes a connection that does not begin with SASL
    await anonymous.stop()


async def test_a_wrong_password_is_refused(settings: Settings) -> None:
    impostor = settings.model_copy(update={"kafka_username": role_of("shelter"), "kafka_password": SecretStr("guess")})
    admin = AIOKafkaAdminClient(**kafka.auth(impostor), request_timeout_ms=3000)
    with pytest.raises(KafkaError):
        await admin.start()
    await admin.close()


async def test_each_process_signs_in_as_its_own_user(settings: Settings) -> None:
    shelter = settings.model_copy(update={"kafka_username": role_of("shelter")})
    producer = kafka.producer(shelter)
    await producer.start()
    try:
        partitions = await producer.partitions_for(REFERRALS_COMMANDS.name)
    finally:
        await producer.stop()
    assert partitions == set(range(6))


def as_user(settings: Settings, schema: str) -> Settings:
    return settings.model_copy(update={"kafka_username": role_of(schema)})


async def sends(settings: Settings, topic: str) -> bool:
    """Whether Kafka takes a message on ``topic`` from this user (False: refused for want of permission)."""
    producer = kafka.producer(settings)
    await producer.start()
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, b"{}", key=b"probe"), 10)
    except TopicAuthorizationFailedError:
        return False
    finally:
        await producer.stop()
    return True


@pytest.mark.parametrize(
    ("schema", "topic", "allowed"),
    [
        ("shelter", CONSENT_COMMANDS.name, False),  # another service's commands: a shelter cannot grant consent
        ("shelter", REFERRALS.name, False),  # another service's events: it cannot forge a referral's history
        ("identification", REFERRALS_COMMANDS.name, False),
        ("gateway", REFERRALS.name, False),  # the gateway sends commands; only the referrals service decides
        ("shelter", REFERRALS_COMMANDS.name, True),  # its automatic answer to a referral
        ("gateway", CONSENT_COMMANDS.name, True),
    ],
)
async def test_each_user_writes_only_what_it_publishes(
    settings: Settings, schema: str, topic: str, allowed: bool
) -> None:
    assert await sends(as_user(settings, schema), topic) is allowed


async def test_a_user_reads_only_what_its_process_consumes(settings: Settings) -> None:
    reader = AIOKafkaConsumer(CONSENT_COMMANDS.name, **kafka.auth(as_user(settings, "shelter")), group_id="shelter",
                              auto_offset_reset="earliest", enable_auto_commit=False)  # fmt: skip

    async def read() -> None:
        await reader.start()
        await reader.getmany(timeout_ms=5000)

    try:
        with pytest.raises(TopicAuthorizationFailedError):  # refused at its first metadata request, or at its fetch
            await read()
    finally:
        await reader.stop()
