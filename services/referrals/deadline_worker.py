"""The deadline worker: no referral waits past its deadline unanswered.

A faust-streaming app follows ``haven.referrals`` and keeps every referral awaiting an answer in
a changelog-backed table (``referral-deadlines``); a restarted worker recovers the table from its
changelog. A timer checks the table; when a deadline passes it sends ``ExpireReferral`` to the
referrals service, which expires, escalates and re-routes in one transaction with its outbox.

Effects are exactly-once through the service's inbox, not faust: the command's id is derived from
the referral and its deadline, so a timer fired again after a restart is recognised and dropped.
Run: ``python -m services.referrals.deadline_worker``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import faust

from events.catalog import REFERRALS, REFERRALS_COMMANDS
from events.envelope import Envelope, UndecodableEvent, from_kafka, to_kafka
from events.referrals import AWAITING_ANSWER, ExpireReferral, ReferralEvent, ReferralRequested
from services.kernel import kafka, telemetry
from services.kernel.health import Health
from services.kernel.settings import Settings
from services.referrals.domain import SYSTEM_ORG

log = logging.getLogger(__name__)
SOURCE = "haven/referral-deadlines"
APP_ID = "haven-referral-deadlines"  # faust's consumer group
FOLLOWS = (REFERRALS.name,)


def expiry_command(referral_id: str, survivor_id: str, deadline: datetime) -> Envelope:
    """The expiry of one deadline; its id is the same however often it is sent."""
    return Envelope.new(
        ExpireReferral(referral_id=referral_id, survivor_id=survivor_id, actor_org=SYSTEM_ORG, deadline=deadline),
        source=SOURCE,
        id=uuid5(NAMESPACE_URL, f"haven:expire:{referral_id}:{deadline.isoformat()}"),
    )


def create_app(settings: Settings, *, tick: float = 0.5) -> faust.App:
    app = faust.App(
        APP_ID,
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        broker_credentials=None
        if settings.kafka_security_protocol == "PLAINTEXT"
        else faust.SASLCredentials(
            username=settings.kafka_username, password=settings.kafka_password_text(), mechanism="SCRAM-SHA-512"
        ),
        store="memory://",
        datadir=str(settings.run_dir.resolve() / "faust"),
        web_enabled=False,
        web_host="127.0.0.1",
        topic_replication_factor=settings.topic_replication_factor,
        key_serializer="raw",
        value_serializer="raw",
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
    )
    referrals = app.topic(*FOLLOWS, key_type=bytes, value_type=bytes)
    commands = app.topic(REFERRALS_COMMANDS.name, key_type=bytes, value_type=bytes)
    deadlines = app.Table("referral-deadlines", partitions=REFERRALS.partitions, key_type=str, value_type=str)
    fired: set[str] = set()

    @app.agent(referrals)
    async def track(stream: Any) -> None:
        async for event in stream.events():
            try:
                envelope = from_kafka(event.value, list((event.headers or {}).items()))
            except UndecodableEvent:
                continue  # the referrals service dead-letters it; nothing here to time
            data = envelope.data
            if isinstance(data, ReferralRequested):
                deadlines[str(data.referral_id)] = json.dumps(
                    {"survivor_id": str(data.survivor_id), "deadline": data.deadline.isoformat()}
                )
            elif isinstance(data, ReferralEvent) and data.status not in AWAITING_ANSWER:
                key = str(data.referral_id)
                if key in deadlines:
                    del deadlines[key]
                fired.discard(key)

    @app.timer(interval=tick)
    async def expire_overdue() -> None:
        now = datetime.now(UTC)
        for key, value in list(deadlines.items()):
            entry = json.loads(value)
            deadline = datetime.fromisoformat(entry["deadline"])
            if deadline <= now and key not in fired:
                record = to_kafka(expiry_command(key, entry["survivor_id"], deadline))
                await commands.send(key=record.key, value=record.value, headers=record.headers)
                fired.add(key)
                log.info("referral %s overdue since %s: expiry sent", key, deadline.isoformat())

    @app.task
    async def announce() -> None:
        # After faust has set logging up: ours replaces its handlers (JSON or text) and quiets the libraries.
        telemetry.configure("deadline-worker")
        log.info("deadline worker: serving %s (started %.0f)", REFERRALS.name, time.time())

    if settings.health_port:

        @app.task
        async def probes() -> None:
            """/healthz, /readyz (Kafka answers, the worker is not mid-rebalance) and /metrics, on its own port."""
            producer = kafka.producer(settings)
            await producer.start()

            async def settled() -> None:
                if app.rebalancing:
                    raise RuntimeError("the worker's partitions are being rebalanced")

            checks = {"kafka": producer.client.fetch_all_metadata, "partitions": settled}
            try:
                await Health("deadline-worker", checks).serve(settings.health_host, settings.health_port,
                                                              asyncio.Event())  # fmt: skip
            finally:
                await producer.stop()

    return app


def main() -> None:
    settings = Settings()
    app = create_app(settings)
    # faust sets logging up at this level (its banner and tables stay quiet); announce() then takes it over.
    sys.argv = [sys.argv[0], "--quiet", "worker", "--loglevel", "warn", "--without-web"]

    app.main()


if __name__ == "__main__":
    main()
