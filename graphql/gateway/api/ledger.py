"""The access ledger and the audit chain."""

from __future__ import annotations

from datetime import datetime

import strawberry

from events.consent import Category
from events.consent import Purpose as PurposeEnum
from gateway import audit
from gateway.api.base import Info, Purpose, principal, require_member, survivor_uuid
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

    @strawberry.field(description="Whether the access audit's hash chain is intact (oversight bodies only).")
    async def audit_chain(self, info: Info) -> AuditChain:
        principal(info, Role.OVERSIGHT)
        async with info.context["pool"].acquire() as conn:
            verdict = await audit.verify(conn)
        return AuditChain(records=verdict.rows, intact=verdict.broken_at is None, broken_at=verdict.broken_at,
                          problem=verdict.problem)  # fmt: skip
