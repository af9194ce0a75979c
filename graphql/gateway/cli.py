"""``haven``: organisations and API keys, the demo seed, projection replay, and audit verification.

bin/haven org create harbour-shelter "Harbour Shelter" shelter
bin/haven key create harbour-shelter caseworker
bin/haven seed-demo
bin/haven seed-survivors 150    synthetic survivors, screened and consented through the API, for the demo
bin/haven replay
bin/haven rewind statistics --types needs.assessed    apply those events again from the start (service stopped)
bin/haven migrate               every schema, the keyring and the gateway's (a chart's pre-upgrade Job)
bin/haven topics apply          the catalog's topics, with this deployment's durability (a chart's Job)
bin/haven audit verify [--against CHECKPOINT]
bin/haven audit checkpoint      the chain's head, signed, for an oversight body to keep
bin/haven audit export --period 2026-Q4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import uvloop
from aiokafka import TopicPartition

from events.audit import AuditCheckpointed, unb64
from events.catalog import TOPICS
from events.consent import OrgType
from events.directory import Organisation, RegisterOrganisation
from events.envelope import Envelope
from events.needs import ReferralType
from events.shelter import ConfigureShelter, UnitType
from events.statistics import dates
from gateway import audit, demo, projection
from gateway.app import MIGRATIONS, GatewaySettings
from gateway.auth import Role, RoleNotAllowed, create_key, create_organisation
from services.kernel import host, kafka, outbox, rewind, topics
from services.kernel.consumer import IdempotentConsumer
from services.kernel.crypto import Keyring, decode_master_key
from services.kernel.db import Pool, create_pool
from services.kernel.launcher import DEMO_BANNER
from services.kernel.migrations import assign_owners, discover_services, migrate, migrate_all

DEMO: list[tuple[str, str, OrgType, set[ReferralType], Role]] = [
    ("city-hotline", "City Anti-Trafficking Hotline", OrgType.HOTLINE, {ReferralType.PSYCHOSOCIAL}, Role.INTAKE),
    ("harbour-shelter", "Harbour Shelter", OrgType.SHELTER, {ReferralType.EMERGENCY_SHELTER}, Role.CASEWORKER),
    ("hillside-shelter", "Hillside Shelter", OrgType.SHELTER, {ReferralType.EMERGENCY_SHELTER}, Role.CASEWORKER),
    ("justice-legal-clinic", "Justice Legal Clinic", OrgType.LEGAL_CLINIC,
     {ReferralType.LEGAL_AID, ReferralType.IMMIGRATION_LEGAL}, Role.CASEWORKER),
    ("riverside-clinic", "Riverside Health Clinic", OrgType.HEALTH_PROVIDER,
     {ReferralType.MEDICAL, ReferralType.MENTAL_HEALTH, ReferralType.PSYCHOSOCIAL}, Role.CASEWORKER),
    ("new-start-employment", "New Start Employment", OrgType.EMPLOYMENT_PROGRAM, {ReferralType.EMPLOYMENT},
     Role.CASEWORKER),
    ("national-rapporteur", "National Rapporteur on Trafficking", OrgType.OVERSIGHT_BODY, set(), Role.OVERSIGHT),
]  # fmt: skip


async def _pool(settings: GatewaySettings) -> Pool:
    pool = await create_pool(settings, schema="gateway")
    await migrate(pool, "gateway", MIGRATIONS)
    return pool


async def register(pool: Pool, org: Organisation) -> None:
    """Known to the gateway now; to the directory (and every service) through the outbox."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL search_path TO gateway")  # the gateway's outbox, whatever pool this is
        await create_organisation(conn, org.org_id, org.name, org.org_type)
        await outbox.write(conn, Envelope.new(RegisterOrganisation(organisation=org), source="haven/cli"))


def demo_banner(settings: GatewaySettings) -> str:
    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    return (f"haven ▸ console  {base}/console (sign in with a key below)\n"
            f"haven ▸ GraphQL  {base}/graphql (header Authorization: Bearer <key>)\n"
            "haven ▸ demo partners and their API keys:\n")  # fmt: skip


async def seed_demo(settings: GatewaySettings) -> list[tuple[str, str, str]]:
    """The demo partners, their shelters' beds, and one key each (new keys on every run)."""
    pool = await _pool(settings)
    keys = []
    try:
        for org_id, name, kind, services, role in DEMO:
            org = Organisation(org_id=org_id, name=name, org_type=kind, services=frozenset(services),
                               jurisdictions=frozenset({"GB"}), languages=frozenset({"en"}))  # fmt: skip
            await register(pool, org)
            async with pool.acquire() as conn, conn.transaction():
                if kind is OrgType.SHELTER:
                    beds = ConfigureShelter(org_id=org_id, beds={UnitType.ADULT_WOMEN: 4, UnitType.FAMILIES: 2})
                    await outbox.write(conn, Envelope.new(beds, source="haven/cli"))
                keys.append((org_id, role.value, await create_key(conn, org_id, role, "demo")))
    finally:
        await pool.close()
    return keys


async def replay(settings: GatewaySettings, workers: int = os.cpu_count() or 1) -> int:
    """Rebuild the read model from the beginning of every topic; return how many events were projected.

    ``workers`` processes share the partitions: worker ``i`` takes partition ``p`` of every topic where
    ``p % workers == i``, so each partition, and every topic's partition for one key, stays in one process
    and in order, as the live projection's consumer group keeps it.
    """
    if workers < 1:
        raise ValueError(f"a replay needs at least one worker, not {workers}")
    pool = await _pool(settings)
    try:
        async with pool.acquire() as conn, conn.transaction():
            for table in ("survivors", "consent_directives", "referrals", "transitions", "service_records"):
                await conn.execute(f"TRUNCATE gateway.{table}")
            await conn.execute("DELETE FROM gateway.inbox WHERE consumer = 'gateway'")
    finally:
        await pool.close()
    ends = await _end_offsets(settings)
    shares = [{tp: end for tp, end in ends.items() if tp.partition % workers == i} for i in range(workers)]
    shares = [share for share in shares if share]
    total, started = sum(ends.values()), time.monotonic()
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no event loop or sockets inherited
    done, handled = spawn.Array("q", len(shares)), spawn.Array("q", len(shares))
    # Daemons: a replay that is interrupted takes its workers with it.
    processes = [spawn.Process(target=_replay_worker, args=(share, i, done, handled), name=f"replay-{i}", daemon=True)
                 for i, share in enumerate(shares)]  # fmt: skip
    for process in processes:
        process.start()
    while any(p.is_alive() for p in processes):
        print(f"\rreplaying: {sum(done[:])}/{total} messages", end="", file=sys.stderr, flush=True)
        await asyncio.sleep(0.2)
    failed = [p.name for p in processes if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"replay worker(s) {', '.join(failed)} failed; the read model is incomplete, run it again")
    print(f"\rreplayed {total} messages in {time.monotonic() - started:.1f}s with {len(processes)} worker(s)",
          file=sys.stderr)  # fmt: skip
    return sum(handled[:])


async def _end_offsets(settings: GatewaySettings) -> dict[TopicPartition, int]:
    """Where every partition of every event topic ends now: what a replay must reach."""
    names = [t.name for t in TOPICS if not t.name.endswith(".commands")]
    admin = kafka.admin(settings)
    reader = kafka.consumer(settings, f"gateway-replay-{uuid4().hex[:8]}", [])
    await admin.start()
    await reader.start()
    try:
        described = await admin.describe_topics(names)
        partitions = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
        ends: dict[TopicPartition, int] = await reader.end_offsets(partitions)
        return ends
    finally:
        await reader.stop()
        await admin.close()


def _replay_worker(share: dict[TopicPartition, int], slot: int, done: Any, handled: Any) -> None:
    """One replay process: project ``share``'s partitions from their beginning to their ends."""
    uvloop.run(_replay_share(GatewaySettings(), share, slot, done, handled))


async def _replay_share(
    settings: GatewaySettings, share: dict[TopicPartition, int], slot: int, done: Any, handled: Any
) -> None:
    pool = await create_pool(settings, schema="gateway")
    try:
        reader = kafka.consumer(settings, f"gateway-replay-{uuid4().hex[:8]}", [], max_records=10_000)
        reader.assign(list(share))
        # Same inbox name as the live projection: whichever sees an event first, it takes effect once.
        projector = IdempotentConsumer(
            name="gateway", pool=pool, consumer=reader, dead_letters=kafka.producer(settings),
            handlers=projection.handlers(), batch_handlers=projection.batch_handlers(),
        )  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(projector.run(stop))
        started = asyncio.create_task(projector.started.wait())
        await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        while not task.done():
            done[slot] = await _replayed(reader, share)
            if done[slot] >= sum(share.values()):
                stop.set()  # the batch in hand is finished before run() returns
                break
            await asyncio.sleep(0.1)
        await task
        handled[slot] = projector.stats.handled
    finally:
        await pool.close()


async def _replayed(reader: Any, ends: dict[TopicPartition, int]) -> int:
    return sum([min(int(await reader.position(tp)), end) for tp, end in ends.items()])


async def _run(args: Any) -> int:
    settings = GatewaySettings()
    if args.command == "seed-demo":
        keys = await seed_demo(settings)
        # make run prints this once every service is ready, last, where a newcomer sees it without scrolling.
        saved = settings.run_dir / DEMO_BANNER
        saved.touch(mode=0o600)
        saved.write_text(demo_banner(settings) + "".join(f"  {o:<22} {r:<11} {k}\n" for o, r, k in keys))
        if args.quiet:
            print(f"haven ▸ {len(keys)} demo partners, a new key each")
        else:
            print(saved.read_text(), end="")
        return 0
    if args.command == "seed-survivors":
        pool = await _pool(settings)
        try:
            async with pool.acquire() as conn:
                key = await create_key(conn, "city-hotline", Role.INTAKE, "demo survivors")
        finally:
            await pool.close()
        endpoint = f"http://127.0.0.1:{settings.gateway_port}/graphql"
        screened, counted = await demo.seed(endpoint, key, args.count)
        print(f"{screened} survivors screened through {endpoint}; {counted} consented to statistics")
        return 0
    if args.command == "replay":
        await replay(settings, args.workers)
        return 0
    if args.command == "rewind":
        return await _rewind(settings, args)
    if args.command == "topics":
        try:
            done = await topics.apply(settings)
        except topics.TopicRefused as exc:
            print(f"haven: {exc}", file=sys.stderr)
            return 2
        print(
            f"topics on {settings.kafka_bootstrap_servers}: {len(done)} changed (replication "
            f"{settings.topic_replication_factor}, min.insync.replicas {settings.topic_min_insync_replicas})"
        )
        for line in done:
            print(f"  {line}")
        return 0
    if args.command == "migrate":
        pool = await create_pool(settings)
        try:
            schemas = [*discover_services(), ("gateway", MIGRATIONS)]
            applied = await migrate_all(pool, schemas)
            owners = await assign_owners(pool, [name for name, _ in schemas])
        finally:
            await pool.close()
        print(f"migrations: {sum(map(len, applied.values()))} applied to {len(applied)} schemas")
        for schema, versions in applied.items():
            for version in versions:
                print(f"  {schema}: {version}")
        for schema, role in owners.items():
            print(f"  {schema}: owned by {role}" if role.startswith("haven_") else f"  {schema}: {role}")
        return 0
    pool = await _pool(settings)
    try:
        async with pool.acquire() as conn:
            if args.command == "org":
                org = Organisation(
                    org_id=args.org_id, name=args.name, org_type=args.org_type, services=frozenset(args.services),
                    jurisdictions=frozenset(args.jurisdictions),
                )  # fmt: skip
                await register(pool, org)
                print(f"organisation {org.org_id} created")
            elif args.command == "key":
                try:
                    print(await create_key(conn, args.org_id, Role(args.role), args.label))
                except (LookupError, RoleNotAllowed) as exc:
                    print(f"haven: {exc}", file=sys.stderr)
                    return 2
            elif args.command == "audit":
                return await _audit(conn, settings, args)
    finally:
        await pool.close()
    return 0


async def _audit(conn: Any, settings: GatewaySettings, args: argparse.Namespace) -> int:
    if args.action == "checkpoint":
        keyring = Keyring(decode_master_key(settings.master_key_text()))
        made = await audit.checkpoint(conn, keyring.checkpoint_key(), "on_request", datetime.now(UTC))
        print(made.model_dump_json(indent=2))
        return 0
    if args.action == "export":
        start, end = dates(args.period)
        for line in await audit.export(conn, start, end):
            print(json.dumps(line))
        return 0
    if args.against:
        held = AuditCheckpointed.model_validate_json(await asyncio.to_thread(Path(args.against).read_text))
        pinned = unb64(args.public_key) if args.public_key else None
        verdict = await audit.verify_against(conn, held, pinned)
        if verdict.problem is None:
            print(f"audit unchanged up to the checkpoint of {held.at.isoformat()}: {verdict.rows} records, "
                  f"head {held.head[:16]}…")  # fmt: skip
            return 0
    else:
        verdict = await audit.verify(conn)
        if verdict.broken_at is None:
            print(f"audit log intact: {verdict.rows} records")
            return 0
    print(f"audit log BROKEN at record {verdict.broken_at}: {verdict.problem}")
    return 1


async def _rewind(settings: GatewaySettings, args: argparse.Namespace) -> int:
    """``haven rewind SERVICE``: its inbox forgets the types, its group starts again at the beginning."""
    ((spec, _own),) = host.build([args.service], settings)
    pool = await create_pool(settings)
    try:
        done = await rewind.rewind(
            settings, spec, args.group or args.service, pool, args.types, wait=args.wait,
            progress=lambda line: print(f"\r{line}", end="", file=sys.stderr, flush=True),
        )  # fmt: skip
    except (ValueError, rewind.NotRewound) as exc:
        print(f"\nhaven: {exc}", file=sys.stderr)
        return 2
    finally:
        await pool.close()
    print(f"{args.service}: {done.forgotten} events to apply again; {done.partitions} partitions from the start. "
          f"Start {args.service}: it applies them on its way to where it was.")  # fmt: skip
    return 0


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="haven", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    org = sub.add_parser("org", help="create an organisation").add_subparsers(dest="action", required=True)
    create = org.add_parser("create")
    create.add_argument("org_id")
    create.add_argument("name")
    create.add_argument("org_type", choices=[t.value for t in OrgType])
    create.add_argument("--services", nargs="*", default=[], choices=[t.value for t in ReferralType])
    create.add_argument("--jurisdictions", nargs="*", default=["GB"])
    key = sub.add_parser("key", help="create an API key").add_subparsers(dest="action", required=True)
    key_create = key.add_parser("create")
    key_create.add_argument("org_id")
    key_create.add_argument("role", choices=[r.value for r in Role])
    key_create.add_argument("--label")
    seeding = sub.add_parser("seed-demo", help="demo partners and a key for each")
    seeding.add_argument("--quiet", action="store_true", help="save the keys for make run instead of printing them")
    survivors = sub.add_parser("seed-survivors", help="synthetic survivors through the API (make run is up)")
    survivors.add_argument("count", type=_at_least_one)
    replaying = sub.add_parser("replay", help="rebuild the read model from the topics")
    replaying.add_argument("--workers", type=_at_least_one, default=os.cpu_count() or 1,
                           help="processes sharing the partitions (default: one per core)")  # fmt: skip
    rewinding = sub.add_parser(
        "rewind", help="a stopped service applies event types again, from the start of its topics (a new measure)"
    )
    rewinding.add_argument("service", choices=sorted(set(host.known()) - {"gateway"}))
    rewinding.add_argument("--types", nargs="*", default=[], metavar="TYPE",
                           help="event types (needs.assessed …); default: every type the service handles")  # fmt: skip
    rewinding.add_argument("--group", help="its consumer group: the service's name (default), or haven-all when "
                                           "make run runs every service in one process")  # fmt: skip
    rewinding.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the group to empty")
    sub.add_parser("migrate", help="apply every schema's migrations (idempotent)")
    sub.add_parser("topics", help="the catalog's topics on the cluster").add_subparsers(
        dest="action", required=True
    ).add_parser("apply", help="create or update them (HAVEN_TOPIC_* settings); never lowers a partition count")
    auditing = sub.add_parser("audit", help="audit log").add_subparsers(dest="action", required=True)
    verifying = auditing.add_parser("verify", help="recompute the hash chain (against a checkpoint you kept)")
    verifying.add_argument("--against", metavar="CHECKPOINT", help="a checkpoint's JSON (haven audit checkpoint)")
    verifying.add_argument("--public-key", help="the checkpoint key you pinned (base64url); else the checkpoint's")
    auditing.add_parser("checkpoint", help="sign the chain's head now; print it (keep it away from this operator)")
    exporting = auditing.add_parser("export", help="the reads of a period, without survivor data (JSON lines)")
    exporting.add_argument("--period", required=True, help="2026, 2026-Q4 or 2026-11")
    return asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
