"""The deadline worker: no referral waits past its deadline unanswered.

A faust-streaming app follows ``haven.referrals`` and keeps every referral awaiting an answer in
a changelog-backed table (``referral-deadlines``); a restarted worker recovers the table from its
changelog. A timer checks the table; when a deadline passes it sends ``ExpireReferral`` to the
referrals service, which expires, escalates and re-routes in one transaction with its outbox.

It reads no more of each event than it needs: the ``ce_type`` header says whether the referral still
awaits an answer, and only a ``referral.requested`` has its payload parsed (for its deadline), never
validated (the referrals service, which wrote it, dead-letters what is malformed). The timer looks only
at the deadlines that are due, from a heap ordered by time, rebuilt from the table every
``REINDEX_SECONDS`` (a deadline that arrived with a rebalance is seen within that).

Effects are exactly-once through the service's inbox, not faust: the command's id is derived from
the referral and its deadline, so a timer fired again after a restart is recognised and dropped.
Run: ``python -m services.referrals.deadline_worker``.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import faust

from events.catalog import REFERRALS, REFERRALS_COMMANDS
from events.envelope import Envelope, to_kafka
from events.referrals import AWAITING_ANSWER, EVENT_STATUS, ExpireReferral, ReferralRequested
from services.kernel import kafka, telemetry
from services.kernel.health import Health
from services.kernel.settings import Settings
from services.referrals.domain import SYSTEM_ORG

log = logging.getLogger(__name__)
SOURCE = "haven/referral-deadlines"
APP_ID = "haven-referral-deadlines"  # faust's consumer group
FOLLOWS = (REFERRALS.name,)
REINDEX_SECONDS = 30.0
ANSWERED = frozenset(event.event_type for event, status in EVENT_STATUS.items() if status not in AWAITING_ANSWER)
"""Referral event types after which no deadline runs."""


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
        # A static member (the launcher and the chart name each process): restarted after a crash, it takes its
        # partitions back at once instead of waiting out the dead member's session (60 s) before a rebalance.
        consumer_group_instance_id=settings.kafka_instance_id,
    )
    referrals = app.topic(*FOLLOWS, key_type=bytes, value_type=bytes)
    commands = app.topic(REFERRALS_COMMANDS.name, key_type=bytes, value_type=bytes)
    deadlines = app.Table("referral-deadlines", partitions=REFERRALS.partitions, key_type=str, value_type=str)
    fired: set[str] = set()
    due: list[tuple[datetime, str]] = []  # (deadline, referral id), soonest first; stale entries are skipped
    indexed = [0.0]  # when the heap was last rebuilt from the table

    @app.agent(referrals)
    async def track(stream: Any) -> None:
        async for event in stream.events():
            event_type = (event.headers or {}).get("ce_type", b"").decode("utf-8", "replace")
            if event_type == ReferralRequested.event_type:
                try:
                    data = json.loads(event.value)
                    key, deadline = str(data["referral_id"]), datetime.fromisoformat(data["deadline"])
                    entry = json.dumps({"survivor_id": str(data["survivor_id"]), "deadline": deadline.isoformat()})
                except (ValueError, KeyError, TypeError):
                    continue  # the referrals service dead-letters it; nothing here to time
                deadlines[key] = entry
                heapq.heappush(due, (deadline, key))
            elif event_type in ANSWERED:
                try:
                    key = str(json.loads(event.value)["referral_id"])
                except (ValueError, KeyError, TypeError):
                    continue
                if key in deadlines:
                    del deadlines[key]
                fired.discard(key)

    @app.timer(interval=tick)
    async def expire_overdue() -> None:
        now = datetime.now(UTC)
        if time.monotonic() - indexed[0] >= REINDEX_SECONDS:  # what came with a rebalance (or was restored) joins
            due[:] = [(datetime.fromisoformat(json.loads(v)["deadline"]), k) for k, v in deadlines.items()]
            heapq.heapify(due)
            indexed[0] = time.monotonic()
        while due and due[0][0] <= now:
            deadline, key = heapq.heappop(due)
            value = deadlines.get(key)
            if value is None or key in fired:
                continue  # answered, or its expiry already sent
            entry = json.loads(value)
            if datetime.fromisoformat(entry["deadline"]) != deadline:
                continue  # a deadline replaced since (its own heap entry stands for it)
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
