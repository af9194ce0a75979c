"""The pathway query through the gateway (consent at the field, audit on) against a bare endpoint.

Both serve the same data from the same database in the same run: the bare endpoint is Starlette
running the raw asyncpg queries and returning JSON, with no GraphQL, no consent and no audit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import aiohttp

from bench.progress import progress
from events.consent import Category, Directive, Grantee
from events.identification import Contact, Identity
from services.kernel.crypto import Keyring, decode_master_key
from services.kernel.db import Pool, create_pool
from services.kernel.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ORG = "bench-shelter"
PATHWAY = """query($id: ID!) { survivor(id: $id, purpose: SERVICE_DELIVERY) {
  screening { outcome } identity { givenName familyName } contact { phone }
  referrals { status recipientOrg transitions { status actorOrg at } } } }"""


async def seed(pool: Pool, keyring: Keyring, survivors: int) -> tuple[list[UUID], str]:
    """Survivors with sealed identity and contact, consent for the bench shelter, 10 referrals of 5 moves each."""
    from gateway.auth import Role, create_key  # the gateway package sits under graphql/ (on sys.path)

    now = datetime.now(UTC)
    ids = [uuid4() for _ in range(survivors)]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO gateway.organisations (org_id, name, org_type) VALUES ($1, 'Bench', 'shelter')"
            " ON CONFLICT DO NOTHING",
            ORG,
        )
        key = await create_key(conn, ORG, Role.CASEWORKER, "bench")
        for n, survivor in enumerate(ids):
            data_key = await keyring.create(conn, survivor)
            profile = data_key.seal_parts(
                {
                    "identity": Identity(given_name=f"Name{n}", family_name="Bench"),
                    "contact": Contact(phone="+44 20 7946 0000"),
                }
            )
            profile["narrative"] = profile["identity"]
            await conn.execute(
                "INSERT INTO gateway.survivors (survivor_id, outcome, is_minor, screener_org, profile, identified_at)"
                " VALUES ($1, 'probable_victim', false, 'bench-hotline', $2, $3)",
                survivor,
                {k: v.model_dump() for k, v in profile.items()},
                now,
            )
            directive = Directive(
                directive_id=uuid4(),
                version=1,
                grantee=Grantee(org_id=ORG),
                recorded_by="bench-hotline",
                categories=frozenset({Category.IDENTITY, Category.CONTACT, Category.CASE_STATUS}),
                purposes=frozenset({"service_delivery"}),
                valid_from=now - timedelta(days=1),
                valid_until=now + timedelta(days=30),
            )
            await conn.execute(
                "INSERT INTO gateway.consent_directives VALUES ($1, $2, 1, $3, NULL)",
                survivor,
                directive.directive_id,
                directive.model_dump(mode="json"),
            )
            for r in range(10):
                referral = uuid4()
                await conn.execute(
                    "INSERT INTO gateway.referrals (referral_id, survivor_id, referrer_org, recipient_org,"
                    " referral_type, urgency, status, deadline, created_at, updated_at)"
                    " VALUES ($1, $2, 'bench-hotline', $3, 'emergency_shelter', 'emergency', 'completed', $4, $4, $4)",
                    referral,
                    survivor,
                    ORG if r % 2 else "other-shelter",
                    now,
                )
                await conn.executemany(
                    "INSERT INTO gateway.transitions VALUES ($1, $2, $3, $4, $5, NULL, $6)",
                    [
                        (uuid4(), referral, survivor, s, ORG, now + timedelta(minutes=i))
                        for i, s in enumerate(("requested", "received", "accepted", "in_progress", "completed"))
                    ],
                )
    return ids, key


async def load(
    label: str, request: Callable[[aiohttp.ClientSession, int], Awaitable[None]], *, clients: int, seconds: float
) -> dict[str, float]:
    """``clients`` concurrent loops for ``seconds``; requests per second and latency percentiles (ms)."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    errors = 0
    first_error: list[str] = []

    async def client(session: aiohttp.ClientSession, n: int) -> None:
        nonlocal errors
        i = n
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                await request(session, i)
            except AssertionError as failed:
                errors += 1
                first_error.append(str(failed))
            latencies.append(time.perf_counter() - began)
            i += clients

    async def ticker() -> None:
        while (left := deadline - time.monotonic()) > 0:
            progress(seconds - left, seconds, label)
            await asyncio.sleep(0.5)
        progress(seconds, seconds, label)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.monotonic()
        await asyncio.gather(ticker(), *(client(session, n) for n in range(clients)))
        elapsed = time.monotonic() - began
    if errors:  # a figure made of failed requests would be a lie
        raise RuntimeError(f"{label}: {errors} of {len(latencies)} requests failed; the first: {first_error[0][:500]}")
    q = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(q[49] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
    }


async def wait_until_up(*urls: str, seconds: float = 30) -> None:
    async with aiohttp.ClientSession() as session:
        for url in urls:
            deadline = time.monotonic() + seconds
            while True:
                try:
                    async with session.get(url) as ok:
                        if ok.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} did not answer 200 within {seconds:.0f} s")
                await asyncio.sleep(0.1)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def measure(*, survivors: int, clients: int, seconds: float, port: int) -> dict[str, Any]:
    settings = Settings()
    pool = await create_pool(settings, min_size=4)
    try:
        ids, key = await seed(pool, keyring(settings), survivors)
    finally:
        await pool.close()
    return {"survivors": survivors, **await pathway_load(settings, ids, key, clients=clients, seconds=seconds,
                                                          port=port)}  # fmt: skip


def keyring(settings: Settings) -> Keyring:
    return Keyring(decode_master_key(settings.master_key_text()))


async def pathway_load(
    settings: Settings, ids: Sequence[UUID], key: str, *, clients: int, seconds: float, port: int
) -> dict[str, Any]:
    """The pathway query for ``ids`` through the gateway, then the same through the bare endpoint."""
    env = {
        **os.environ,
        "HAVEN_GATEWAY_PORT": str(port),
        "HAVEN_RATE_PER_SECOND": "1000000",
        "HAVEN_RATE_BURST": "1000000",
        # Every client is on loopback: the per-address limit, a flood guard, would cap the load generator itself.
        "HAVEN_ADDRESS_RATE_PER_SECOND": "1000000",
        "HAVEN_ADDRESS_BURST": "1000000",
    }
    log = open(settings.run_dir / "bench-gateway.log", "ab")  # noqa: SIM115  # closed below, after the processes
    # Each server in its own process, on the same uvicorn, HTTP parser and event loop: the ratio compares
    # what GraphQL, consent and audit cost, not who shares a process with the load generator.
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway.app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    bare = subprocess.Popen(
        [sys.executable, "-m", "bench.bare", str(port + 1)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        await wait_until_up(f"http://127.0.0.1:{port}/healthz", f"http://127.0.0.1:{port + 1}/healthz")
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

        async def graphql(session: aiohttp.ClientSession, i: int) -> None:
            body = {"query": PATHWAY, "variables": {"id": str(ids[i % len(ids)])}}
            async with session.post(f"http://127.0.0.1:{port}/graphql", json=body, headers=headers) as response:
                answer = await response.json()
                assert response.status == 200 and not answer.get("errors"), answer

        async def raw(session: aiohttp.ClientSession, i: int) -> None:
            async with session.get(f"http://127.0.0.1:{port + 1}/pathway", params={"id": str(ids[i % len(ids)])}) as r:
                await r.read()
                assert r.status == 200

        await load("warm-up", graphql, clients=4, seconds=2)
        gateway_figures = await load("gateway pathway query", graphql, clients=clients, seconds=seconds)
        bare_figures = await load("bare Starlette + asyncpg", raw, clients=clients, seconds=seconds)
        rss = peak_rss_mb(gateway.pid)
    finally:
        for process in (gateway, bare):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        log.close()
    return {
        "clients": clients,
        "seconds": seconds,
        "gateway": gateway_figures,
        "bare": bare_figures,
        "gateway_to_bare_rps": round(gateway_figures["rps"] / bare_figures["rps"], 3),
        "gateway_peak_rss_mb": rss,
    }
