"""The access audit: every read of survivor data, hash-chained, written before the data is returned.

Rows hold pseudonymous ids and category names only, so the log stays verifiable after an erasure.
``verify`` recomputes the chain: an edited row breaks its own hash, a deleted one its successor's link.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strawberry.extensions import SchemaExtension

from gateway.consent import ConsentScope
from graphql import ExecutionResult, GraphQLError
from services.kernel.db import Connection, Pool

GENESIS = "0" * 64


def row_hash(
    prev: str, at: datetime, org: str, role: str, survivor: Any, categories: Sequence[str], purpose: str
) -> str:
    body = json.dumps([prev, at.isoformat(), org, role, str(survivor), sorted(categories), purpose])
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One audit row before it is chained: a survivor and purpose read in one request."""

    at: datetime
    org_id: str
    role: str
    survivor_id: Any
    categories: list[str]
    purpose: str


def entries(scope: ConsentScope) -> list[Entry]:
    p = scope.principal
    return [Entry(scope.at, p.org_id, p.role, survivor, sorted(categories), purpose)
            for (survivor, purpose), categories in sorted(scope.shown.items(), key=str)]  # fmt: skip


async def record(conn: Connection, entries: Sequence[Entry]) -> None:
    """Append the entries in one transaction, chained after the last row (one writer at a time)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('haven-audit'))")
        prev = await conn.fetchval("SELECT hash FROM gateway.audit_log ORDER BY seq DESC LIMIT 1") or GENESIS
        rows = []
        for e in entries:
            digest = row_hash(prev, e.at, e.org_id, e.role, e.survivor_id, e.categories, e.purpose)
            rows.append((e.at, e.org_id, e.role, e.survivor_id, e.categories, e.purpose, prev, digest))
            prev = digest
        await conn.executemany(
            "INSERT INTO gateway.audit_log (at, org_id, role, survivor_id, categories, purpose, prev_hash, hash)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            rows,
        )


class AuditWriter:
    """Group commit for the audit: requests that finish while a write is under way go in the next one.

    Each request still waits until its own rows are committed before its response leaves; under load
    one transaction (one advisory lock, one chain read) carries the rows of many requests.
    """

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self._waiting: list[tuple[list[Entry], asyncio.Future[None]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def append(self, batch: list[Entry]) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((batch, done))
        if self._writing is None:
            self._writing = asyncio.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        try:
            while self._waiting:
                taken, self._waiting = self._waiting, []
                try:
                    async with self.pool.acquire() as conn:
                        await record(conn, [e for batch, _ in taken for e in batch])
                except Exception as exc:
                    for _, done in taken:
                        if not done.done():  # a waiter may have been cancelled (its client went away)
                            done.set_exception(exc)
                else:
                    for _, done in taken:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._writing = None


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
            await context["audit"].append(entries(scope))
        except Exception:
            result = self.execution_context.result
            if isinstance(result, ExecutionResult):
                result.data = None
                result.errors = [GraphQLError("the access audit could not be written, so nothing is returned",
                                              extensions={"code": "AUDIT_UNAVAILABLE"})]  # fmt: skip
