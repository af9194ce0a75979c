"""Webhook endpoints and their delivery logs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

import strawberry

from gateway import webhooks
from gateway.api.base import Info, fail, principal
from gateway.auth import Role


@strawberry.type(description="One attempt to deliver one message.")
class WebhookAttempt:
    at: datetime
    status_code: int | None
    error: str | None


@strawberry.enum(description="What became of a delivery.")
class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@strawberry.type(description="A message queued for an endpoint, and what became of it.")
class WebhookDelivery:
    message_id: str = strawberry.field(description="webhook-id: the same for every attempt (for your idempotency).")
    event_type: str
    status: DeliveryStatus
    attempts: int
    queued_at: datetime
    delivered_at: datetime | None
    log: list[WebhookAttempt]


@strawberry.type(description="A webhook endpoint of my organisation.")
class WebhookEndpoint:
    id: strawberry.ID
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None

    @strawberry.field(description="The latest deliveries, newest first, with every attempt.")
    async def deliveries(self, info: Info, first: int = 20) -> list[WebhookDelivery]:
        if not 1 <= first <= 100:
            raise fail("BAD_INPUT", "first: between 1 and 100", field="first")
        rows = await info.context["pool"].fetch(
            """
            SELECT d.*, (SELECT array_agg(row(a.at, a.status_code, a.error) ORDER BY a.at)
                           FROM gateway.webhook_attempts a
                          WHERE a.webhook_id = d.webhook_id AND a.message_id = d.message_id) AS log
              FROM gateway.webhook_deliveries d WHERE d.webhook_id = $1 ORDER BY d.queued_at DESC LIMIT $2
            """,
            UUID(str(self.id)), first,
        )  # fmt: skip
        return [WebhookDelivery(message_id=r["message_id"], event_type=r["event_type"],
                                status=DeliveryStatus(r["status"]), attempts=r["attempts"], queued_at=r["queued_at"],
                                delivered_at=r["delivered_at"],
                                log=[WebhookAttempt(at=a[0], status_code=a[1], error=a[2]) for a in r["log"] or []])
                for r in rows]  # fmt: skip


@strawberry.type(description="A new endpoint: keep the secret, it is shown only now.")
class WebhookRegistration:
    endpoint: WebhookEndpoint
    secret: str = strawberry.field(description="whsec_…: verify each delivery's webhook-signature with it.")


def _endpoint(r: Any) -> WebhookEndpoint:
    return WebhookEndpoint(id=strawberry.ID(str(r["webhook_id"])), url=r["url"], events=list(r["event_types"]),
                           enabled=r["enabled"], disabled_reason=r["disabled_reason"])  # fmt: skip


@strawberry.type
class WebhooksQuery:
    """My endpoints."""

    @strawberry.field(description="My organisation's webhook endpoints and their delivery logs (org_admin).")
    async def webhooks(self, info: Info) -> list[WebhookEndpoint]:
        who = principal(info, Role.ORG_ADMIN)
        rows = await info.context["pool"].fetch(
            "SELECT * FROM gateway.webhooks WHERE org_id = $1 ORDER BY created_at", who.org_id
        )
        return [_endpoint(r) for r in rows]


@strawberry.type
class WebhooksMutation:
    """Register an endpoint."""

    @strawberry.mutation(
        description="Register an endpoint for events my organisation may see (its referrals' moves, its commands' "
        "outcomes): Standard Webhooks deliveries, signed, retried with backoff for a day (org_admin)."
    )
    async def register_webhook(self, info: Info, url: str, events: list[str]) -> WebhookRegistration:
        who = principal(info, Role.ORG_ADMIN)
        try:
            endpoint = webhooks.check_endpoint(url, allow_loopback=info.context["webhooks_allow_loopback"])
            types = webhooks.subscribed_types(events)
        except webhooks.BadEndpoint as exc:
            field = str(exc).split(":")[0]
            raise fail("BAD_INPUT", str(exc), field=field) from None
        secret = webhooks.new_secret()
        row = await info.context["pool"].fetchrow(
            "INSERT INTO gateway.webhooks (webhook_id, org_id, url, secret, event_types) VALUES ($1, $2, $3, $4, $5)"
            " RETURNING *",
            uuid4(), who.org_id, endpoint, secret, types,
        )  # fmt: skip
        return WebhookRegistration(endpoint=_endpoint(row), secret=secret)
