"""Schema migrations: the kernel's tables, then a service's own ``migrations/*.sql``, in order, once."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from services.kernel.db import Pool, quote_ident

KERNEL_MIGRATIONS = Path(__file__).parent / "migrations"
KEYRING_MIGRATIONS = Path(__file__).parent / "keyring_migrations"
SERVICES_ROOT = Path(__file__).parent.parent


def _sql_files(directory: Path | None) -> list[Path]:
    return sorted(directory.glob("*.sql")) if directory and directory.is_dir() else []


def discover_services(root: Path = SERVICES_ROOT) -> list[tuple[str, Path]]:
    """Every service that owns a schema: ``services/<name>/migrations`` gives schema ``<name>``."""
    return sorted(
        (d.name, d / "migrations")
        for d in root.iterdir()
        if d.is_dir() and d.name != "kernel" and (d / "migrations").is_dir()
    )


def shared_migrations(service_migrations: Path | None) -> list[Path]:
    """Kernel migration sets a service asks for by name in its ``migrations/shared.txt``
    (``provider`` → ``services/kernel/provider_migrations``), so that infra and the service agree."""
    listing = service_migrations / "shared.txt" if service_migrations else None
    if listing is None or not listing.is_file():
        return []
    names = [line.strip() for line in listing.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [Path(__file__).parent / f"{name}_migrations" for name in names]


async def migrate(
    pool: Pool, schema: str, service_migrations: Path | None = None, *, with_outbox: bool = True
) -> list[str]:
    """Create ``schema`` and apply what has not been applied; return the versions applied now.

    On a new database (it needs PostgreSQL, so it is shown, not run; ``tests/integration`` runs it)::

        await migrate(pool, "referrals", Path("services/referrals/migrations"))
        # ['kernel/001_outbox_inbox', 'kernel/002_erased_parked', 'referrals/001_referrals', ...]
    """
    plan: list[tuple[str, Path]] = [(f"kernel/{p.stem}", p) for p in _sql_files(KERNEL_MIGRATIONS) if with_outbox]
    plan += [(f"{d.name}/{p.stem}", p) for d in shared_migrations(service_migrations) for p in _sql_files(d)]
    plan += [(f"{schema}/{p.stem}", p) for p in _sql_files(service_migrations)]
    applied_now: list[str] = []
    ident = quote_ident(schema)
    async with pool.acquire() as conn, conn.transaction():
        # One migrator per schema at a time, even when several replicas start together.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('haven-migrate:' || $1))", schema)
        # Asked first: a service's own role owns its schema but may not create schemas (CREATE ... IF NOT EXISTS
        # still needs that privilege).
        if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
            await conn.execute(f"CREATE SCHEMA {ident}")
        await conn.execute(f"SET LOCAL search_path TO {ident}")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, path in plan:
            if version in done:
                continue
            await conn.execute(path.read_text())
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied_now.append(version)
    return applied_now


async def migrate_all(pool: Pool, services: Iterable[tuple[str, Path]] | None = None) -> dict[str, list[str]]:
    """Migrate the keyring and every discovered service schema; return what each applied."""
    applied = {"keyring": await migrate(pool, "keyring", KEYRING_MIGRATIONS, with_outbox=False)}
    for schema, directory in services if services is not None else discover_services():
        applied[schema] = await migrate(pool, schema, directory)
    return applied


KEYRING_USERS = frozenset(
    {"identification", "referrals", "shelter", "legal_aid", "health", "employment", "statistics", "gateway"}
)
"""The schemas whose processes seal or open survivor data (``tests/unit/test_chart.py`` checks this against what each
service's build asks for: the master key)."""


def role_of(schema: str) -> str:
    """The database role a schema's process connects as, and which owns the schema: ``haven_<schema>``."""
    return f"haven_{schema}"


async def assign_owners(pool: Pool, schemas: Iterable[str], *, create_roles: bool = False) -> dict[str, str]:
    """Least privilege: each schema, and every table, sequence and function in it, owned by its own role, with
    nothing granted to anyone else; the keyring's tables usable only by the roles of ``KEYRING_USERS``.

    A role that does not exist is skipped (in production a DBA creates each, with its password, and gives each
    process its own DSN) unless ``create_roles`` (the local stack: login roles, trusted on loopback). Run by a role
    that may hand objects over (the owner of everything so far, or a superuser). Returns schema → role, or the
    reason it was left alone."""
    done: dict[str, str] = {}
    async with pool.acquire() as conn, conn.transaction():
        for schema in schemas:
            role = role_of(schema)
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                if not create_roles:
                    done[schema] = f"left alone: no role {role}"
                    continue
                await conn.execute(f"CREATE ROLE {quote_ident(role)} LOGIN")
            who, where = quote_ident(role), quote_ident(schema)
            await conn.execute(f"ALTER SCHEMA {where} OWNER TO {who}")
            await conn.execute(f"REVOKE ALL ON SCHEMA {where} FROM PUBLIC")
            for kind, name in await conn.fetch(
                """SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                          ELSE 'TABLE' END, c.oid::regclass::text
                   FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p', 'S', 'v', 'm')
                   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))""",
                schema,
            ):
                await conn.execute(f"ALTER {kind} {name} OWNER TO {who}")
            for (function,) in await conn.fetch(
                "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = $1::regnamespace", schema
            ):
                await conn.execute(f"ALTER FUNCTION {function} OWNER TO {who}")
            done[schema] = role
        users = [quote_ident(role_of(s)) for s in sorted(KEYRING_USERS)
                 if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role_of(s))]  # fmt: skip
        await conn.execute("REVOKE ALL ON SCHEMA keyring FROM PUBLIC")
        await conn.execute("REVOKE ALL ON ALL TABLES IN SCHEMA keyring FROM PUBLIC")
        if users:
            await conn.execute(f"GRANT USAGE ON SCHEMA keyring TO {', '.join(users)}")
            await conn.execute(f"GRANT SELECT, INSERT, DELETE ON ALL TABLES IN SCHEMA keyring TO {', '.join(users)}")
    return done
