"""The access audit: every read of survivor data, hash-chained, written before the data is returned.

Rows hold pseudonymous ids and category names only, so the log stays verifiable after an erasure.
``verify`` recomputes the chain: an edited row breaks its own hash, a deleted one its successor's link.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strawberry.extensions import SchemaExtension

from gateway.consent import ConsentScope
from graphql import ExecutionResult, GraphQLError
from services.kernel.db import Connection

GENESIS = "0" * 64


def row_hash(
    prev: str, at: datetime, org: str, role: str, survivor: Any, categories: Sequence[str], purpose: str
) -> str:
    body = json.dumps([prev, at.isoformat(), org, role, str(survivor), sorted(categories), purpose])
    return hashlib.sha256(body.encode()).hexdigest()


async def record(conn: Connection, scope: ConsentScope) -> None:
    """Append one row per survivor and purpose read in this request, in one transaction, chained."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('haven-audit'))")
        prev = await conn.fetchval("SELECT hash FROM gateway.audit_log ORDER BY seq DESC LIMIT 1") or GENESIS
        for (survivor, purpose), categories in sorted(scope.shown.items(), key=str):
            cats = sorted(categories)
            p = scope.principal
            digest = row_hash(prev, scope.at, p.org_id, p.role, survivor, cats, purpose)
            await conn.execute(
                "INSERT INTO gateway.audit_log (at, org_id, role, survivor_id, categories, purpose, prev_hash, hash)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                scope.at, p.org_id, p.role, survivor, cats, purpose, prev, digest,
            )  # fmt: skip
            prev = digest


@dataclass(frozen=True)
class Verdict:
    rows: int
    broken_at: int | None
    problem: str | None


async def verify(conn: Connection) -> Verdict:
    """Walk the chain from the start; report the first row that does not fit."""
    prev, count = GENESIS, 0
    async with conn.transaction():
        async for r in conn.cursor("SELECT * FROM gateway.audit_log ORDER BY seq"):
            count += 1
            if r["prev_hash"] != prev:
                return Verdict(count, r["seq"], "a record before this one was deleted or changed")
            expected = row_hash(prev, r["at"], r["org_id"], r["role"], r["survivor_id"], list(r["categories"]),
                                r["purpose"])  # fmt: skip
            if r["hash"] != expected:
                return Verdict(count, r["seq"], "this record was edited")
            prev = r["hash"]
    return Verdict(count, None, None)


class AuditReads(SchemaExtension):
    """After execution, before the response: write the audit; if that fails, return nothing."""

    async def on_execute(self) -> AsyncIterator[None]:
        yield
        context = self.execution_context.context
        scope: ConsentScope | None = context.get("consent") if isinstance(context, dict) else None
        if scope is None or not scope.shown:
            return
        try:
            async with scope.pool.acquire() as conn:
                await record(conn, scope)
        except Exception:
            result = self.execution_context.result
            if isinstance(result, ExecutionResult):
                result.data = None
                result.errors = [GraphQLError("the access audit could not be written, so nothing is returned",
                                              extensions={"code": "AUDIT_UNAVAILABLE"})]  # fmt: skip
