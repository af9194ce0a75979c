"""Talking to the running gateway as a partner would: GraphQL over HTTP and graphql-transport-ws."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
from gateway.api.inputs import snake, variables
from gateway.auth import Role, create_key
from gateway.cli import register
from strawberry.utils.str_converters import to_camel_case

from events.base import EventData
from events.consent import Directive
from events.directory import Organisation
from events.identification import ScreeningIntake
from events.referrals import PARTNER_MOVES, RequestReferral
from services.kernel.db import Pool
from services.kernel.settings import Settings
from tests.support.intakes import intake_data
from tests.support.observe import eventually
from tests.support.processes import ServiceProcess


def url(settings: Settings, scheme: str = "http") -> str:
    """The test gateway's endpoint (its port comes from HAVEN_GATEWAY_PORT, as the gateway's does)."""
    return f"{scheme}://127.0.0.1:{os.environ['HAVEN_GATEWAY_PORT']}/graphql"


async def partner(pool: Pool, org: Organisation, role: Role) -> str:
    """Register ``org`` through the gateway's outbox and give it an API key in ``role``."""
    await register(pool, org)
    async with pool.acquire() as conn:
        return await create_key(conn, org.org_id, role, "test")


async def call(
    settings: Settings,
    key: str | None,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    raw: Any = None,
    endpoint: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """POST a GraphQL request; return the status and the decoded body."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = raw if raw is not None else json.dumps({"query": query, "variables": variables or {}})
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            endpoint or url(settings), data=body, headers={**headers, "Content-Type": "application/json"}
        ) as response,
    ):
        return response.status, await response.json(content_type=None)


SCREEN = ("mutation($s: ScreeningInput!, $w: Int) { recordScreening(screening: $s, wait: $w) {"
          " commandId subjectId outcome { status code field message } } }")  # fmt: skip


def screening(**changes: Any) -> dict[str, Any]:
    """A realistic screening as the ``ScreeningInput`` variables a partner sends (``intake_data``'s overrides)."""
    data = intake_data(**changes)
    data.pop("screener_org")
    return variables(ScreeningIntake, data)


GRANT = ("mutation($s: ID!, $d: DirectiveInput!, $w: Int, $k: String) { grantConsent(survivorId: $s, directive: $d,"
         " wait: $w, idempotencyKey: $k) { commandId outcome { status code field message } } }")  # fmt: skip

REFER = ("mutation($r: ReferralInput!, $w: Int, $k: String) { requestReferral(referral: $r, wait: $w,"
         " idempotencyKey: $k) { commandId referralId outcome { status code field message } } }")  # fmt: skip


def referral(survivor: UUID | str, recipient_org: str, **more: Any) -> dict[str, Any]:
    """A ``ReferralInput`` (an emergency shelter referral unless ``more`` says otherwise), from contract values."""
    fields = {"survivor_id": str(survivor), "recipient_org": recipient_org, "referral_type": "emergency_shelter",
              "urgency": "emergency", **more}  # fmt: skip
    return variables(RequestReferral, fields)


MOVE = ("mutation($id: ID!, $s: ID!, $m: ReferralMoveInput!, $w: Int) { moveReferral(referralId: $id, survivorId: $s,"
        " move: $m, wait: $w) { commandId outcome { status code field message } } }")  # fmt: skip

ACT = ("mutation($a: ProviderActionInput!, $w: Int) { providerAction(action: $a, wait: $w) {"
       " commandId outcome { status code field message } } }")  # fmt: skip


def move(name: str, **fields: Any) -> dict[str, Any]:
    """A ``ReferralMoveInput``: the move ``name`` (``reject``, ``complete`` …) with its contract fields."""
    return {to_camel_case(name): variables(PARTNER_MOVES[name], fields)}


def action(model: type[EventData], **fields: Any) -> dict[str, Any]:
    """A ``ProviderActionInput``: one provider command (``AcceptPlacement`` …) with its contract fields."""
    return {to_camel_case(snake(model.__name__)): variables(model, fields)}


def codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code", "") for e in body.get("errors") or []]


async def screened(settings: Settings, db: Pool, key: str, **changes: Any) -> UUID:
    """A screening recorded through the gateway; returns the survivor id once the gateway projected it."""
    status, body = await call(settings, key, SCREEN, {"s": screening(**changes)})
    assert status == 200
    assert not body.get("errors"), body
    survivor = UUID(body["data"]["recordScreening"]["subjectId"])

    async def projected() -> bool:
        return bool(await db.fetchval("SELECT 1 FROM gateway.survivors WHERE survivor_id = $1", survivor))

    await eventually(projected)
    return survivor


async def grant(settings: Settings, db: Pool, key: str, survivor: UUID, **directive: Any) -> str:
    """Consent through the gateway; returns the directive id once the gateway's read model has it."""
    # Counted before sending: a projection faster than this query would otherwise never be seen.
    before = await db.fetchval("SELECT count(*) FROM gateway.consent_directives WHERE survivor_id = $1", survivor)
    _status, body = await call(
        settings,
        key,
        GRANT,
        {"s": str(survivor), "d": variables(Directive, directive)},
    )
    assert not body.get("errors"), body

    async def projected() -> bool:
        now = await db.fetchval("SELECT count(*) FROM gateway.consent_directives WHERE survivor_id = $1", survivor)
        return bool(now > before)

    await eventually(projected)
    return str(
        await db.fetchval(
            "SELECT directive_id FROM gateway.consent_directives WHERE survivor_id = $1"
            " ORDER BY directive->>'valid_from' DESC LIMIT 1",
            survivor,
        )
    )


def window(**extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "valid_from": (now - timedelta(minutes=5)).isoformat(),
        "valid_until": (now + timedelta(days=30)).isoformat(),
        "purposes": ["service_delivery"],
        "obtained": {"method": "written", "language": "tl", "interpreter": True},
        **extra,
    }


def persisted(query: str) -> dict[str, Any]:
    """The ``extensions`` that name ``query`` by its hash, as a persisted-query client sends them."""
    return {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}}


async def production_gateway(
    directory: Path, port_offset: int, queries: list[str], **env: str
) -> tuple[ServiceProcess, str]:
    """A second gateway in production mode serving only ``queries``; returns it (started) and its endpoint."""
    allowed = directory / "persisted.json"
    allowed.write_text(json.dumps({hashlib.sha256(q.encode()).hexdigest(): q for q in queries}))
    port = int(os.environ["HAVEN_GATEWAY_PORT"]) + port_offset
    settings = {"HAVEN_GATEWAY_PORT": str(port), "HAVEN_PRODUCTION": "true", "HAVEN_PERSISTED_QUERIES": str(allowed)}
    process = await asyncio.to_thread(ServiceProcess("gateway", directory, env={**settings, **env}).start)
    return process, f"http://127.0.0.1:{port}/graphql"
