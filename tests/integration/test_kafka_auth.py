"""Kafka refuses whoever does not authenticate: every client of Haven signs in by SCRAM-SHA-512 as its own user,
and a client that does not (or signs in with a wrong password) gets nothing from the broker."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError
from pydantic import SecretStr

from events.catalog import REFERRALS_COMMANDS
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
