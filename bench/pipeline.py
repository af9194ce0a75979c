"""The whole stack under load through GraphQL: closed-loop referrals, latency to the subscription, memory.

Every service runs as ``make run`` starts it (``services.kernel.launcher``): all in one process, or with
``split`` one process per service, as the chart deploys them. A partner's calls go
through the gateway; the loop waits for what a partner would wait for, read from the stores the
services keep (the gateway's read model, the referrals service's consent), polled in one query per
store every few milliseconds for all loops at once.

One closed-loop referral: ``recordScreening`` → survivor in the gateway's read model →
``grantConsent`` to the shelter → known to the referrals service → ``requestReferral`` → received
by the shelter (automatic) → ``providerAction(acceptPlacement)`` → ``accepted`` in the
gateway's read model.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.gateway import wait_until_up
from bench.progress import progress
from events.catalog import TOPICS
from events.consent import OrgType
from events.directory import Organisation
from events.needs import ReferralType
from services.kernel import kafka
from services.kernel.db import Pool, create_pool
from services.kernel.launcher import discover_apps, parse_replicas, plan
from services.kernel.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
UNTIL_FAILED = {"rejected", "cancelled", "failed", "entered_in_error"}

RECORD = "mutation($s: ScreeningInput!) { recordScreening(screening: $s) { subjectId } }"
GRANT = "mutation($s: ID!, $d: DirectiveInput!) { grantConsent(survivorId: $s, directive: $d) { commandId } }"
REQUEST = "mutation($r: ReferralInput!) { requestReferral(referral: $r) { referralId } }"
ACT = "mutation($a: ProviderActionInput!) { providerAction(action: $a) { commandId } }"
SUBSCRIBE = "subscription { inbox { id } }"


def screening() -> dict[str, Any]:
    """An adult woman's screening, as a hotline's system would send it (the gateway adds the screener)."""
    return {
        "idempotencyKey": f"bench-{uuid4().hex}",
        "screenerType": "HOTLINE",
        "outcome": "PROBABLE_VICTIM",
        "decidedBy": "bench-hotline",
        "decidedByRole": "SCREENER",
        "statistics": {"ageBand": "AGE_24_26", "gender": "FEMALE", "nationality": "PH", "disability": False},
        "identity": {"givenName": "Maria", "familyName": "Santos", "dateOfBirth": "1994-03-02"},
        "contact": {"phone": "+63 917 555 0101", "safeContactInstructions": "text only, after 8pm"},
        "narrative": {
            "acts": ["RECRUITMENT"],
            "means": ["DECEPTION", "DEBT_BONDAGE"],
            "purposes": ["DOMESTIC_SERVITUDE"],
            "indicators": ["WITHHELD_WAGES"],
            "sector": "DOMESTIC_WORK",
            "places": {"recruitment": "PH", "transit": [], "exploitation": "GB"},
        },
    }


class Watcher:
    """Futures resolved when a row shows up: one query per tick for every id anybody waits for."""

    def __init__(self, pool: Pool, sql: str, done: Callable[[Any], bool] = lambda _: True) -> None:
        self.pool, self.sql, self.done = pool, sql, done
        self.waiting: dict[UUID, asyncio.Future[Any]] = {}

    async def until(self, key: UUID, seconds: float = 60) -> Any:
        future = self.waiting.setdefault(key, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(future), seconds)
        except TimeoutError:
            self.waiting.pop(key, None)
            raise RuntimeError(f"{key} not seen by `{self.sql}` within {seconds:.0f} s") from None

    async def run(self, tick: float = 0.05) -> None:
        while True:
            if self.waiting:
                for row in await self.pool.fetch(self.sql, list(self.waiting)):
                    if self.done(row):
                        future = self.waiting.pop(row[0])
                        if row.get("status") in UNTIL_FAILED:
                            future.set_exception(RuntimeError(f"referral {row[0]} ended {row['status']}"))
                        else:
                            future.set_result(row)
            await asyncio.sleep(tick)


@dataclass
class Stack:
    """Every service started as `make run` starts them, plus the partners the benchmark acts as."""

    settings: Settings
    pool: Pool
    port: int
    launcher: subprocess.Popen[bytes]
    intake: str = ""
    intake_org: str = ""
    shelters: list[tuple[str, str]] = field(default_factory=list)  # (org id, caseworker key)
    tiny: tuple[str, str, str] = ("", "", "")  # make chaos: a shelter with one bed, its key, a hotline caseworker's
    watchers: dict[str, Watcher] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    async def call(self, session: aiohttp.ClientSession, key: str, query: str, variables: dict[str, Any]) -> Any:
        headers = {"Authorization": f"Bearer {key}"}
        async with session.post(self.url, json={"query": query, "variables": variables}, headers=headers) as answer:
            body = await answer.json()
        if body.get("errors"):
            operation = query.split("{", 1)[1].split("(", 1)[0].strip()
            raise RuntimeError(f"{operation}: {body['errors'][0]['message']}")
        return body["data"]

    def processes(self) -> dict[str, int]:
        """Module name (``#2`` on a second instance of it) → pid of every process the launcher runs now."""
        found: dict[str, int] = {}
        children = Path(f"/proc/{self.launcher.pid}/task/{self.launcher.pid}/children").read_text().split()
        for pid in children:
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue  # it just exited
            name = argv[2].decode() if len(argv) > 2 else pid
            n = 1
            while (key := name if n == 1 else f"{name}#{n}") in found:
                n += 1
            found[key] = int(pid)
        return found


def org(org_id: str, kind: OrgType, service: ReferralType) -> Organisation:
    return Organisation(org_id=org_id, name=org_id, org_type=kind, services=frozenset({service}),
                        jurisdictions=frozenset({"GB"}))  # fmt: skip


async def start(
    settings: Settings, port: int, log: Path, *, shelters: int = 20, beds: int = 1000, split: bool = False,
    replicas: str = "",
) -> Stack:  # fmt: skip
    """Every service, one hotline and ``shelters`` shelters of ``beds`` beds each (a shelter counts its
    free beds on every referral, so the load is spread as it would be nationally, not piled on one)."""
    from gateway.auth import Role, create_key  # graphql/ is on sys.path for make bench
    from gateway.cli import register

    env = {**os.environ, "HAVEN_GATEWAY_PORT": str(port), "HAVEN_RATE_PER_SECOND": "1000000",
           "HAVEN_RATE_BURST": "1000000", "HAVEN_ADDRESS_RATE_PER_SECOND": "1000000",
           "HAVEN_ADDRESS_BURST": "1000000", "HAVEN_SPLIT": "1" if split else "",
           "HAVEN_REPLICAS": replicas}  # fmt: skip
    with log.open("wb") as out:
        launcher = subprocess.Popen([sys.executable, "-m", "services.kernel.launcher"], cwd=ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    pool = await create_pool(settings, min_size=4)
    stack = Stack(settings, pool, port, launcher)
    await wait_until_up(f"http://127.0.0.1:{port}/healthz", seconds=60)
    for _ in range(20):  # every child started, then each one ready (its probe port answers /readyz)
        ports = [probe_port(pid) for pid in stack.processes().values()]
        wanted = plan(settings, [*discover_apps(), "gateway.app"], parse_replicas(replicas), port, split=split)
        if len(ports) >= len(wanted) and all(ports):
            break
        await asyncio.sleep(0.5)
    for probe in ports:
        await wait_until_up(f"http://{settings.health_host}:{probe}/readyz", seconds=120)
    tag = uuid4().hex[:6]
    hotline = org(f"bench-hotline-{tag}", OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    homes = [org(f"bench-shelter-{tag}-{n}", OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER) for n in range(shelters)]
    for partner in (hotline, *homes):
        await register(pool, partner)
    async with pool.acquire() as conn:
        stack.intake_org = hotline.org_id
        stack.intake = await create_key(conn, hotline.org_id, Role.INTAKE, "bench")
        stack.shelters = [(h.org_id, await create_key(conn, h.org_id, Role.CASEWORKER, "bench")) for h in homes]
    async with aiohttp.ClientSession() as session:
        for _, key in stack.shelters:
            await stack.call(
                session, key, ACT, {"a": {"configureShelter": {"beds": [{"unitType": "ADULT_WOMEN", "count": beds}]}}}
            )
    ids = [hotline.org_id, *(h.org_id for h in homes)]
    for _ in range(600):
        known = await pool.fetchval("SELECT count(*) FROM referrals.organisations WHERE org_id = ANY($1)", ids)
        sites = await pool.fetchval("SELECT count(DISTINCT org_id) FROM shelter.beds WHERE org_id = ANY($1)", ids)
        if known == len(ids) and sites == shelters:
            break
        await asyncio.sleep(0.1)
    else:
        raise RuntimeError("the partners did not reach the referrals and shelter services within a minute")
    stack.watchers = {
        "screened": Watcher(pool, "SELECT survivor_id FROM gateway.survivors WHERE survivor_id = ANY($1)"),
        "consented": Watcher(
            pool, "SELECT DISTINCT survivor_id FROM referrals.consent_directives WHERE survivor_id = ANY($1)"
        ),
        "received": Watcher(
            pool,
            "SELECT referral_id, status FROM gateway.referrals WHERE referral_id = ANY($1)",
            lambda r: r["status"] != "requested",
        ),
        "accepted": Watcher(
            pool,
            "SELECT referral_id, status FROM gateway.referrals WHERE referral_id = ANY($1)",
            lambda r: r["status"] not in ("requested", "received"),
        ),
    }
    return stack


async def stop(stack: Stack) -> None:
    stack.launcher.send_signal(signal.SIGTERM)
    await asyncio.to_thread(stack.launcher.wait, 60)
    await stack.pool.close()


async def ready_survivor(stack: Stack, session: aiohttp.ClientSession, shelter: str) -> UUID:
    """Screened and consented to ``shelter``, as far as every service involved knows."""
    data = await stack.call(session, stack.intake, RECORD, {"s": screening()})
    survivor = UUID(data["recordScreening"]["subjectId"])
    await stack.watchers["screened"].until(survivor)
    now = datetime.now(UTC)
    directive = {"grantee": {"orgId": shelter}, "categories": ["IDENTITY", "CONTACT", "CASE_STATUS"],
                 "purposes": ["SERVICE_DELIVERY"], "validFrom": (now - timedelta(minutes=1)).isoformat(),
                 "validUntil": (now + timedelta(days=30)).isoformat(),
                 "obtained": {"method": "WRITTEN", "language": "tl", "interpreter": True}}  # fmt: skip
    await stack.call(session, stack.intake, GRANT, {"s": str(survivor), "d": directive})
    await stack.watchers["consented"].until(survivor)
    return survivor


async def refer(stack: Stack, session: aiohttp.ClientSession, survivor: UUID, shelter: str) -> UUID:
    ask = {"survivorId": str(survivor), "recipientOrg": shelter, "referralType": "EMERGENCY_SHELTER",
           "urgency": "EMERGENCY"}  # fmt: skip
    return UUID((await stack.call(session, stack.intake, REQUEST, {"r": ask}))["requestReferral"]["referralId"])


async def closed_loop(stack: Stack, session: aiohttp.ClientSession, n: int) -> None:
    shelter, key = stack.shelters[n % len(stack.shelters)]
    survivor = await ready_survivor(stack, session, shelter)
    referral = await refer(stack, session, survivor, shelter)
    await stack.watchers["received"].until(referral)
    accept = {"referralId": str(referral), "survivorId": str(survivor), "unitType": "ADULT_WOMEN"}
    await stack.call(session, key, ACT, {"a": {"acceptPlacement": accept}})
    await stack.watchers["accepted"].until(referral)


async def kafka_offsets(settings: Settings) -> dict[str, int]:
    """How many records each Haven topic holds (the sum of its partitions' end offsets)."""
    reader = AIOKafkaConsumer(**kafka.auth(settings), group_id=None)
    await reader.start()
    try:
        partitions = [TopicPartition(t.name, p) for t in TOPICS
                      for p in reader._client.cluster.partitions_for_topic(t.name) or ()]  # fmt: skip
        if not partitions:
            await reader._client.force_metadata_update()
            partitions = [TopicPartition(t.name, p) for t in TOPICS
                          for p in reader._client.cluster.partitions_for_topic(t.name) or ()]  # fmt: skip
        held: dict[str, int] = {}
        for tp, end in (await reader.end_offsets(partitions)).items():
            held[tp.topic] = held.get(tp.topic, 0) + end
        return held
    finally:
        await reader.stop()


async def pipeline(stack: Stack, *, loops: int, seconds: float) -> dict[str, Any]:
    """``loops`` partners, each running closed-loop referrals back to back for ``seconds``."""
    done: list[float] = []
    failures: list[str] = []
    deadline = time.monotonic() + seconds

    async def partner(session: aiohttp.ClientSession, n: int) -> None:
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                await closed_loop(stack, session, n)
                n += loops
            except (RuntimeError, TimeoutError) as failed:
                failures.append(str(failed) or type(failed).__name__)
                continue
            done.append(time.perf_counter() - began)

    async def ticker() -> None:
        while (left := deadline - time.monotonic()) > 0:
            progress(seconds - left, seconds, f"pipeline ({len(done)} referrals)")
            await asyncio.sleep(0.5)

    records_before = await kafka_offsets(stack.settings)
    requests_before = await kafka_requests(stack)
    cpu_before = cpu_by_process(stack)
    memory: list[dict[str, float]] = []

    async def sampler() -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(seconds / 6)
            memory.append(stack_memory(stack))

    began = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=loops * 2)) as session:
        await asyncio.gather(ticker(), sampler(), *(partner(session, n) for n in range(loops)))
    elapsed = time.monotonic() - began
    cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_by_process(stack).items()}
    progress(seconds, seconds, f"pipeline ({len(done)} referrals)")
    requests = {k: v - requests_before.get(k, 0) for k, v in (await kafka_requests(stack)).items()}
    records = {k: v - records_before.get(k, 0) for k, v in (await kafka_offsets(stack.settings)).items()}
    events = sum(records.values())
    per = max(len(done), 1)
    haven = {k: v for k, v in cpu.items() if k != "load generator (bench)"}
    if failures and len(failures) > len(done) // 100:
        raise RuntimeError(f"pipeline: {len(failures)} loops failed; the first: {failures[0]}")
    q = statistics.quantiles(done, n=100) if len(done) > 1 else [0.0] * 99
    return {
        "loops": loops,
        "seconds": round(elapsed, 1),
        "referrals": len(done),
        "failed": len(failures),
        "referrals_per_s": round(len(done) / elapsed, 1),
        "events": events,
        "events_per_s": round(events / elapsed),
        "loop_p50_ms": round(q[49] * 1000),
        "loop_p99_ms": round(q[98] * 1000),
        # Where the two cores went: CPU milliseconds per closed-loop referral, by process, and all of the stack's
        # (Kafka, PostgreSQL and Haven's processes; the load generator apart).
        "cpu_ms_per_referral": {k: round(v * 1000 / per, 1) for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])},
        "cpu_ms_per_referral_total": round(sum(haven.values()) * 1000 / per, 1),
        # Records written to Kafka per referral (every topic, outcomes and commands included), and by topic.
        "records_per_referral": round(events / per, 2),
        "records_per_referral_by_topic": {
            k: round(v / per, 2) for k, v in sorted(records.items(), key=lambda kv: -kv[1]) if v
        },
        # Requests Haven's clients sent the broker per referral, by API (haven.kafka.requests on each /metrics).
        "kafka_requests_per_referral": round(sum(requests.values()) / per, 1),
        "kafka_requests_per_referral_by_api": {
            k: round(v / per, 2) for k, v in sorted(requests.items(), key=lambda kv: -kv[1]) if v
        },
        "memory_under_load_mb": max(memory, key=lambda m: m["total"]) if memory else {},
    }


async def latency(stack: Stack, *, rate: float, seconds: float, survivors: int = 40) -> dict[str, Any]:
    """requestReferral at a fixed ``rate`` per second; time until each arrives on the shelter's subscription."""
    async with aiohttp.ClientSession() as session:
        shelter, key = stack.shelters[0]
        ready = await asyncio.gather(*(ready_survivor(stack, session, shelter) for _ in range(survivors)))
        sent: dict[UUID, float] = {}
        arrived: dict[UUID, float] = {}
        total = int(rate * seconds)
        async with session.ws_connect(stack.url.replace("http", "ws"), protocols=["graphql-transport-ws"],
                                      headers={"Authorization": f"Bearer {key}"}) as ws:  # fmt: skip
            await ws.send_json({"type": "connection_init"})
            assert (await ws.receive_json(timeout=10))["type"] == "connection_ack"
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
            await asyncio.sleep(0.5)

            async def listen() -> None:
                while len(arrived) < total:
                    message = await ws.receive_json(timeout=30)
                    if message["type"] == "next":
                        arrived[UUID(message["payload"]["data"]["inbox"]["id"])] = time.perf_counter()

            async def one(survivor: UUID) -> None:
                began = time.perf_counter()
                sent[await refer(stack, session, survivor, shelter)] = began

            listener = asyncio.create_task(listen())
            calls = []
            start = time.perf_counter()
            for i in range(total):
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
                calls.append(asyncio.create_task(one(ready[i % len(ready)])))
                if i % 50 == 0:
                    progress(i, total, f"latency at {rate:.0f} referrals/s")
            await asyncio.gather(*calls)
            progress(total, total, f"latency at {rate:.0f} referrals/s")
            await asyncio.wait_for(listener, 60)
    waits = sorted(arrived[r] - t for r, t in sent.items())
    q = statistics.quantiles(waits, n=100)
    return {
        "rate_per_s": rate,
        "referrals": len(waits),
        "p50_ms": round(q[49] * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
        "max_ms": round(waits[-1] * 1000, 1),
    }


def _descendants(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [pid, *(d for c in children for d in _descendants(int(c)))]


def _cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_by_process(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by each service, Kafka, PostgreSQL (all its backends) and this load generator."""
    run = stack.settings.run_dir
    postmaster = Path(Path((run / "pgdata.path").read_text().strip()) / "postmaster.pid")
    groups = {name: [pid] for name, pid in stack.processes().items()}
    groups["kafka"] = [int((run / "kafka.pid").read_text().split()[0])]
    groups["postgresql"] = _descendants(int(postmaster.read_text().split()[0]))
    groups["load generator (bench)"] = [os.getpid()]
    return {name: _cpu_seconds(pids) for name, pids in groups.items()}


def _pss_mb(pids: list[int]) -> float:
    """Proportional set size in MB: shared pages (PostgreSQL's buffers, the JVM's) counted once across processes."""
    kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    kb += int(line.split()[1])
                    break
        except OSError:
            continue
    return round(kb / 1024, 1)


def stack_memory(stack: Stack) -> dict[str, float]:
    """The whole stack's resident memory now (PSS, MB): Kafka, PostgreSQL (every backend) and Haven's processes."""
    run = stack.settings.run_dir
    postmaster = Path(Path((run / "pgdata.path").read_text().strip()) / "postmaster.pid")
    found = {
        "kafka": _pss_mb([int((run / "kafka.pid").read_text().split()[0])]),
        "postgresql": _pss_mb(_descendants(int(postmaster.read_text().split()[0]))),
        "haven": _pss_mb([stack.launcher.pid, *stack.processes().values()]),
    }
    return {**found, "total": round(sum(found.values()), 1)}


def probe_port(pid: int) -> str | None:
    """The probe port of a process the launcher started (None once it has exited)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_text().split("\0")
    except OSError:
        return None
    return dict(item.split("=", 1) for item in environ if "=" in item).get("HAVEN_HEALTH_PORT")


async def kafka_requests(stack: Stack) -> dict[str, int]:
    """Requests sent to Kafka so far by every Haven process, by API, from the ``haven_kafka_requests`` counter each
    serves on its probe port's ``/metrics``."""
    totals: dict[str, int] = {}
    async with aiohttp.ClientSession() as session:
        for pid in stack.processes().values():
            port = probe_port(pid)
            if not port:
                continue
            async with session.get(f"http://{stack.settings.health_host}:{port}/metrics") as answer:
                text = await answer.text()
            for line in text.splitlines():
                if line.startswith("haven_kafka_requests_total{"):
                    api = line.split('kafka_api="', 1)[1].split('"', 1)[0]
                    totals[api] = totals.get(api, 0) + int(float(line.rsplit(" ", 1)[1]))
    return totals


def peak_rss(stack: Stack) -> dict[str, float]:
    """Each service process's peak resident memory (VmHWM), in MB."""
    from bench.gateway import peak_rss_mb

    return {name: peak_rss_mb(pid) for name, pid in sorted(stack.processes().items())}


@contextlib.asynccontextmanager
async def running(port: int, *, split: bool = False) -> AsyncIterator[Stack]:
    """Every service started, the partners set up and the watchers polling; all stopped after."""
    settings = Settings()
    stack = await start(settings, port, settings.run_dir / f"bench-stack{'-split' if split else ''}.log", split=split)
    watching = [asyncio.create_task(w.run()) for w in stack.watchers.values()]
    try:
        yield stack
    finally:
        for task in watching:
            task.cancel()
        await stop(stack)


async def measure(
    *, loops: int, seconds: float, rate: float, quiet_rate: float, latency_seconds: float, port: int
) -> dict[str, Any]:
    """Both ways of running, one after the other on the same broker and database: every service in one process
    (``make run``'s default), then one process per service (the chart's). In each: memory at idle, the closed loop
    at its highest sustained rate (CPU, records and Kafka requests per referral, memory under load), and the latency
    at half that rate; in the default one, also at a quiet rate and at the fixed ``rate``."""
    found: dict[str, Any] = {}
    for mode, split in (("single_process", False), ("process_per_service", True)):
        async with running(port, split=split) as stack:
            await asyncio.sleep(5)  # settled: what the stack holds with nothing to do
            idle = stack_memory(stack)
            closed = await pipeline(stack, loops=loops, seconds=seconds)
            half = round(closed["referrals_per_s"] / 2, 1)
            runs = {"latency_at_half_max": await latency(stack, rate=half, seconds=latency_seconds)}
            if not split:
                # The quiet rate first: the fixed rate may leave a queue behind it.
                runs["latency_quiet"] = await latency(stack, rate=quiet_rate, seconds=latency_seconds)
                runs["latency"] = await latency(stack, rate=rate, seconds=latency_seconds)
            found[mode] = {"pipeline": closed, **runs, "memory_idle_mb": idle, "peak_rss_mb": peak_rss(stack)}
    return found


async def measure_pipeline_only(*, loops: int, seconds: float, port: int, split: bool = False) -> dict[str, Any]:
    async with running(port, split=split) as stack:
        return await pipeline(stack, loops=loops, seconds=seconds)


def main() -> None:
    """``python -m bench.pipeline``: the closed loop alone, on the stack the HAVEN_* environment names (quicker than
    ``make bench`` when one change is being weighed)."""
    import argparse
    import json

    import uvloop
    from gateway.app import GatewaySettings  # graphql/ is on sys.path for make bench

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--loops", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--split", action="store_true", help="one process per service, as the chart deploys them")
    args = parser.parse_args()
    port = GatewaySettings().gateway_port
    measured = measure_pipeline_only(loops=args.loops, seconds=args.seconds, port=port, split=args.split)
    print(json.dumps(uvloop.run(measured), indent=2))


if __name__ == "__main__":
    main()
