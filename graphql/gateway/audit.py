"""The access audit: every read of survivor data, hash-chained, written before the data is returned.

Rows hold pseudonymous ids and category names only, so the log stays verifiable after an erasure.
``verify`` recomputes the chain: an edited row breaks its own hash, a deleted one its successor's link.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from strawberry.extensions import SchemaExtension

from events.audit import AuditCheckpointed, b64, unb64
from events.envelope import Envelope
from gateway.consent import ConsentScope
from graphql import ExecutionResult, GraphQLError
from services.kernel import outbox
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
    head: str = GENESIS


async def verify(conn: Connection, until: int | None = None) -> Verdict:
    """Walk the chain from the start (up to record ``until``); report the first row that does not fit."""
    prev, count = GENESIS, 0
    async with conn.transaction():
        query = "SELECT * FROM gateway.audit_log WHERE $1::bigint IS NULL OR seq <= $1 ORDER BY seq"
        async for r in conn.cursor(query, until):
            count += 1
            if r["prev_hash"] != prev:
                return Verdict(count, r["seq"], "a record before this one was deleted or changed")
            expected = row_hash(prev, r["at"], r["org_id"], r["role"], r["survivor_id"], list(r["categories"]),
                                r["purpose"])  # fmt: skip
            if r["hash"] != expected:
                return Verdict(count, r["seq"], "this record was edited")
            prev = r["hash"]
    return Verdict(count, None, None, prev)


async def verify_against(conn: Connection, checkpoint: AuditCheckpointed, pinned: bytes | None = None) -> Verdict:
    """Is the audit up to ``checkpoint`` what it was when the checkpoint was signed? ``pinned``: the public key the
    holder trusts (else the one the checkpoint carries, which proves integrity but not origin)."""
    key = Ed25519PublicKey.from_public_bytes(pinned or unb64(checkpoint.public_key))
    try:
        key.verify(unb64(checkpoint.signature), checkpoint.signed())
    except InvalidSignature:
        return Verdict(0, None, "the checkpoint's signature does not verify: it was altered, or signed elsewhere")
    found = await verify(conn, checkpoint.seq)
    if found.problem:
        return found
    if found.rows != checkpoint.records or found.head != checkpoint.head:
        return Verdict(found.rows, checkpoint.seq, f"the audit up to record {checkpoint.seq} is not what was "
                       f"checkpointed ({checkpoint.records} records, head {checkpoint.head[:12]}…): records were "
                       "removed, or the chain was rebuilt")  # fmt: skip
    return found


async def checkpoint(conn: Connection, key: Ed25519PrivateKey, reason: str, at: datetime) -> AuditCheckpointed:
    """Sign the chain's head now, keep it, and publish it (the outbox, in this transaction)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('haven-audit'))")  # no record half-written
        last = await conn.fetchrow("SELECT seq, hash FROM gateway.audit_log ORDER BY seq DESC LIMIT 1")
        records = await conn.fetchval("SELECT count(*) FROM gateway.audit_log")
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        fields = {"seq": last["seq"] if last else 0, "records": records, "head": last["hash"] if last else GENESIS,
                  "at": at, "reason": reason, "public_key": b64(public), "signature": ""}  # fmt: skip
        unsigned = AuditCheckpointed.model_validate(fields)
        signed = unsigned.model_copy(update={"signature": b64(key.sign(unsigned.signed()))})
        await conn.execute("INSERT INTO gateway.audit_checkpoints (at, reason, checkpoint) VALUES ($1, $2, $3)",
                           at, reason, signed.model_dump(mode="json"))  # fmt: skip
        await outbox.write(conn, Envelope.new(signed, source="haven/gateway"))
    return signed


async def checkpoints(pool: Pool, key: Ed25519PrivateKey, every: float, stop: asyncio.Event) -> None:
    """Publish a checkpoint every ``every`` seconds, and after each statistics release (one gateway of many does:
    the last checkpoint's time, under a lock, decides)."""
    while not stop.is_set():
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('haven-audit-checkpoints'))")
            last = await conn.fetchval("SELECT max(at) FROM gateway.audit_checkpoints") or datetime.min.replace(
                tzinfo=UTC
            )
            now = datetime.now(UTC)
            released = await conn.fetchval("SELECT 1 FROM gateway.statistics_releases WHERE released_at > $1 LIMIT 1",
                                           last)  # fmt: skip
            if released or (now - last).total_seconds() >= every:
                await checkpoint(conn, key, "statistics_release" if released else "interval", now)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(every, 5.0))


async def export(conn: Connection, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The reads in [start, end) without survivor data: each survivor as a pseudonym that holds within this export
    only (a keyed hash under a key made for it and forgotten), so reads can be told apart per survivor and never
    joined to anything else. Each record's hashes show where it sits in the chain."""
    key = os.urandom(32)
    rows = await conn.fetch("SELECT * FROM gateway.audit_log WHERE at >= $1 AND at < $2 ORDER BY seq", start, end)
    return [{"seq": r["seq"], "at": r["at"].isoformat(), "org_id": r["org_id"], "role": r["role"],
             "subject": hmac.new(key, r["survivor_id"].bytes, hashlib.sha256).hexdigest()[:16],
             "categories": sorted(r["categories"]), "purpose": r["purpose"], "prev_hash": r["prev_hash"],
             "hash": r["hash"]} for r in rows]  # fmt: skip


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
