"""The access ledger and the audit chain."""

from __future__ import annotations

from datetime import datetime

import strawberry

from events.audit import AuditCheckpointed
from events.consent import Category
from events.consent import Purpose as PurposeEnum
from events.statistics import dates
from gateway import audit
from gateway.api.base import Info, Purpose, fail, principal, require_member, survivor_uuid
from gateway.auth import Role


@strawberry.type(description="One read of the survivor's data: who, in which role, which categories, why, when.")
class AccessRecord:
    org_id: str
    role: Role
    categories: list[Category]
    purpose: Purpose
    at: datetime


@strawberry.type
class AuditChain:
    records: int
    intact: bool
    broken_at: int | None
    problem: str | None


@strawberry.type(description="The audit's chain head, signed: keep it; `haven audit verify --against` it later.")
class AuditCheckpoint:
    seq: int
    records: int
    head: str
    at: datetime
    reason: str
    public_key: str
    signature: str
    json: str = strawberry.field(description="The checkpoint as `haven audit verify --against` reads it.")


@strawberry.type(description="One read, without survivor data: the survivor as a pseudonym of this export only.")
class AuditExportRecord:
    seq: int
    at: datetime
    org_id: str
    role: str
    subject: str
    categories: list[str]
    purpose: str
    prev_hash: str
    hash: str


@strawberry.type
class LedgerQuery:
    """Who saw what, and whether the record of it is intact."""

    @strawberry.field(
        description="Who saw what of this survivor, and when. The survivor's care team sees every read; an "
        "auditor sees the reads its own organisation made; an oversight body sees every read."
    )
    async def access_ledger(self, info: Info, survivor_id: strawberry.ID) -> list[AccessRecord]:
        who = principal(info, Role.CASEWORKER, Role.INTAKE, Role.AUDITOR, Role.OVERSIGHT)
        sid = survivor_uuid(survivor_id, "survivorId")
        pool = info.context["pool"]
        if who.role is Role.AUDITOR:
            rows = await pool.fetch(
                "SELECT * FROM gateway.audit_log WHERE survivor_id = $1 AND org_id = $2 ORDER BY seq", sid, who.org_id
            )
        else:
            if who.role is not Role.OVERSIGHT:
                await require_member(info, sid)
            rows = await pool.fetch("SELECT * FROM gateway.audit_log WHERE survivor_id = $1 ORDER BY seq", sid)
        return [AccessRecord(org_id=r["org_id"], role=Role(r["role"]), purpose=PurposeEnum(r["purpose"]),
                             categories=[Category(c) for c in r["categories"]], at=r["at"]) for r in rows]  # fmt: skip

    @strawberry.field(description="The audit's latest signed checkpoints, newest first (oversight bodies only).")
    async def audit_checkpoints(self, info: Info, last: int = 10) -> list[AuditCheckpoint]:
        principal(info, Role.OVERSIGHT)
        rows = await info.context["pool"].fetch(
            "SELECT checkpoint FROM gateway.audit_checkpoints ORDER BY id DESC LIMIT $1", max(1, min(last, 100))
        )
        found = [AuditCheckpointed.model_validate(r["checkpoint"]) for r in rows]
        return [AuditCheckpoint(seq=c.seq, records=c.records, head=c.head, at=c.at, reason=c.reason,
                                public_key=c.public_key, signature=c.signature, json=c.model_dump_json())
                for c in found]  # fmt: skip

    @strawberry.field(
        description="Every read of survivor data in a period (2026, 2026-Q4, 2026-11), without survivor data "
        "(oversight bodies only). Each survivor is a pseudonym that holds within this export only."
    )
    async def audit_export(self, info: Info, period: str) -> list[AuditExportRecord]:
        principal(info, Role.OVERSIGHT)
        try:
            start, end = dates(period)
        except ValueError as exc:
            raise fail("BAD_INPUT", f"period: {exc}", field="period") from exc
        async with info.context["pool"].acquire() as conn:
            rows = await audit.export(conn, start, end)
        return [AuditExportRecord(**{**r, "at": datetime.fromisoformat(r["at"])}) for r in rows]

    @strawberry.field(description="Whether the access audit's hash chain is intact (oversight bodies only).")
    async def audit_chain(self, info: Info) -> AuditChain:
        principal(info, Role.OVERSIGHT)
        async with info.context["pool"].acquire() as conn:
            verdict = await audit.verify(conn)
        return AuditChain(records=verdict.rows, intact=verdict.broken_at is None, broken_at=verdict.broken_at,
                          problem=verdict.problem)  # fmt: skip
