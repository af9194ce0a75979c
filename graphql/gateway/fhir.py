"""Referrals as FHIR R4 Tasks, for partners whose systems speak FHIR: ``GET /fhir/Task/{id}`` and
``GET /fhir/Task?owner=Organization/{org}&status={code}``.

Each Task follows the HL7 SDOH Clinical Care IG's Task For Referral Management: ``intent`` order, ``code``
fulfill, its focus a ServiceRequest (contained), ``for`` the survivor's pseudonymous Patient reference, a
requester and an owner. Statuses come from ``events.referrals.FHIR_TASK``; the IG's referral value set
excludes ``received``, so a received referral is ``requested`` with ``businessStatus`` received. A caller
sees the referrals it is party to, as in GraphQL (anyone else gets 404, as for an id that does not
exist), and every Task returned is written to the access audit (case_status, service delivery).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse

from events.consent import Category, Purpose
from events.needs import Urgency
from events.referrals import FHIR_TASK, OPEN, ReferralStatus
from gateway.audit import AuditWriter, Entry
from gateway.auth import Principal
from gateway.guard import PRINCIPAL
from services.kernel.db import Pool

FHIR_JSON = "application/fhir+json"
TASK_STATUS = "http://hl7.org/fhir/task-status"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
HAVEN_STATUS = "urn:haven:fhir:referral-status"
HAVEN_REFERRAL_TYPE = "urn:haven:fhir:referral-type"
HAVEN_REASON = "urn:haven:fhir:reason"
PRIORITY = {Urgency.EMERGENCY: "stat", Urgency.URGENT: "urgent", Urgency.ROUTINE: "routine"}
SDOH_EXCLUDED = frozenset({"ready", "received"})
"""TaskStatus codes the IG's SDOHCC ValueSet Referral Task Status leaves out."""
EXPLAINED = frozenset({"rejected", "cancelled", "on-hold", "failed"})
"""Statuses the IG wants a ``statusReason.text`` on."""

REFERRAL = """
SELECT r.*, (SELECT t.reason FROM gateway.transitions t WHERE t.referral_id = r.referral_id
              ORDER BY t.at DESC LIMIT 1) AS last_reason
  FROM gateway.referrals r"""


def task_status(status: ReferralStatus) -> tuple[str, str | None]:
    """The IG's Task.status for one of our states, and the businessStatus code that keeps our distinction."""
    fhir, business = FHIR_TASK[status]
    if fhir in SDOH_EXCLUDED:
        return "requested", status.value
    return fhir, business


def service_request_status(status: ReferralStatus) -> str:
    if status in OPEN:
        return "active"
    return {ReferralStatus.COMPLETED: "completed", ReferralStatus.ENTERED_IN_ERROR: "entered-in-error"}.get(
        status, "revoked"
    )


def task(r: Any) -> dict[str, Any]:
    """One referral row (with ``last_reason``) as an SDOHCC referral Task with its ServiceRequest contained."""
    status = ReferralStatus(r["status"])
    code, business = task_status(status)
    patient = {"reference": f"Patient/{r['survivor_id']}"}
    requester = {"reference": f"Organization/{r['referrer_org']}"}
    owner = {"reference": f"Organization/{r['recipient_org']}"}
    authored = r["created_at"].isoformat()
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": str(r["referral_id"]),
        "meta": {"profile": ["http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/SDOHCC-TaskForReferralManagement"]},
        "contained": [{
            "resourceType": "ServiceRequest", "id": "referral", "status": service_request_status(status),
            "intent": "order", "priority": PRIORITY[Urgency(r["urgency"])], "subject": patient,
            "code": {"coding": [{"system": HAVEN_REFERRAL_TYPE, "code": r["referral_type"]}]},
            "requester": requester, "performer": [owner], "authoredOn": authored,
        }],
        "status": code,
        "intent": "order",
        "priority": PRIORITY[Urgency(r["urgency"])],
        "code": {"coding": [{"system": TASK_CODE, "code": "fulfill", "display": "Fulfill the focal request"}]},
        "focus": {"reference": "#referral"},
        "for": patient,
        "authoredOn": authored,
        "lastModified": r["updated_at"].isoformat(),
        "requester": requester,
        "owner": owner,
        "restriction": {"period": {"end": r["deadline"].isoformat()}},
    }  # fmt: skip
    if business is not None:
        resource["businessStatus"] = {"coding": [{"system": HAVEN_STATUS, "code": business}], "text": business}
    if code in EXPLAINED:
        reason = r["last_reason"] or status.value
        resource["statusReason"] = {"coding": [{"system": HAVEN_REASON, "code": reason}], "text": reason}
    if r["parent_referral_id"] is not None:
        resource["partOf"] = [{"reference": f"Task/{r['parent_referral_id']}"}]
    return resource


def _outcome(status: int, code: str, text: str) -> JSONResponse:
    body = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]}
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


class TaskEndpoints:
    """The two read endpoints, on the gateway's read model and its audit."""

    def __init__(self, pool: Pool, audit: AuditWriter) -> None:
        self.pool, self.audit = pool, audit

    async def read(self, request: Request) -> JSONResponse:
        who: Principal | None = request.scope.get(PRINCIPAL)
        if who is None:
            return _outcome(401, "login", "send an API key: Authorization: Bearer <key>")
        try:
            referral_id = UUID(request.path_params["id"])
        except ValueError:
            return _outcome(404, "not-found", "no Task with this id that you are party to")
        row = await self.pool.fetchrow(
            f"{REFERRAL} WHERE r.referral_id = $1 AND $2 IN (r.referrer_org, r.recipient_org)", referral_id, who.org_id
        )
        if row is None:
            return _outcome(404, "not-found", "no Task with this id that you are party to")
        await self._audit(who, [row])
        return JSONResponse(task(row), media_type=FHIR_JSON)

    async def search(self, request: Request) -> JSONResponse:
        who: Principal | None = request.scope.get(PRINCIPAL)
        if who is None:
            return _outcome(401, "login", "send an API key: Authorization: Bearer <key>")
        owner = request.query_params.get("owner", "").removeprefix("Organization/") or None
        status = request.query_params.get("status")
        known = {task_status(s)[0] for s in ReferralStatus}
        if status is not None and status not in known:
            return _outcome(400, "value", f"status: one of {', '.join(sorted(known))}")
        rows = await self.pool.fetch(
            f"{REFERRAL} WHERE $1 IN (r.referrer_org, r.recipient_org) AND ($2::text IS NULL OR r.recipient_org = $2)"
            " ORDER BY r.created_at LIMIT 200",
            who.org_id, owner,
        )  # fmt: skip
        tasks = [task(r) for r in rows]
        matching = [(r, t) for r, t in zip(rows, tasks, strict=True) if status is None or t["status"] == status]
        await self._audit(who, [r for r, _ in matching])
        bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(matching),
                  "entry": [{"fullUrl": f"Task/{t['id']}", "resource": t, "search": {"mode": "match"}}
                            for _, t in matching]}  # fmt: skip
        return JSONResponse(bundle, media_type=FHIR_JSON)

    async def _audit(self, who: Principal, rows: list[Any]) -> None:
        """Every Task returned is a read of the survivor's case status, written before the response leaves."""
        if rows:
            at = datetime.now(UTC)
            await self.audit.append([
                Entry(at, who.org_id, who.role, r["survivor_id"], [Category.CASE_STATUS], Purpose.SERVICE_DELIVERY)
                for r in rows
            ])  # fmt: skip
