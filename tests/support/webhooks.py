"""A partner's webhook endpoint for tests: an HTTP server on loopback that keeps what it receives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Receiver:
    """Where deliveries land (body and headers, as sent), and the URL to register."""

    url: str = ""
    received: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)


@asynccontextmanager
async def webhook_receiver(*, down_for: int = 0) -> AsyncIterator[Receiver]:
    """A receiver on 127.0.0.1 that answers 503 to its first ``down_for`` deliveries (the partner's system is
    down), then 204 and keeps each one."""
    receiver, failures_left = Receiver(), down_for

    async def endpoint(request: web.Request) -> web.Response:
        nonlocal failures_left
        body = await request.read()
        if failures_left:
            failures_left -= 1
            return web.Response(status=503)
        receiver.received.append((body, dict(request.headers)))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/haven", endpoint)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # aiohttp keeps the bound socket here
    receiver.url = f"http://127.0.0.1:{port}/haven"
    try:
        yield receiver
    finally:
        await runner.cleanup()
