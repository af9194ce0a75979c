"""Growth: the pathway query and the closed loop at 10,000 and at 1,000,000 survivors.

The population is bulk-loaded where the pathway query reads it: the gateway's read model and the
keyring. Every survivor is real to the query: its own data key, identity and contact sealed with it,
consent for the benchmark's caseworker, and 2 referrals of 5 transitions each. The queries draw
survivors uniformly from the whole population, so a larger population means colder caches and
deeper indexes, as it would in production. The services' own tables hold what the runs create.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from bench import pipeline
from bench.gateway import ORG, keyring, pathway_load
from bench.progress import progress
from events.consent import Category, Directive, Grantee
from events.identification import Contact, Identity
from services.kernel.crypto import Keyring
from services.kernel.db import Pool, create_pool
from services.kernel.settings import Settings

BATCH = 10_000


async def populate(pool: Pool, ring: Keyring, have: int, upto: int, label: str) -> list[UUID]:
    """Add survivors ``have``..``upto``; return their ids."""
    now = datetime.now(UTC)
    identity = Identity(given_name="Growth", family_name="Bench").model_dump_json().encode()
    contact = Contact(phone="+44 20 7946 0000").model_dump_json().encode()
    directive = Directive(
        directive_id=uuid4(), version=1, grantee=Grantee(org_id=ORG), recorded_by="bench-hotline",
        categories=frozenset({Category.IDENTITY, Category.CONTACT, Category.CASE_STATUS}),
        purposes=frozenset({"service_delivery"}), valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=365),
    ).model_dump(mode="json")  # fmt: skip
    ids: list[UUID] = []
    began = time.monotonic()
    writing: asyncio.Task[None] | None = None
    for start in range(have, upto, BATCH):
        rows: list[tuple[Any, ...]] = []
        for _ in range(min(BATCH, upto - start)):
            survivor, directive_id = uuid4(), uuid4()
            key, wrapped = ring.mint(survivor)
            profile = {"identity": key.seal(Category.IDENTITY, identity).model_dump(),
                       "contact": key.seal(Category.CONTACT, contact).model_dump()}  # fmt: skip
            rows.append((survivor, key.kid, wrapped, profile, directive_id,
                         {**directive, "directive_id": str(directive_id)}))  # fmt: skip
        if writing is not None:
            await writing  # the database stores one batch while Python seals the next
        writing = asyncio.create_task(_store(pool, rows, now))
        ids.extend(r[0] for r in rows)
        rate = (start + len(rows) - have) / max(time.monotonic() - began, 1e-9)
        progress(start + len(rows), upto, f"{label} ({rate:,.0f}/s)")
    if writing is not None:
        await writing
    async with pool.acquire() as conn:
        tables = ("keyring.data_keys", "gateway.survivors", "gateway.consent_directives", "gateway.referrals",
                  "gateway.transitions")  # fmt: skip
        for done, table in enumerate(tables):
            progress(done, len(tables), f"vacuum and analyze after the load: {table}")
            await conn.execute(f"VACUUM (ANALYZE) {table}")
        progress(len(tables), len(tables), "vacuum and analyze after the load")
        # Settled, as an operator leaves a database after a bulk load: otherwise the query is measured
        # while autovacuum and the checkpoint the load set off are still writing.
        await conn.execute("CHECKPOINT")
    return ids


async def _store(pool: Pool, rows: list[tuple[Any, ...]], now: datetime) -> None:
    batch = [r[0] for r in rows]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO keyring.data_keys (survivor_id, kid, wrapped_key)"
            " SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[])",
            batch, [r[1] for r in rows], [r[2] for r in rows],
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO gateway.survivors (survivor_id, outcome, is_minor, screener_org, profile, identified_at)"
            " SELECT s, 'probable_victim', false, 'bench-hotline', p, $3"
            " FROM unnest($1::uuid[], $2::jsonb[]) AS x(s, p)",
            batch, [r[3] for r in rows], now,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO gateway.consent_directives (survivor_id, directive_id, version, directive)"
            " SELECT s, d, 1, j FROM unnest($1::uuid[], $2::uuid[], $3::jsonb[]) AS x(s, d, j)",
            batch, [r[4] for r in rows], [r[5] for r in rows],
        )  # fmt: skip
        await conn.execute(
            """
            WITH r AS (
                INSERT INTO gateway.referrals (referral_id, survivor_id, referrer_org, recipient_org, referral_type,
                                               urgency, status, deadline, created_at, updated_at)
                SELECT gen_random_uuid(), s, 'bench-hotline', CASE WHEN n = 1 THEN $2 ELSE 'other-shelter' END,
                       'emergency_shelter', 'emergency', 'completed', $3, $3, $3
                  FROM unnest($1::uuid[]) AS s, generate_series(1, 2) AS n
                RETURNING referral_id, survivor_id)
            INSERT INTO gateway.transitions (event_id, referral_id, survivor_id, status, actor_org, reason, at)
            SELECT gen_random_uuid(), r.referral_id, r.survivor_id, t.st, $2, NULL, $3 + t.i * interval '1 minute'
              FROM r, unnest(array['requested', 'received', 'accepted', 'in_progress', 'completed'])
                      WITH ORDINALITY AS t(st, i)
            """,
            batch, ORG, now,
        )  # fmt: skip


async def measure(
    *, sizes: tuple[int, ...], clients: int, seconds: float, loops: int, pipeline_seconds: float, port: int
) -> dict[str, Any]:
    from gateway.auth import Role, create_key  # graphql/ is on sys.path for make bench

    settings = Settings()
    pool = await create_pool(settings, min_size=2)
    ring = keyring(settings)
    population: list[UUID] = []
    results: dict[str, Any] = {}
    try:
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO gateway.organisations (org_id, name, org_type) VALUES ($1, 'Bench', 'shelter')"
                " ON CONFLICT DO NOTHING",
                ORG,
            )
            key = await create_key(conn, ORG, Role.CASEWORKER, "bench-growth")
        for size in sizes:
            started = time.monotonic()
            population += await populate(pool, ring, len(population), size, f"population to {size:,}")
            loaded = round(time.monotonic() - started, 1)
            sample = random.sample(population, min(len(population), 100_000))
            query = await pathway_load(settings, sample, key, clients=clients, seconds=seconds, port=port)
            closed = await pipeline.measure_pipeline_only(loops=loops, seconds=pipeline_seconds, port=port + 10)
            results[str(size)] = {"survivors": size, "load_seconds": loaded, "pathway": query, "pipeline": closed}
    finally:
        await pool.close()
    small, large = (results[str(s)] for s in (min(sizes), max(sizes)))
    results["p99_large_to_small"] = round(
        large["pathway"]["gateway"]["p99_ms"] / small["pathway"]["gateway"]["p99_ms"], 2
    )
    return results
