"""A service's probes on the real stack: ``/readyz`` turns unready within 5 s of its database going away and ready
again when it returns, with no restart. The database "goes away" behind a TCP proxy of this test's own, so the
shared PostgreSQL keeps serving every other test."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from infra import stack
from services.kernel.settings import Settings
from tests.support.processes import ServiceProcess


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Outage:
    """A TCP proxy to PostgreSQL that can be cut (listener closed, every connection dropped) and restored."""

    def __init__(self, upstream: int) -> None:
        self.upstream, self.port = upstream, free_port()
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            client_w.close()
            return
        self.pipes |= {client_w, server_w}
        await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))

    async def up(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)

    async def down(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.pipes:
            writer.transport.abort()
        self.pipes.clear()
        await self.server.wait_closed()


@contextlib.asynccontextmanager
async def outage(settings: Settings) -> AsyncIterator[Outage]:
    proxy = Outage(settings.pg_port)
    await proxy.up()
    try:
        yield proxy
    finally:
        if proxy.server is not None and proxy.server.is_serving():
            await proxy.down()


async def probe(port: int, path: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
        http.get(f"http://127.0.0.1:{port}{path}") as answer,
    ):
        return answer.status, await answer.json()


async def until(port: int, status: int, limit: float) -> tuple[float, dict[str, Any]]:
    """Seconds until /readyz answers ``status`` (probing every 100 ms, as a tight probe would), and its body."""
    began = time.monotonic()
    while True:
        try:
            found, body = await probe(port, "/readyz")
        except aiohttp.ClientConnectorError:  # still starting: the probe port is not bound yet
            found, body = 0, {}
        if found == status:
            return time.monotonic() - began, body
        assert time.monotonic() - began < limit, (status, found, body)
        await asyncio.sleep(0.1)


async def test_readiness_follows_the_database_without_a_restart(settings: Settings, tmp_path: Path) -> None:
    health = free_port()
    async with outage(settings) as proxy:
        service = ServiceProcess("employment", tmp_path, env={"HAVEN_PG_PORT": str(proxy.port),
                                                               "HAVEN_HEALTH_PORT": str(health)})  # fmt: skip
        await asyncio.to_thread(service.start)
        try:
            await until(health, 200, 30)
            pid = service.proc.pid if service.proc else None
            await proxy.down()
            unready_after, body = await until(health, 503, 10)
            await asyncio.sleep(3)  # an outage that lasts: the relay and the consumer wait, the process stays up
            held, _ = await probe(health, "/readyz")
            alive = await probe(health, "/healthz")
            await proxy.up()
            ready_after, _ = await until(health, 200, 30)
            assert service.proc is not None
            still_running = service.proc.poll() is None and service.proc.pid == pid
        finally:
            code = await asyncio.to_thread(service.stop)

    assert unready_after < 5, f"unready {unready_after:.1f}s after the database went away"
    assert set(body["problems"]) == {"database"}, body
    assert held == 503, "unready for as long as the database is away"
    assert alive == (200, {"service": "employment", "alive": True}), "alive all along"
    assert ready_after < 30
    assert still_running, "ready again without a restart"
    assert code == 0, "and it still stops cleanly"


async def test_readiness_follows_postgresql_itself_stopping_and_starting_again(
    settings: Settings, tmp_path: Path
) -> None:
    """The acceptance as the issue words it: the real server stopped (pg_ctl stop -m fast), then started again."""
    health = free_port()
    service = ServiceProcess("shelter", tmp_path, env={"HAVEN_HEALTH_PORT": str(health)})
    await asyncio.to_thread(service.start)
    stopped = False
    try:
        await until(health, 200, 30)
        pid = service.proc.pid if service.proc else None
        await asyncio.to_thread(stack.stop_postgres, settings)
        stopped = True
        unready_after, body = await until(health, 503, 10)
        await asyncio.to_thread(stack.start_postgres, settings)
        stopped = False
        ready_after, _ = await until(health, 200, 30)
        assert service.proc is not None
        still_running = service.proc.poll() is None and service.proc.pid == pid
    finally:
        if stopped:  # whatever happened, the rest of the suite gets its database back
            await asyncio.to_thread(stack.start_postgres, settings)
        code = await asyncio.to_thread(service.stop)

    print(f"readiness: unready {unready_after:.2f}s after PostgreSQL stopped, ready {ready_after:.2f}s after its start")
    assert unready_after < 5, f"unready {unready_after:.1f}s after PostgreSQL stopped"
    assert "database" in body["problems"], body
    assert ready_after < 30
    assert still_running, "ready again without a restart"
    assert code == 0
