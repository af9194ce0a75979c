"""``haven serve --services all``: every service in one process keeps its own inbox, schema and relay; splitting them
apart later (one process per service, each with its own consumer group) changes no data."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

from aiokafka import AIOKafkaProducer, TopicPartition

from events.catalog import REFERRALS, REFERRALS_COMMANDS
from events.consent import Category, Grantee, OrgType
from events.envelope import header_map
from events.needs import ReferralType
from services.kernel import kafka
from services.kernel.db import Pool
from services.kernel.migrations import role_of
from services.kernel.settings import Settings
from tests.support.intakes import identified, send
from tests.support.observe import eventually, read_to_end, wait_for_events
from tests.support.partners import organisation, register
from tests.support.processes import ServiceProcess
from tests.support.referrals import consent_to, request


async def test_every_service_in_one_process_keeps_its_own_inbox_and_splitting_them_apart_changes_nothing(
    tmp_path: Path, settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    fast = {"HAVEN_KAFKA_COMMIT_SECONDS": "0.5"}
    host = ServiceProcess("kernel.host", tmp_path, env={
        **fast, "HAVEN_KAFKA_USERNAME": role_of("all"), "HAVEN_GATEWAY_PORT": "18070", "HAVEN_HEALTH_PORT": "18071",
    }).start()  # fmt: skip
    try:
        hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
        shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
        await register(producer, db, hotline, shelter)
        survivor = uuid4()
        await identified(producer, survivor, hotline.org_id)
        shared = frozenset(Category) - {Category.LOCATION}
        await consent_to(producer, db, survivor, Grantee(org_id=shelter.org_id), shared, recorded_by=hotline.org_id)
        command = request(survivor, hotline.org_id, shelter.org_id, referral_type=ReferralType.EMERGENCY_SHELTER)
        await send(producer, command)
        # The shelter has no beds, so it answers at once: rejected for no capacity.
        answered = ["referral.requested", "referral.received", "referral.rejected"]
        events = await wait_for_events(settings, REFERRALS.name, subject=str(survivor), types=answered)
    finally:
        assert host.stop() == 0, "the one process stops cleanly on SIGTERM"
    requested = next(e for e in events if e.type == "referral.requested")

    # One consumer read it once; each service that handles it has its own row, under its own name, in its own schema.
    for schema in ("shelter", "gateway"):
        rows = await db.fetch(f"SELECT consumer FROM {schema}.inbox WHERE event_id = $1", requested.id)
        assert [r["consumer"] for r in rows] == [schema]
    assert not await db.fetchval("SELECT 1 FROM legal_aid.inbox WHERE event_id = $1", requested.id)

    # Split apart: the shelter alone, in its own consumer group, which has not read this event (the host's group did).
    group = "shelter"
    alone = ServiceProcess("shelter", tmp_path, env=fast).start()
    try:
        message = next(m for m in await read_to_end(settings, REFERRALS.name)
                       if header_map(m.headers).get("ce_id") == str(requested.id))  # fmt: skip
        where = TopicPartition(message.topic, message.partition)
        admin = kafka.admin(settings)
        await admin.start()
        try:

            async def read_past_it() -> bool:
                offsets = await admin.list_consumer_group_offsets(group)
                return where in offsets and offsets[where].offset > message.offset

            await eventually(read_past_it, timeout=60)
        finally:
            await admin.close()
    finally:
        assert alone.stop() == 0
    commands = await read_to_end(settings, REFERRALS_COMMANDS.name)
    about = [m for m in commands if m.key == str(survivor).encode()]
    answers = [m for m in about if header_map(m.headers).get("ce_type") == "referrals.reject"]
    assert len(answers) == 1, "the shelter alone found the event in its inbox and did not answer it again"
    assert await db.fetchval("SELECT count(*) FROM shelter.inbox WHERE event_id = $1", requested.id) == 1
