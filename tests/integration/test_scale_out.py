"""Scale-out on the real stack, as `make run REPLICAS=2` and the chart run Haven: two instances of a service split
its partitions and one killed mid-stream loses and repeats nothing; two gateways share each key's rate limit and
both deliver subscriptions; two deadline workers fire each deadline once."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from gateway.auth import Role

from events.catalog import IDENTIFICATION_COMMANDS, OUTCOMES, REFERRALS
from events.consent import Grantee, OrgType
from events.envelope import from_kafka
from events.identification import ScreeningIntake
from events.needs import ReferralType
from services.kernel.crypto import Keyring, decode_master_key
from services.kernel.db import Pool
from services.kernel.settings import Settings
from tests.support.gateway import SCREEN, call, partner, screening
from tests.support.intakes import identified, intake_data, seal_intake, send
from tests.support.observe import eventually, read_to_end, wait_for_events
from tests.support.partners import organisation, register
from tests.support.processes import ServiceProcess, start_all
from tests.support.referrals import consent_to, request

SCREENINGS = 400


def instance(name: str, tmp: Path, n: int, **env: str) -> ServiceProcess:
    """Instance ``n`` of ``name``: a log of its own, a probe port of its own."""
    log_dir = tmp / f"{name}-{n}"
    log_dir.mkdir(parents=True, exist_ok=True)
    return ServiceProcess(name, log_dir, env={"HAVEN_HEALTH_PORT": str(18140 + n), **env})


def stop_all(processes: list[ServiceProcess]) -> None:
    for process in processes:
        if process.proc is not None:
            assert process.stop() == 0, f"{process.name} stops cleanly on SIGTERM"


async def held(port: int, topic: str) -> set[int]:
    """The partitions of ``topic`` the process on ``port`` holds, from its /metrics (a lag gauge per partition)."""
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as answer:
        text = await answer.text()
    found = set()
    for line in text.splitlines():
        if line.startswith("haven_consumer_lag{") and f'messaging_destination_name="{topic}"' in line:
            match = re.search(r'messaging_destination_partition_id="(\d+)"', line)
            assert match is not None
            found.add(int(match.group(1)))
    return found


async def test_two_instances_split_the_partitions_and_one_killed_mid_stream_loses_and_repeats_nothing(
    settings: Settings, db: Pool, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    keyring = Keyring(decode_master_key(settings.master_key_text()))
    first, second = (instance("identification", tmp_path, n) for n in (1, 2))
    await asyncio.to_thread(start_all, {"first": first, "second": second})
    topic = IDENTIFICATION_COMMANDS.name
    try:
        shares: list[set[int]] = []

        async def split() -> bool:
            """Each instance holds some of the command topic's partitions, none held by both, all held."""
            shares[:] = [await held(18141, topic), await held(18142, topic)]
            return all(shares) and not shares[0] & shares[1] and len(shares[0] | shares[1]) == 6

        await eventually(split, timeout=60)
        commands = [await seal_intake(db, keyring, ScreeningIntake.model_validate(intake_data()))
                    for _ in range(SCREENINGS)]  # fmt: skip
        survivors = [c.survivor_id for c in commands]

        async def recorded() -> int:
            n: int = await db.fetchval("SELECT count(*) FROM identification.survivors WHERE survivor_id = ANY($1)",
                                       survivors)  # fmt: skip
            return n

        sending = asyncio.create_task(send(producer, *commands))  # one at a time, acknowledged: a steady stream

        async def under_way() -> bool:
            return await recorded() > 0

        await eventually(under_way)
        assert first.proc is not None
        first.proc.send_signal(signal.SIGKILL)  # mid-stream: no clean stop, no offset commit, no goodbye to the group
        await asyncio.to_thread(first.proc.wait)
        first.proc = None
        killed_at, killed = await recorded(), time.monotonic()
        sent = await sending  # what is still to come lands on the dead instance's partitions too

        async def all_recorded() -> bool:
            return await recorded() == SCREENINGS

        await eventually(all_recorded, timeout=120)
        recovered = time.monotonic() - killed
        ids = [e.id for e in sent]
        inbox = await db.fetchrow("SELECT count(*) AS n, count(DISTINCT event_id) AS distinct_ids"
                                  " FROM identification.inbox WHERE event_id = ANY($1)", ids)  # fmt: skip
        # The relay publishes at least once: killed between Kafka's ack and its DELETE, its rows go out again from
        # the other instance, as copies of the same event (same id) that every consumer's inbox drops. What must
        # be one is the decision: one outcome event per command. The outcomes of the last commands leave the outbox
        # after they are recorded (the relay may be taking over from the killed instance): read until every one is
        # out; one that never is fails the wait.
        mine = set(ids)
        answered: Counter[UUID] = Counter()
        copies: list[tuple[UUID, UUID]] = []

        async def all_answered() -> bool:
            """every command answered on the outcomes topic"""
            outcomes = [from_kafka(m.value, m.headers) for m in await read_to_end(settings, OUTCOMES.name)]
            copies[:] = [(o.data.command_id, o.id) for o in outcomes  # type: ignore[attr-defined]
                         if o.type == "command.applied" and o.data.command_id in mine]  # type: ignore[attr-defined]  # fmt: skip
            answered.clear()
            answered.update(command for command, _ in set(copies))
            return len(answered) == SCREENINGS

        await eventually(all_answered, timeout=60)
        took_over = await held(18142, topic)
    finally:
        await asyncio.to_thread(stop_all, [first, second])

    assert 0 < killed_at < SCREENINGS, "killed mid-stream"
    assert inbox is not None
    assert inbox["n"] == inbox["distinct_ids"] == SCREENINGS, "every command handled exactly once"
    assert set(answered.values()) == {1}, "and decided once: one outcome event per command"
    assert took_over == set(range(6)), "the survivor took over the dead instance's partitions"
    print(
        f"scale-out: partitions split {sorted(shares[0])} / {sorted(shares[1])}; killed after {killed_at} of "
        f"{SCREENINGS}; all {SCREENINGS} recorded {recovered:.1f}s after the kill; inbox {inbox['n']} rows, "
        f"{len(answered)} outcomes, none decided twice ({len(copies) - len(set(copies))} republished copies)"
    )


GATEWAYS = {1: 18010, 2: 18011}
BURST = 4


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    identification = instance("identification", tmp_path, 0)
    both = [instance("gateway", tmp_path, n, HAVEN_GATEWAY_PORT=str(port), HAVEN_RATE_BURST=str(BURST),
                     HAVEN_RATE_PER_SECOND="0.01") for n, port in GATEWAYS.items()]  # fmt: skip
    processes = start_all({"identification": identification, "gateway-1": both[0], "gateway-2": both[1]})
    yield list(processes.values())
    stop_all(list(processes.values()))


def endpoint(port: int, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{port}/graphql"


async def test_two_gateways_share_each_keys_rate_limit_and_both_deliver_subscriptions(
    gateways: list[ServiceProcess], settings: Settings, db: Pool
) -> None:
    limited = await partner(db, organisation(OrgType.HOTLINE), Role.INTAKE)
    statuses = [(await call(settings, limited, "{ __typename }", endpoint=endpoint(GATEWAYS[1 + n % 2])))[0]
                for n in range(2 * BURST)]  # fmt: skip

    intake = await partner(db, organisation(OrgType.HOTLINE), Role.INTAKE)
    pushed = []
    async with aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(endpoint(port, "ws"), protocols=["graphql-transport-ws"],
                                            headers={"Authorization": f"Bearer {intake}"})
                   for port in GATEWAYS.values()]  # fmt: skip
        for ws in sockets:
            await ws.send_json({"type": "connection_init"})
            await ws.receive_json(timeout=5)
            subscription = "subscription { commandOutcomes { commandId status } }"
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": subscription}})
        await asyncio.sleep(0.5)
        # The screening goes through the first gateway; whichever gateway projects its outcome, both push it.
        _, body = await call(settings, intake, SCREEN, {"s": screening()}, endpoint=endpoint(GATEWAYS[1]))
        for ws in sockets:
            pushed.append((await ws.receive_json(timeout=30))["payload"]["data"]["commandOutcomes"])
            await ws.close()

    assert Counter(statuses) == {200: BURST, 429: BURST}, "one bucket per key, whichever gateway is asked"
    command = body["data"]["recordScreening"]["commandId"]
    assert pushed == [{"commandId": command, "status": "APPLIED"}] * 2


async def test_two_deadline_workers_fire_each_deadline_once(
    settings: Settings, db: Pool, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    processes = {"consent": instance("consent", tmp_path, 0), "referrals": instance("referrals", tmp_path, 3),
                 **{f"deadlines-{n}": instance("referrals.deadline_worker", tmp_path, n) for n in (4, 5)}}  # fmt: skip
    await asyncio.to_thread(start_all, processes)
    try:
        hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
        shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
        await register(producer, db, hotline, shelter)
        due = datetime.now(UTC) + timedelta(seconds=25)
        asks = []
        for _ in range(12):  # twelve survivors: their keys spread over the partitions the two workers split
            survivor = uuid4()
            await identified(producer, survivor, hotline.org_id)
            await consent_to(producer, db, survivor, Grantee(org_id=shelter.org_id), recorded_by=hotline.org_id)
            asks.append(request(survivor, hotline.org_id, shelter.org_id, respond_by=due))
        await send(producer, *asks)
        for ask in asks:
            await wait_for_events(settings, REFERRALS.name, subject=str(ask.survivor_id),
                                  types=["referral.expired"], timeout=90)  # fmt: skip
        await asyncio.sleep(3)  # a second firing would show by now
        events = [from_kafka(m.value, m.headers) for m in await read_to_end(settings, REFERRALS.name)]
        logs = [await asyncio.to_thread(p.log.read_text) for name, p in processes.items() if name.startswith("dead")]
    finally:
        await asyncio.to_thread(stop_all, list(processes.values()))

    mine = {ask.referral_id for ask in asks}
    expired = Counter(e.data.referral_id for e in events  # type: ignore[attr-defined]
                      if e.type == "referral.expired" and e.data.referral_id in mine)  # type: ignore[attr-defined]  # fmt: skip
    assert expired == dict.fromkeys(mine, 1), "each deadline fired once"
    fired_by = [{r for r in mine if f"referral {r} overdue" in log} for log in logs]
    assert all(fired_by), "both workers fired some: they split the partitions"
    assert not fired_by[0] & fired_by[1], "no deadline fired by both"
