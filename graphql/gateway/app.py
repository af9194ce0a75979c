"""The gateway process: Starlette + strawberry on uvicorn (loopback by default), its projection
consumer and its outbox relay. ``python -m gateway.app``."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import uvicorn
from pydantic import Field
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.dataloader import DataLoader
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UNSET, UnsetType

from events.catalog import TOPICS
from gateway import audit, projection, webhooks
from gateway.api.base import Context
from gateway.api.pathway import REFERRALS
from gateway.api.statistics import StatisticsExport
from gateway.audit import AuditWriter
from gateway.auth import OidcVerifier, Principal, authenticate
from gateway.consent import ConsentScope
from gateway.console.app import Console, ConsoleOidc
from gateway.fhir import TaskEndpoints
from gateway.guard import KEY_REVOKED_CHANNEL, PRINCIPAL, TOKEN, Guard, RecentKeys, bearer
from gateway.schema import build_schema
from services.kernel import metrics, service
from services.kernel.crypto import DataKey, Keyring, decode_master_key
from services.kernel.db import Listener, Pool
from services.kernel.service import ServiceSpec
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
    address_rate_per_second: float = Field(
        default=200.0, gt=0, description="Sustained requests per client address, before authentication."
    )
    address_burst: int = Field(default=400, ge=1)
    webhooks_allow_loopback: bool = Field(
        default=False, description="Accept http://127.0.0.1 webhook endpoints (local stacks only); otherwise https."
    )
    key_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="How long a key that authenticated is trusted without a query. A revocation is announced to every "
        "gateway at once (NOTIFY); this bounds it should that notice be lost. 0: a query per request.",
    )
    key_recheck_seconds: float = Field(
        default=30.0, gt=0, le=30, description="How often an open subscription re-checks that its key still holds."
    )
    audit_checkpoint_seconds: float = Field(
        default=3600.0, gt=0, description="How often the access audit's chain head is signed and published to "
        "haven.audit (and after each statistics release), for an oversight body to keep."
    )  # fmt: skip
    oidc_issuer: str = Field(default="", description="Accept OIDC bearer JWTs from this issuer (with the two below).")
    oidc_audience: str = ""
    oidc_jwks_url: str = ""
    oidc_authorize_url: str = Field(default="", description="The console signs people in here (code flow, PKCE).")
    oidc_token_url: str = ""
    oidc_client_id: str = Field(default="", description="The console's client id; its ID tokens' audience.")
    persisted_queries: Path | None = Field(
        default=None, description="A JSON file {sha256: query}; when set, only these queries are served."
    )


class KeyWatch:
    """Whether a credential still holds, asked by long-lived subscriptions: at most one query per
    credential per ``interval`` seconds, however many subscriptions ask (they share the check in flight)."""

    def __init__(self, pool: Pool, oidc: OidcVerifier | None, interval: float) -> None:
        self.pool, self.oidc, self.interval = pool, oidc, interval
        self._checks: dict[str, tuple[asyncio.Future[bool], float]] = {}

    async def valid(self, token: str) -> bool:
        now = time.monotonic()
        known = self._checks.get(token)
        if known is None or now - known[1] >= self.interval:
            # Forget what nobody asked about lately: the table holds only credentials in use.
            self._checks = {t: c for t, c in self._checks.items() if now - c[1] < 2 * self.interval}
            known = (asyncio.ensure_future(self._check(token)), now)
            self._checks[token] = known
        return await asyncio.shield(known[0])

    async def _check(self, token: str) -> bool:
        return await authenticate(self.pool, token, self.oidc) is not None


class Wakeup:
    """Wakes every waiting loop (subscriptions, mutations that wait for their outcome) on a NOTIFY from the
    projection, instead of each one polling: one listening connection for the whole process."""

    CHANNELS = (projection.INBOX_CHANNEL, projection.OUTCOMES_CHANNEL, projection.MOVES_CHANNEL)

    def __init__(self, keys: RecentKeys | None = None) -> None:
        self._events = {channel: asyncio.Event() for channel in self.CHANNELS}
        self.keys = keys  # told of revoked keys on the same connection

    def armed(self, channel: str = projection.INBOX_CHANNEL) -> asyncio.Event:
        """The event the next notification on ``channel`` sets; take it before looking, then wait on it."""
        return self._events[channel]

    def notify(self, _connection: object, _pid: int, channel: str, _payload: object) -> None:
        self._events[channel].set()
        self._events[channel] = asyncio.Event()

    def listening(self) -> list[tuple[str, Listener]]:
        """What it hears on the process's LISTEN connection (``ServiceSpec.listening``)."""
        heard: list[tuple[str, Listener]] = [(channel, self.notify) for channel in self.CHANNELS]
        if self.keys is not None:
            heard.append((KEY_REVOKED_CHANNEL, self.keys.forget))
        return heard


class HavenGraphQL(GraphQL[Context, None]):
    def __init__(
        self, pool: Pool, keyring: Keyring, wakeup: Wakeup, key_watch: KeyWatch, care_grace: timedelta,
        oidc: OidcVerifier | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.pool = pool
        self.keyring = keyring
        self.oidc = oidc
        self.audit = AuditWriter(pool)
        self.wakeup = wakeup
        self.key_watch = key_watch
        self.care_grace = care_grace
        self.webhooks_allow_loopback = False

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        who: Principal | None = request.scope.get(PRINCIPAL)  # the guard authenticated the request
        pool, keyring = self.pool, self.keyring

        async def load_keys(ids: list[UUID]) -> Sequence[DataKey | None]:
            """Every survivor's data key asked for in this request, in one query (None once erased)."""
            rows = await pool.fetch(
                "SELECT survivor_id, kid, wrapped_key FROM keyring.data_keys WHERE survivor_id = ANY($1::uuid[])", ids
            )
            keys = {r["survivor_id"]: keyring.unwrap(r["survivor_id"], r["kid"], r["wrapped_key"]) for r in rows}
            return [keys.get(i) for i in ids]

        async def load_referrals(ids: list[UUID]) -> Sequence[Any]:
            """Referrals by id (a referral's parent), every one asked for in this request in one query."""
            rows = await pool.fetch(f"{REFERRALS} WHERE r.referral_id = ANY($1::uuid[])", ids)
            by_id = {r["referral_id"]: r for r in rows}
            return [by_id.get(i) for i in ids]

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
            "token": request.scope.get(TOKEN),
            "pool": pool,
            "keyring": keyring,
            "audit": self.audit,
            "wakeup": self.wakeup,
            "key_watch": self.key_watch,
            "care_grace": self.care_grace,
            "webhooks_allow_loopback": self.webhooks_allow_loopback,
            "consent": ConsentScope(pool, who) if who else None,
            "keys": DataLoader(load_keys),
            "referrals": DataLoader(load_referrals),
            "records": grouped(
                "SELECT * FROM gateway.service_records WHERE survivor_id = ANY($1::uuid[]) ORDER BY updated_at",
                "survivor_id",
            ),
        }

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """A browser cannot set headers on a websocket: it may send its key in ``connection_init``
        as ``{"authorization": "Bearer <key>"}`` (or ``{"apiKey": "<key>"}``)."""
        params: dict[str, Any] = context.get("connection_params") or {}
        token = params.get("apiKey") or bearer({"authorization": params.get("authorization", "")})
        if context["principal"] is None and isinstance(token, str) and token:
            who = await authenticate(self.pool, token, self.oidc)
            if who is None:
                raise ConnectionRejectionError({"code": "UNAUTHENTICATED"})
            context["principal"], context["token"], context["consent"] = who, token, ConsentScope(self.pool, who)
            context["request"].scope[TOKEN] = token  # the guard limits this socket's messages by its key from now on
        unset: UnsetType = UNSET
        return unset


class Timed:
    """ASGI middleware: each HTTP request's duration (``http.server.request.duration``) by method, route template
    (``/fhir/Task/{id}``, never the id itself) and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.HTTP_DURATION.record(
                time.perf_counter() - started,
                {"http.request.method": scope["method"], "http.route": route, "http.response.status_code": status},
            )


def create_app(settings: GatewaySettings, pool: Pool, keyring: Keyring, wakeup: Wakeup) -> Starlette:
    oidc = None
    if settings.oidc_issuer:
        oidc = OidcVerifier(settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url)
    graphql = HavenGraphQL(
        pool, keyring, wakeup, KeyWatch(pool, oidc, settings.key_recheck_seconds), settings.care_grace, oidc,
        schema=build_schema(production=settings.production), graphql_ide=None if settings.production else "graphiql",
    )  # fmt: skip
    graphql.webhooks_allow_loopback = settings.webhooks_allow_loopback
    allowed = json.loads(settings.persisted_queries.read_text()) if settings.persisted_queries else None

    async def health(_: Request) -> Response:
        return JSONResponse({"ok": True})

    guard = Middleware(
        Guard, pool=pool, oidc=oidc, max_bytes=settings.max_body_bytes, key_rate=settings.rate_per_second,
        key_burst=settings.rate_burst, address_rate=settings.address_rate_per_second,
        address_burst=settings.address_burst, allowed=allowed, keys=wakeup.keys,
    )  # fmt: skip
    tasks = TaskEndpoints(pool, graphql.audit)
    console = Console(graphql, pool, ConsoleOidc.of(settings))
    return Starlette(
        routes=[Route("/graphql", graphql, methods=["GET", "POST"]), WebSocketRoute("/graphql", graphql),
                Route("/fhir/Task/{id}", tasks.read), Route("/fhir/Task", tasks.search), Route("/healthz", health),
                Route("/statistics/{id}.csv", StatisticsExport(pool).csv),
                *console.routes()],
        # gzip for weak connections (server-sent events are never compressed: they must flow as they come)
        middleware=[Middleware(Timed), guard, Middleware(GZipMiddleware, minimum_size=512)],
    )  # fmt: skip


def build(settings: Settings) -> ServiceSpec:
    """The gateway as a service: its schema and read model, the projection consuming every event topic, and — as its
    background — the HTTP server, the NOTIFY wakeups and the webhook sender. ``services.kernel.host`` runs it beside
    the services (``--services all``) or alone (``--services gateway``)."""
    own = settings if isinstance(settings, GatewaySettings) else GatewaySettings(
        pg_user=settings.pg_user, kafka_username=settings.kafka_username, health_port=settings.health_port
    )  # fmt: skip
    keyring = Keyring(decode_master_key(own.master_key_text()))
    wakeup = Wakeup(RecentKeys(own.key_cache_seconds) if own.key_cache_seconds > 0 else None)

    async def http(pool: Pool, stop: asyncio.Event) -> None:
        app = create_app(own, pool, keyring, wakeup)
        config = uvicorn.Config(app, host=own.gateway_host, port=own.gateway_port, log_level="warning",
                                lifespan="off")  # fmt: skip
        server = uvicorn.Server(config)
        # _serve, not serve: serve() takes over SIGTERM/SIGINT, which run_until_stopped already owns.
        task = asyncio.create_task(server._serve())
        while not server.started and not task.done():  # noqa: ASYNC110  # uvicorn offers no event for it
            await asyncio.sleep(0.02)
        if task.done():
            await task  # it could not bind: say why
        log.info("gateway: serving http://%s:%d/graphql", own.gateway_host, own.gateway_port)
        await stop.wait()
        server.should_exit = True
        await task

    sender = webhooks.Sender()
    signing = keyring.checkpoint_key()

    async def audit_checkpoints(pool: Pool, stop: asyncio.Event) -> None:
        await audit.checkpoints(pool, signing, own.audit_checkpoint_seconds, stop)

    return ServiceSpec(
        name="gateway",
        migrations=MIGRATIONS,
        topics=[t.name for t in TOPICS if not t.name.endswith(".commands")],
        handlers=projection.handlers(),
        batch_handlers=projection.batch_handlers(live=True),
        background=[http, sender.run, audit_checkpoints],
        listening=[*wakeup.listening(), (webhooks.CHANNEL, sender.wake)],
        remember_erasures=False,  # the projection keeps its own erased_survivors
    )


def main() -> None:
    service.main(build)


if __name__ == "__main__":
    main()
