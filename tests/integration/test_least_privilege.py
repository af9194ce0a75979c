"""Least privilege in the database, on the real stack: each process's role owns its own schema and nothing else.
A compromised shelter service cannot read a referral's ledger, forge another service's events through its outbox,
or open a survivor's data without being one of the processes that seal or open it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.kernel.migrations import KEYRING_USERS, discover_services, role_of
from services.kernel.settings import Settings

SCHEMAS = [name for name, _ in discover_services()] + ["gateway"]


@pytest.fixture
async def as_role(settings: Settings) -> AsyncIterator[dict[str, asyncpg.Connection]]:
    connections = {schema: await asyncpg.connect(host="127.0.0.1", port=settings.pg_port, user=role_of(schema),
                                                 database=settings.pg_database) for schema in SCHEMAS}  # fmt: skip
    yield connections
    for conn in connections.values():
        await conn.close()


async def test_each_role_works_in_its_own_schema_and_is_refused_in_every_other(
    as_role: dict[str, asyncpg.Connection],
) -> None:
    refused = []
    for mine, conn in as_role.items():
        async with conn.transaction():
            # Its own: read and write, and its migrations table (it migrates itself at start).
            await conn.fetchval(f'SELECT count(*) FROM "{mine}".outbox')
            await conn.fetchval(f'SELECT count(*) FROM "{mine}".schema_migrations')
        for other in SCHEMAS:
            if other == mine:
                continue
            for sql in (f'SELECT count(*) FROM "{other}".inbox',
                        f"""INSERT INTO "{other}".outbox (event_id, event_type, topic, key, headers, payload)
                            VALUES (gen_random_uuid(), 'forged', 'haven.referrals', 'k', '[]', 'x')"""):  # fmt: skip
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(sql)
                refused.append((mine, other))
    assert len(refused) == 2 * len(SCHEMAS) * (len(SCHEMAS) - 1)


async def test_only_the_roles_that_seal_or_open_reach_the_keyring(as_role: dict[str, asyncpg.Connection]) -> None:
    assert "consent" not in KEYRING_USERS, "the consent service decides on coded categories; it opens nothing"
    for schema, conn in as_role.items():
        if schema in KEYRING_USERS:
            assert await conn.fetchval("SELECT count(*) FROM keyring.data_keys") >= 0
        else:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval("SELECT count(*) FROM keyring.data_keys")


async def test_a_role_cannot_create_schemas_or_take_another_role(as_role: dict[str, asyncpg.Connection]) -> None:
    conn = as_role["shelter"]
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute("CREATE SCHEMA shelter_side_door")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute(f"SET ROLE {role_of('referrals')}")
