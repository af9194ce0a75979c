"""Identification and consent, as running services on the real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaProducer

from events.catalog import CONSENT, IDENTIFICATION, IDENTIFICATION_COMMANDS
from events.consent import (
    Category,
    ConsentRecord,
    DecisionReason,
    Directive,
    GrantConsent,
    OrgType,
    Party,
    Purpose,
    RevokeConsent,
    decide,
)
from events.envelope import Envelope, header_map, to_kafka
from events.identification import (
    EraseSurvivor,
    ErasureReason,
    Identity,
    ScreeningIntake,
    SurvivorIdentified,
    hash_idempotency_key,
)
from services.kernel.crypto import Keyring, SurvivorKeyMissing, decode_master_key
from services.kernel.db import Pool
from services.kernel.settings import Settings
from tests.support.consent import SEALED_TEXT, shelter_directive
from tests.support.intakes import identified, intake_data, seal_intake, send
from tests.support.observe import broker_log_files, eventually, pg_dump, read_to_end, wait_for_events
from tests.support.processes import ServiceProcess, running
from tests.support.referrals import refusals_for

SHELTER = Party("harbour-shelter", OrgType.SHELTER)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("service-logs")
    yield from running(logs, ("identification", "consent"))


@pytest.fixture
def keyring(settings: Settings) -> Keyring:
    return Keyring(decode_master_key(settings.master_key_text()))


async def consent_records(db: Pool, survivor_id: Any) -> list[ConsentRecord]:
    rows = await db.fetch("SELECT directive, revoked_at FROM consent.directives WHERE survivor_id = $1", survivor_id)
    return [ConsentRecord(Directive.model_validate(r["directive"]), r["revoked_at"]) for r in rows]


async def test_intake_identified_needs_assessed_consent_granted_then_revoked(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, keyring: Keyring, producer: AIOKafkaProducer
) -> None:
    intake = ScreeningIntake.model_validate(intake_data())
    command = await seal_intake(db, keyring, intake)
    survivor = str(command.survivor_id)
    await send(producer, command)

    screened = await wait_for_events(settings, IDENTIFICATION.name, subject=survivor,
                                     types=["survivor.identified", "needs.assessed"])  # fmt: skip
    assert [e.type for e in screened] == ["survivor.identified", "needs.assessed"]
    needs = {n["referral_type"]: n["urgency"] for n in screened[1].data.model_dump(mode="json")["needs"]}
    assert needs["emergency_shelter"] == "emergency", "no safe accommodation tonight"
    assert needs["legal_aid"] == "routine", "withheld wages open a labour claim"
    event = screened[0].data
    assert isinstance(event, SurvivorIdentified)
    async with db.acquire() as conn:
        key = await keyring.get(conn, command.survivor_id)
    assert key.open_model("identity", event.profile.identity, Identity).family_name == "Santos"
    raw = await read_to_end(settings, IDENTIFICATION.name)
    assert any(m.key == survivor.encode() for m in raw), "the scan reached this survivor's events"
    assert not any(b"Santos" in (m.value or b"") for m in raw), "no plaintext personal data in Kafka"

    directive = shelter_directive()
    await send(producer, GrantConsent(survivor_id=command.survivor_id, directive=directive))
    await wait_for_events(settings, CONSENT.name, subject=survivor, types=["consent.granted"])
    records = await consent_records(db, command.survivor_id)
    assert decide(records, SHELTER, Category.CONTACT, Purpose.SERVICE_DELIVERY, datetime.now(UTC)).permitted
    assert not decide(records, SHELTER, Category.NARRATIVE, Purpose.SERVICE_DELIVERY, datetime.now(UTC)).permitted

    await send(producer, RevokeConsent(survivor_id=command.survivor_id, directive_id=directive.directive_id,
                                       revoked_by="city-hotline"))  # fmt: skip
    consent_events = await wait_for_events(settings, CONSENT.name, subject=survivor,
                                           types=["consent.granted", "consent.revoked"])  # fmt: skip
    assert [e.type for e in consent_events] == ["consent.granted", "consent.revoked"]
    after = decide(await consent_records(db, command.survivor_id), SHELTER, Category.CONTACT,
                   Purpose.SERVICE_DELIVERY, datetime.now(UTC))  # fmt: skip
    assert (after.permitted, after.reason) == (False, DecisionReason.REVOKED)


async def test_a_retried_intake_with_the_same_key_creates_one_survivor(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, keyring: Keyring, producer: AIOKafkaProducer
) -> None:
    intake = ScreeningIntake.model_validate(intake_data())
    first = await seal_intake(db, keyring, intake)
    retry = await seal_intake(db, keyring, intake)  # the client retried: a new id and key, the same idempotency key
    await send(producer, first, first, retry)

    async def retry_key_shredded() -> bool:
        async with db.acquire() as conn:
            try:
                await keyring.get(conn, retry.survivor_id)
            except SurvivorKeyMissing:
                return True
        return False

    await eventually(retry_key_shredded)
    identified = await wait_for_events(settings, IDENTIFICATION.name, subject=str(first.survivor_id),
                                       types=["survivor.identified"])  # fmt: skip
    assert [e.type for e in identified].count("survivor.identified") == 1
    count = await db.fetchval(
        "SELECT count(*) FROM identification.screenings WHERE idempotency_key = $1",
        hash_idempotency_key(intake.screener_org, intake.idempotency_key),
    )
    assert count == 1
    assert not await db.fetchval("SELECT 1 FROM identification.survivors WHERE survivor_id = $1", retry.survivor_id)


async def test_undecodable_commands_are_dead_lettered_refused_ones_answered_and_nothing_is_recorded(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, keyring: Keyring, producer: AIOKafkaProducer
) -> None:
    intake = ScreeningIntake.model_validate(intake_data())
    good = await seal_intake(db, keyring, intake)
    unkeyed = good.model_copy(update={"survivor_id": uuid4(), "idempotency_key": f"k-{uuid4().hex}"})
    sent_unkeyed = await send(producer, unkeyed)
    # A screener "confirming" a victim: the contract refuses it, so forge the bytes as a careless client would.
    forged = good.model_dump(mode="json") | {"idempotency_key": f"k-{uuid4().hex}", "outcome": "confirmed_victim"}
    headers = to_kafka(Envelope.new(good, source="haven/tests")).headers
    await producer.send_and_wait(IDENTIFICATION_COMMANDS.name, value=json.dumps(forged).encode(),
                                 key=str(good.survivor_id).encode(), headers=headers)  # fmt: skip
    # Sent before identification says the survivor is a child: it waits, and is then decided on the child rule
    # (the directive itself does not say it is a child's: that comes from the recorded age, never the request).
    child = shelter_directive(basis="guardian", justification=SEALED_TEXT, approvers=("cw-ana",))
    complete = shelter_directive(basis="guardian", justification=SEALED_TEXT, approvers=("cw-ana", "cw-ben"))
    grants = await send(producer, GrantConsent(survivor_id=good.survivor_id, directive=child),
                        GrantConsent(survivor_id=good.survivor_id, directive=complete))  # fmt: skip
    await asyncio.sleep(1)
    assert not await db.fetchval("SELECT 1 FROM consent.directives WHERE survivor_id = $1", good.survivor_id)
    await identified(producer, good.survivor_id, "city-hotline", is_minor=True)

    dead: list[Any] = []

    async def dead_letters() -> bool:
        nonlocal dead
        dead = await read_to_end(settings, f"{IDENTIFICATION_COMMANDS.name}.dlq")
        return any(header_map(m.headers)["haven_dlq_reason"] == "schema_invalid" for m in dead)

    await eventually(dead_letters)
    schema_invalid = [m for m in dead if header_map(m.headers)["haven_dlq_reason"] == "schema_invalid"]
    assert any("competent_authority" in header_map(m.headers)["haven_dlq_detail"] for m in schema_invalid)
    unkeyed_refusal = await refusals_for(settings, sent_unkeyed)
    assert unkeyed_refusal[sent_unkeyed[0].id][0] == "survivor_key_missing", "a domain refusal is answered"
    assert str(sent_unkeyed[0].id) not in {header_map(m.headers).get("ce_id") for m in dead}, "not dead-lettered"

    refusal = await refusals_for(settings, grants[:1])
    assert refusal[grants[0].id][0] == "second_approver_required"
    assert "directive.approvers" in refusal[grants[0].id][1]
    assert not await db.fetchval("SELECT 1 FROM consent.directives WHERE directive_id = $1", child.directive_id)
    recorded = await db.fetchval("SELECT directive FROM consent.directives WHERE directive_id = $1",
                                 complete.directive_id)  # fmt: skip
    assert recorded["subject_is_minor"], "recorded as a child's directive, from the recorded age"
    assert not await db.fetchval("SELECT 1 FROM identification.survivors WHERE survivor_id = $1", unkeyed.survivor_id)


async def test_erasure_leaves_the_survivors_name_nowhere(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, keyring: Keyring, producer: AIOKafkaProducer
) -> None:
    marker = f"Zephyrine{uuid4().hex[:12]}"
    intake = ScreeningIntake.model_validate(intake_data(identity__given_name=marker, narrative__story=f"{marker} said"))
    command = await seal_intake(db, keyring, intake)
    survivor = str(command.survivor_id)
    await send(producer, command, GrantConsent(survivor_id=command.survivor_id, directive=shelter_directive()))
    await wait_for_events(settings, IDENTIFICATION.name, subject=survivor, types=["survivor.identified"])
    await wait_for_events(settings, CONSENT.name, subject=survivor, types=["consent.granted"])

    await send(producer, EraseSurvivor(survivor_id=command.survivor_id, requested_by="city-hotline",
                                       reason=ErasureReason.SURVIVOR_REQUEST))  # fmt: skip
    await wait_for_events(settings, IDENTIFICATION.name, subject=survivor, types=["survivor.erased"])

    async def purged() -> bool:
        left: int = await db.fetchval(
            "SELECT (SELECT count(*) FROM consent.directives WHERE survivor_id = $1)"
            " + (SELECT count(*) FROM identification.screenings WHERE survivor_id = $1)",
            command.survivor_id,
        )
        return left == 0

    await eventually(purged)
    async with db.acquire() as conn:
        with pytest.raises(SurvivorKeyMissing, match="was erased"):
            await keyring.get(conn, command.survivor_id)
    late = await send(producer, GrantConsent(survivor_id=command.survivor_id, directive=shelter_directive()))
    refused = await refusals_for(settings, late)
    assert refused[late[0].id][0] == "survivor_erased", "nothing more is accepted about an erased survivor"

    dump = await asyncio.to_thread(pg_dump, settings)
    assert marker.encode() not in dump, "not in the database"
    assert b"CREATE TABLE identification.screenings" in dump, "the dump really holds the database"
    logs = await asyncio.to_thread(broker_log_files, settings)
    assert logs, "the broker's log segments were read"
    assert not any(marker.encode() in data for data in logs.values()), "not in the broker's logs"
    assert any(survivor.encode() in data for data in logs.values()), "the survivor's (sealed) events are there"


async def test_consent_expires_at_its_deadline_and_after_a_restart_exactly_once(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    survivor = uuid4()
    await identified(producer, survivor, "city-hotline")
    soon = datetime.now(UTC) + timedelta(seconds=2)
    while_running = shelter_directive(valid_until=soon)
    during_downtime = shelter_directive(valid_until=soon + timedelta(seconds=3))
    await send(producer, GrantConsent(survivor_id=survivor, directive=while_running),
               GrantConsent(survivor_id=survivor, directive=during_downtime))  # fmt: skip
    await wait_for_events(settings, CONSENT.name, subject=str(survivor), types=["consent.granted"] * 2)
    await wait_for_events(settings, CONSENT.name, subject=str(survivor), types=["consent.expired"], timeout=15)

    consent = services["consent"]
    assert consent.stop() == 0
    await asyncio.sleep(max(0.0, (soon + timedelta(seconds=3.5) - datetime.now(UTC)).total_seconds()))
    await asyncio.to_thread(consent.start)

    events = await wait_for_events(settings, CONSENT.name, subject=str(survivor),
                                   types=["consent.expired", "consent.expired"], timeout=30)  # fmt: skip
    expired = [e.data.model_dump(mode="json")["directive_id"] for e in events if e.type == "consent.expired"]
    assert sorted(expired) == sorted([str(while_running.directive_id), str(during_downtime.directive_id)])
