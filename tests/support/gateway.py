"""Talking to the running gateway as a partner would: GraphQL over HTTP and graphql-transport-ws."""

from __future__ import annotations

import json
import os
from typing import Any

import aiohttp
from gateway.auth import Role, create_key
from gateway.cli import register

from events.directory import Organisation
from services.kernel.db import Pool
from services.kernel.settings import Settings


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


def codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code", "") for e in body.get("errors") or []]
