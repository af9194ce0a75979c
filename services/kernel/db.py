"""The asyncpg pool, with JSON codecs, for one service's schema."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from services.kernel.settings import Settings

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
else:  # only ever used in annotations
    Pool = Connection = object


async def _init_connection(conn: Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _as_left(_conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Nothing more to undo on release than asyncpg does itself (roll back an open transaction, drop listeners)."""


async def create_pool(settings: Settings, *, schema: str | None = None, min_size: int = 1, reset: bool = True) -> Pool:
    """Open a pool whose connections decode JSON and, given a schema, look there first.

    ``reset=False`` (the services' own pools) skips the statement asyncpg sends each time a connection goes back
    (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``), a round trip per use: Haven's services set no
    session state (the search path comes with the connection) and release the locks and LISTENs they take where
    they take them.

    Each service opens one at start (it needs PostgreSQL, so it is shown, not run)::

        pool = await create_pool(Settings(), schema="referrals")
    """
    server_settings = {"application_name": f"haven-{schema or 'kernel'}"}
    if schema:
        server_settings["search_path"] = f"{schema},public"
    pool = await asyncpg.create_pool(
        settings.dsn,
        min_size=min_size,
        max_size=settings.pg_pool_max,
        init=_init_connection,
        server_settings=server_settings,
        reset=None if reset else _as_left,  # None: asyncpg's own reset
    )
    assert pool is not None  # create_pool returns None only when awaited lazily
    return pool


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (schema names come from code, never from users).

    >>> quote_ident('referrals')
    '"referrals"'
    """
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain identifier: {name!r}")
    return '"' + name + '"'


CONNECTION_LOST = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.InternalClientError,
                   asyncpg.exceptions.OperatorInterventionError)  # fmt: skip
"""What asyncpg raises when the server went away (stopped, restarted, the network cut) mid-conversation."""


Listener = Callable[[Any, int, str, Any], None]
"""A NOTIFY callback, as asyncpg calls it: (connection, sender's pid, channel, payload)."""


class Notifications:
    """One LISTEN connection shared by a process's components (relays, the gateway's wakeups and key revocations,
    the webhook sender, consent's expiry task): PostgreSQL wakes every listening backend of the database for each
    NOTIFY, so a process listens once, however many services it runs.

    Components ``add`` their channel and callback before ``run`` starts. ``run`` is restarted by
    ``lifecycle.reconnecting`` when the database goes away; it listens again to everything added and then calls
    every callback once with no payload, for whatever was announced while nobody listened."""

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Listener]] = {}
        self.listening = asyncio.Event()

    def add(self, channel: str, callback: Listener) -> None:
        self._callbacks.setdefault(channel, []).append(callback)

    def _dispatch(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        for callback in self._callbacks.get(channel, ()):
            callback(conn, pid, channel, payload)

    async def run(self, pool: Pool, stop: asyncio.Event) -> None:
        async with pool.acquire() as conn:
            lost = asyncio.Event()

            def ended(_conn: object) -> None:
                lost.set()

            conn.add_termination_listener(ended)
            for channel in self._callbacks:
                await conn.add_listener(channel, self._dispatch)
            self.listening.set()
            for channel in self._callbacks:  # what was announced before (or between) our LISTENs
                self._dispatch(conn, 0, channel, None)
            try:
                waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())]
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
                if lost.is_set() and not stop.is_set():
                    raise ConnectionResetError("the shared LISTEN connection was lost")
            finally:
                self.listening.clear()
                conn.remove_termination_listener(ended)
                for channel in self._callbacks:
                    await unlisten(conn, channel, self._dispatch)


async def unlisten(conn: Connection, channel: str, callback: Any) -> None:
    """Remove a NOTIFY listener, if the connection still lives: on a connection the server dropped (a database
    stopping sends ``AdminShutdown``), UNLISTEN cannot run and there is nothing left to remove."""
    if conn.is_closed():
        return
    with contextlib.suppress(*CONNECTION_LOST):
        await conn.remove_listener(channel, callback)
