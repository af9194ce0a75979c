"""The guard in front of GraphQL: the same rules for HTTP POST, HTTP GET and websocket messages.

In order: a rate limit per client address (before authentication, so random tokens are limited
too), a size limit (per body, per websocket message), one operation per request, the
persisted-query allow-list, authentication, then a rate limit per key. Over a websocket only
subscriptions are served. Buckets live in bounded LRU tables, so no sender can grow them.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth import OidcVerifier, Principal, authenticate, hash_key, looks_like_jwt
from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from services.kernel.db import Pool

PRINCIPAL = "haven.principal"
TOKEN = "haven.token"
"""Where the guard leaves who is asking (and the credential they used) in the ASGI scope."""


def bearer(headers: Any) -> str | None:
    value: str = headers.get("authorization", "")
    return value.removeprefix("Bearer ").strip() or None


class Buckets:
    """Token buckets by key, at most ``capacity`` of them: the least recently used is forgotten first."""

    def __init__(self, rate: float, burst: int, capacity: int = 10_000) -> None:
        self.rate, self.burst, self.capacity = rate, float(burst), capacity
        self._table: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        tokens, stamp = self._table.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        allowed = tokens >= 1
        self._table[key] = (tokens - 1 if allowed else tokens, now)
        while len(self._table) > self.capacity:
            self._table.popitem(last=False)
        return allowed

    def __len__(self) -> int:
        return len(self._table)


class SharedBuckets:
    """Token buckets by API key in PostgreSQL, so every gateway instance draws on the same bucket: a key gets its
    rate however many gateways share its requests. One statement per request, atomic per key (the row lock)."""

    SQL = """
        INSERT INTO gateway.rate_buckets AS b (key_hash, tokens, stamp, allowed)
        VALUES ($1, $3 - 1, clock_timestamp(), true)
        ON CONFLICT (key_hash) DO UPDATE SET (tokens, allowed, stamp) = (
            SELECT CASE WHEN refilled >= 1 THEN refilled - 1 ELSE refilled END, refilled >= 1, clock_timestamp()
            FROM (SELECT least($3, b.tokens + greatest(0, extract(epoch FROM clock_timestamp() - b.stamp)) * $2)
                  AS refilled) r)
        RETURNING b.allowed
    """

    def __init__(self, pool: Pool, rate: float, burst: int) -> None:
        self.pool, self.rate, self.burst = pool, rate, float(burst)

    async def allow(self, key: str) -> bool:
        allowed: bool = await self.pool.fetchval(self.SQL, key, self.rate, self.burst)
        return allowed


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str
    close: int  # the websocket close code that says the same


TOO_MANY = Refusal(429, "RATE_LIMITED", "too many requests; slow down", 4429)
PERSISTED_REQUIRED = Refusal(
    400,
    "PERSISTED_QUERY_REQUIRED",
    "only persisted queries are served: send extensions.persistedQuery.sha256Hash",
    4400,
)


def _too_large(limit: int) -> Refusal:
    return Refusal(413, "REQUEST_TOO_LARGE", f"the request is over {limit} bytes", 4413)


KEY_REVOKED_CHANNEL = "haven_key_revoked"
"""NOTIFY channel a key's revocation is announced on (gateway migration 010), with the key's hash."""


class RecentKeys:
    """The principals of API keys that authenticated in the last ``seconds``, so that most requests cost no query for
    their key. A revoked key is forgotten at once on every gateway (``KEY_REVOKED_CHANNEL``); had that notification
    been lost (a listener reconnecting), it is refused within ``seconds`` all the same. At most ``size`` keys."""

    def __init__(self, seconds: float, size: int = 10_000) -> None:
        self.seconds, self.size = seconds, size
        self._known: dict[str, tuple[Principal, float]] = {}

    def get(self, key_hash: str) -> Principal | None:
        found = self._known.get(key_hash)
        if found is None or time.monotonic() - found[1] >= self.seconds:
            return None
        return found[0]

    def put(self, key_hash: str, who: Principal) -> None:
        if len(self._known) >= self.size:  # the oldest go first
            now = time.monotonic()
            self._known = {k: v for k, v in self._known.items() if now - v[1] < self.seconds}
            while len(self._known) >= self.size:
                del self._known[next(iter(self._known))]
        self._known[key_hash] = (who, time.monotonic())

    def forget(self, _connection: object, _pid: int, _channel: str, key_hash: object) -> None:
        """A NOTIFY listener: the key with this hash was revoked."""
        self._known.pop(str(key_hash), None)


class Guard:
    """ASGI middleware: every rule above, for every way in."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        pool: Pool,
        oidc: OidcVerifier | None,
        max_bytes: int,
        key_rate: float,
        key_burst: int,
        address_rate: float,
        address_burst: int,
        allowed: dict[str, str] | None,
        keys: RecentKeys | None = None,
    ) -> None:
        self.app, self.pool, self.oidc, self.max_bytes, self.allowed = app, pool, oidc, max_bytes, allowed
        self.keys = keys
        self.by_key = SharedBuckets(pool, key_rate, key_burst)  # the same for every gateway instance
        # Before authentication, per address and per instance: a flood must not reach the database.
        self.by_address = Buckets(address_rate, address_burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # ------------------------------------------------------------ shared rules

    def _address(self, scope: Scope) -> str:
        client = scope.get("client")
        return client[0] if client else "-"

    async def _authenticate(self, scope: Scope, token: str | None) -> Principal | None:
        # API keys only: a JWT is verified each time (it carries its own expiry).
        cacheable = token and self.keys is not None and not (self.oidc is not None and looks_like_jwt(token))
        key_hash = hash_key(token) if cacheable and token else None
        who = self.keys.get(key_hash) if self.keys is not None and key_hash else None
        if who is None:
            who = await authenticate(self.pool, token, self.oidc)
            if who is not None and self.keys is not None and key_hash:
                self.keys.put(key_hash, who)
        scope[PRINCIPAL], scope[TOKEN] = who, token if who else None
        return who

    async def _key_allows(self, scope: Scope) -> bool:
        token = scope.get(TOKEN)
        return token is None or await self.by_key.allow(hash_key(token))

    def persisted(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """``request`` with its persisted query swapped in; None if it names none we serve."""
        if self.allowed is None:
            return request
        extensions = request.get("extensions")
        if isinstance(extensions, str):  # GET carries it as JSON text
            try:
                extensions = json.loads(extensions)
            except ValueError:
                return None
        digest = extensions.get("persistedQuery", {}).get("sha256Hash") if isinstance(extensions, dict) else None
        query = self.allowed.get(digest if isinstance(digest, str) else "")
        if query is None or request.get("query") not in (None, "", query):
            return None
        return {**request, "query": query}

    # ------------------------------------------------------------ HTTP

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.by_address.allow(self._address(scope)):
            await self._refuse_http(scope, receive, send, TOO_MANY)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if int(headers.get("content-length") or 0) > self.max_bytes:
            await self._refuse_http(scope, receive, send, _too_large(self.max_bytes))
            return
        # Read the (bounded) body first: a chunked body may not say its length, and a batch must be seen.
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._refuse_http(scope, receive, send, _too_large(self.max_bytes))
                return
        if body.lstrip().startswith(b"["):
            refusal = Refusal(400, "BATCH_NOT_ALLOWED", "send one operation per request", 4400)
            await self._refuse_http(scope, receive, send, refusal)
            return
        if self.allowed is not None and scope["path"].endswith("/graphql"):
            swapped = self._swap_http(scope, body)
            if swapped is None:
                await self._refuse_http(scope, receive, send, PERSISTED_REQUIRED)
                return
            scope, body = swapped
        await self._authenticate(scope, bearer(headers))
        if not await self._key_allows(scope):
            await self._refuse_http(scope, receive, send, TOO_MANY)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _swap_http(self, scope: Scope, body: bytes) -> tuple[Scope, bytes] | None:
        if scope["method"] == "GET":
            params = dict(parse_qsl(scope.get("query_string", b"").decode()))
            swapped = self.persisted(params)
            if swapped is None:
                return None
            return {**scope, "query_string": urlencode(swapped).encode()}, body
        try:
            request = json.loads(body)
        except ValueError:
            return None
        swapped = self.persisted(request) if isinstance(request, dict) else None
        return (scope, json.dumps(swapped).encode()) if swapped is not None else None

    @staticmethod
    async def _refuse_http(scope: Scope, receive: Receive, send: Send, refusal: Refusal) -> None:
        body = {"data": None, "errors": [{"message": refusal.message, "extensions": {"code": refusal.code}}]}
        await JSONResponse(body, status_code=refusal.status)(scope, receive, send)

    # ------------------------------------------------------------ websocket

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.by_address.allow(self._address(scope)):
            await send({"type": "websocket.close", "code": TOO_MANY.close, "reason": TOO_MANY.message})
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        await self._authenticate(scope, bearer(headers))
        guarded = _GuardedSocket(self, scope, receive, send)
        await self.app(scope, guarded.receive, send)


class _GuardedSocket:
    """Applies the guard to each message a websocket client sends."""

    def __init__(self, guard: Guard, scope: Scope, receive: Receive, send: Send) -> None:
        self.guard, self.scope, self._receive, self._send = guard, scope, receive, send

    async def receive(self) -> Message:
        while True:
            message = await self._receive()
            if message["type"] != "websocket.receive":
                return message
            raw: bytes = message["bytes"] if message.get("bytes") is not None else message.get("text", "").encode()
            if len(raw) > self.guard.max_bytes:
                return await self._close(_too_large(self.guard.max_bytes))
            try:
                parsed = json.loads(raw)
            except ValueError:
                return message  # strawberry closes the connection for a message that is not JSON
            if not isinstance(parsed, dict) or parsed.get("type") != "subscribe":
                return message
            if not self.guard.by_address.allow(self.guard._address(self.scope)) or not await self.guard._key_allows(
                self.scope
            ):
                return await self._close(TOO_MANY)
            payload = parsed.get("payload")
            swapped = self.guard.persisted(payload) if isinstance(payload, dict) else None
            if swapped is None:
                await self._error(parsed.get("id"), PERSISTED_REQUIRED.code, PERSISTED_REQUIRED.message)
                continue
            problem = _not_a_subscription(swapped)
            if problem is not None:
                await self._error(parsed.get("id"), "SUBSCRIPTIONS_ONLY", problem)
                continue
            return {"type": "websocket.receive", "text": json.dumps({**parsed, "payload": swapped})}

    async def _close(self, refusal: Refusal) -> Message:
        await self._send({"type": "websocket.close", "code": refusal.close, "reason": refusal.code})
        return {"type": "websocket.disconnect", "code": refusal.close}

    async def _error(self, operation_id: Any, code: str, message: str) -> None:
        error = GraphQLError(message, extensions={"code": code}).formatted
        frame = {"id": str(operation_id), "type": "error", "payload": [error]}
        await self._send({"type": "websocket.send", "text": json.dumps(frame)})


def _not_a_subscription(payload: dict[str, Any]) -> str | None:
    """Why this operation may not run over a websocket, or None if it is a subscription."""
    query = payload.get("query")
    if not isinstance(query, str):
        return "payload.query: required"
    try:
        document = parse(query, max_tokens=2000)
    except GraphQLError as exc:
        return f"payload.query: {exc.message}"
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    name = payload.get("operationName")
    chosen = [o for o in operations if name is None or (o.name and o.name.value == name)]
    if len(chosen) != 1:
        return "payload.operationName: name one operation of the document"
    if chosen[0].operation is not OperationType.SUBSCRIPTION:
        return "only subscriptions are served over a websocket; send queries and mutations over HTTP"
    return None


KeyCheck = Callable[[str], Awaitable[bool]]
