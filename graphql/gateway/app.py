"""The gateway process: Starlette + strawberry on uvicorn (loopback by default), its projection
consumer and its outbox relay. ``python -m gateway.app`` (with ``graphql/`` on the path)."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import uvicorn
import uvloop
from pydantic import Field
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.dataloader import DataLoader

from events.catalog import TOPICS
from gateway import projection
from gateway.audit import AuditWriter
from gateway.auth import OidcVerifier, authenticate
from gateway.consent import ConsentScope
from gateway.schema import build_schema
from services.kernel import kafka
from services.kernel.consumer import IdempotentConsumer
from services.kernel.crypto import DataKey, Keyring, SurvivorKeyMissing, decode_master_key
from services.kernel.db import Pool, create_pool
from services.kernel.lifecycle import run_until_stopped
from services.kernel.migrations import migrate
from services.kernel.relay import OutboxRelay
from services.kernel.settings import Settings

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")


class GatewaySettings(Settings):
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=28000, ge=1, le=65535)
    production: bool = Field(default=False, description="No introspection, no field suggestions.")
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    rate_per_second: float = Field(default=50.0, gt=0, description="Sustained requests per API key.")
    rate_burst: int = Field(default=100, ge=1)
    oidc_issuer: str = Field(default="", description="Accept OIDC bearer JWTs from this issuer (with the two below).")
    oidc_audience: str = ""
    oidc_jwks_url: str = ""
    persisted_queries: Path | None = Field(
        default=None, description="A JSON file {sha256: query}; when set, only these queries are served."
    )


def _bearer(headers: Any) -> str | None:
    value: str = headers.get("authorization", "")
    return value.removeprefix("Bearer ").strip() or None


class Wakeup:
    """Wakes every subscription loop on a NOTIFY from the projection, instead of each one polling."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def armed(self) -> asyncio.Event:
        """The event the next notification sets; take it before looking, then wait on it."""
        return self._event

    def notify(self, *_: object) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def listen(self, pool: Pool, stop: asyncio.Event) -> None:
        async with pool.acquire() as conn:
            await conn.add_listener(projection.INBOX_CHANNEL, self.notify)
            try:
                await stop.wait()
            finally:
                await conn.remove_listener(projection.INBOX_CHANNEL, self.notify)


class HavenGraphQL(GraphQL[dict[str, Any], None]):
    def __init__(
        self, pool: Pool, keyring: Keyring, wakeup: Wakeup, oidc: OidcVerifier | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.pool = pool
        self.keyring = keyring
        self.oidc = oidc
        self.audit = AuditWriter(pool)
        self.wakeup = wakeup

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            who = await authenticate(conn, _bearer(request.headers), self.oidc)
        pool, keyring = self.pool, self.keyring

        async def load_keys(ids: list[UUID]) -> Sequence[DataKey | None]:
            found: list[DataKey | None] = []
            async with pool.acquire() as conn:
                for survivor in ids:
                    try:
                        found.append(await keyring.get(conn, survivor))
                    except SurvivorKeyMissing:
                        found.append(None)
            return found

        def grouped(sql: str, key: str) -> DataLoader[UUID, list[Any]]:
            """One query for every id asked for in this request, rows grouped back by ``key``."""

            async def load(ids: list[UUID]) -> Sequence[list[Any]]:
                by: dict[UUID, list[Any]] = defaultdict(list)
                for r in await pool.fetch(sql, ids):
                    by[r[key]].append(r)
                return [by[i] for i in ids]

            return DataLoader(load)

        return {
            "request": request,
            "principal": who,
            "pool": pool,
            "keyring": keyring,
            "audit": self.audit,
            "wakeup": self.wakeup,
            "consent": ConsentScope(pool, who) if who else None,
            "keys": DataLoader(load_keys),
            "records": grouped(
                "SELECT * FROM gateway.service_records WHERE survivor_id = ANY($1::uuid[]) ORDER BY updated_at",
                "survivor_id",
            ),
        }


class Guard:
    """Before GraphQL sees a request: a body size limit and a token-bucket rate limit per API key."""

    def __init__(self, app: ASGIApp, settings: GatewaySettings) -> None:
        self.app = app
        self.settings = settings
        self.buckets: dict[str, tuple[float, float]] = {}
        self.allowed: dict[str, str] | None = None
        if settings.persisted_queries is not None:
            self.allowed = json.loads(settings.persisted_queries.read_text())

    def _allow(self, key: str) -> bool:
        now = time.monotonic()
        tokens, stamp = self.buckets.get(key, (float(self.settings.rate_burst), now))
        tokens = min(float(self.settings.rate_burst), tokens + (now - stamp) * self.settings.rate_per_second)
        if tokens < 1:
            self.buckets[key] = (tokens, now)
            return False
        self.buckets[key] = (tokens - 1, now)
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if int(headers.get("content-length") or 0) > self.settings.max_body_bytes:
            await self._refuse(scope, receive, send, 413, "REQUEST_TOO_LARGE",
                               f"the body is over {self.settings.max_body_bytes} bytes")  # fmt: skip
            return
        if not self._allow(_bearer(headers) or scope["client"][0]):
            await self._refuse(scope, receive, send, 429, "RATE_LIMITED", "too many requests for this key; slow down")
            return
        # Read the (bounded) body first: a chunked body may not say its length, and a batch must be seen.
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.settings.max_body_bytes:
                await self._refuse(scope, receive, send, 413, "REQUEST_TOO_LARGE",
                                   f"the body is over {self.settings.max_body_bytes} bytes")  # fmt: skip
                return
        if body.lstrip().startswith(b"["):
            await self._refuse(scope, receive, send, 400, "BATCH_NOT_ALLOWED", "send one operation per request")
            return
        if self.allowed is not None and scope["method"] == "POST":
            swapped = self._persisted(body)
            if swapped is None:
                hint = "only persisted queries are served: send extensions.persistedQuery.sha256Hash"
                await self._refuse(scope, receive, send, 400, "PERSISTED_QUERY_REQUIRED", hint)
                return
            body = swapped
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _persisted(self, body: bytes) -> bytes | None:
        """The request with its persisted query swapped in, or None if it names none we know."""
        assert self.allowed is not None
        try:
            request = json.loads(body)
            digest = request.get("extensions", {}).get("persistedQuery", {}).get("sha256Hash")
        except (ValueError, AttributeError):
            return None
        query = self.allowed.get(digest or "")
        if query is None or request.get("query") not in (None, query):
            return None
        return json.dumps({**request, "query": query}).encode()

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str) -> None:
        body = {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}
        await JSONResponse(body, status_code=status)(scope, receive, send)


def create_app(settings: GatewaySettings, pool: Pool, keyring: Keyring, wakeup: Wakeup) -> Starlette:
    oidc = None
    if settings.oidc_issuer:
        oidc = OidcVerifier(settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url)
    graphql = HavenGraphQL(
        pool, keyring, wakeup, oidc, schema=build_schema(production=settings.production),
        graphql_ide=None if settings.production else "graphiql",
    )  # fmt: skip

    async def health(_: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[Route("/graphql", graphql, methods=["GET", "POST"]), WebSocketRoute("/graphql", graphql),
                Route("/healthz", health)],
        middleware=[Middleware(Guard, settings=settings)],
    )  # fmt: skip


async def serve(settings: GatewaySettings, stop: asyncio.Event | None = None) -> None:
    pool = await create_pool(settings, schema="gateway", min_size=2)
    try:
        await migrate(pool, "gateway", MIGRATIONS)
        keyring = Keyring(decode_master_key(settings.master_key_text()))
        wakeup = Wakeup()
        app = create_app(settings, pool, keyring, wakeup)
        config = uvicorn.Config(app, host=settings.gateway_host, port=settings.gateway_port, log_level="warning",
                                lifespan="off")  # fmt: skip
        server = uvicorn.Server(config)

        async def http(stop: asyncio.Event) -> None:
            # _serve, not serve: serve() takes over SIGTERM/SIGINT, which run_until_stopped already owns.
            task = asyncio.create_task(server._serve())
            while not server.started and not task.done():  # noqa: ASYNC110  # uvicorn offers no event for it
                await asyncio.sleep(0.02)
            if task.done():
                await task  # it could not bind: say why
            log.info("gateway: serving http://%s:%d/graphql", settings.gateway_host, settings.gateway_port)
            await stop.wait()
            server.should_exit = True
            await task

        consumer = IdempotentConsumer(
            name="gateway", pool=pool, dead_letters=kafka.producer(settings), handlers=projection.handlers(),
            consumer=kafka.consumer(settings, "gateway", [t.name for t in TOPICS if not t.name.endswith(".commands")]),
        )  # fmt: skip
        relay = OutboxRelay(pool, "gateway", kafka.producer(settings))
        await run_until_stopped(http, consumer.run, relay.run, functools.partial(wakeup.listen, pool), stop=stop)
    finally:
        await pool.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvloop.run(serve(GatewaySettings()))


if __name__ == "__main__":
    main()
