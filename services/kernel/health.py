"""Each process's health on a small port of its own: ``/healthz`` (alive), ``/readyz`` (can do its work), and
``/metrics`` for Prometheus.

Ready means the database answers and the Kafka cluster answers, each within a second or two; the answer names
what is missing, so an orchestrator's probe and a person with curl read the same thing. A service whose database
goes away turns unready at the next probe and ready again when it comes back, without a restart: the relay and
the consumer wait and retry meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.kernel import metrics

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[object]]


class Health:
    def __init__(self, name: str, checks: dict[str, Check], timeout: float = 1.5) -> None:
        self.name, self.checks, self.timeout = name, checks, timeout

    async def problems(self) -> dict[str, str]:
        """What is not ready, by check; empty when all is well."""

        async def one(check: Check) -> str | None:
            try:
                await asyncio.wait_for(check(), self.timeout)
            except TimeoutError:
                return "no answer within the time allowed"
            except Exception as exc:  # any failure of a dependency is unreadiness, said in words
                return f"{type(exc).__name__}: {exc}"[:200]
            return None

        found = await asyncio.gather(*(one(c) for c in self.checks.values()))
        return {name: p for name, p in zip(self.checks, found, strict=True) if p}

    async def _alive(self, _: web.Request) -> web.Response:
        return web.json_response({"service": self.name, "alive": True})

    async def _ready(self, _: web.Request) -> web.Response:
        problems = await self.problems()
        body = {"service": self.name, "ready": not problems, "problems": problems}
        return web.Response(text=json.dumps(body), status=503 if problems else 200, content_type="application/json")

    async def _metrics(self, _: web.Request) -> web.Response:
        await metrics.sample()
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def serve(self, host: str, port: int, stop: asyncio.Event) -> None:
        """Answer probes, and Prometheus at ``/metrics``, on ``host:port`` until ``stop``."""
        app = web.Application()
        app.router.add_get("/healthz", self._alive)
        app.router.add_get("/readyz", self._ready)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        log.info("%s: health on http://%s:%d/healthz and /readyz", self.name, host, port)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
