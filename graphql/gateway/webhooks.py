"""Webhooks: for a partner that cannot hold a websocket, the events it may see, POSTed to its endpoints.

Deliveries follow the Standard Webhooks spec (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``,
HMAC-SHA256 with the endpoint's ``whsec_`` secret), so any of its libraries verifies them. A payload
carries ids and codes, never survivor data: the partner fetches the consent-filtered view. A failing
endpoint is retried with backoff for a day, then disabled with the reason; every attempt is logged.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from standardwebhooks.webhooks import Webhook

from events.envelope import Envelope
from events.outcomes import CommandOutcome, CommandRefused
from events.referrals import EVENT_STATUS, ReferralEscalated, ReferralEvent, ReferralRequested
from services.kernel.db import Connection, Pool
from services.kernel.lifecycle import wait_any

log = logging.getLogger(__name__)
CHANNEL = "gateway_webhooks"
DELIVERABLE = frozenset({*(e.event_type for e in EVENT_STATUS), ReferralEscalated.event_type,
                         "command.applied", "command.refused"})  # fmt: skip
"""The event types an organisation may subscribe to: its referrals' moves and its commands' outcomes."""
BACKOFF = (timedelta(seconds=2), timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10),
           timedelta(minutes=30), timedelta(hours=1))  # fmt: skip
"""Waits between attempts (then hourly); an endpoint still failing a day after a message's first attempt
is disabled."""
GIVE_UP_AFTER = timedelta(days=1)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class BadEndpoint(ValueError):
    """An endpoint Haven will not send to."""


def check_endpoint(url: str, *, allow_loopback: bool) -> str:
    """``url`` if it is ``https`` (or loopback ``http`` in a local stack); otherwise ``BadEndpoint``."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if allow_loopback and parts.scheme == "http" and parts.hostname in LOOPBACK:
        return url
    raise BadEndpoint(
        "url: an https endpoint" + (" (or http on loopback, in this local stack)" if allow_loopback else "")
    )


def new_secret() -> str:
    """A ``whsec_`` secret, shown to the organisation once."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def message(event: Envelope) -> tuple[list[str], dict[str, Any]] | None:
    """The organisations that may hear of ``event`` and the payload they get (ids and codes only), or None."""
    data = event.data
    body: dict[str, Any]
    if isinstance(data, ReferralEvent | ReferralEscalated):
        body = {
            "referral_id": str(data.referral_id), "survivor_id": str(data.survivor_id),
            "referrer_org": data.referrer_org, "recipient_org": data.recipient_org, "reason": data.reason,
        }  # fmt: skip
        if isinstance(data, ReferralEvent):
            body |= {"status": data.status.value, "actor_org": data.actor_org}
        if isinstance(data, ReferralRequested):
            body |= {"referral_type": data.referral_type.value, "urgency": data.urgency.value,
                     "deadline": data.deadline.isoformat()}  # fmt: skip
        orgs = [data.referrer_org, data.recipient_org]
    elif isinstance(data, CommandOutcome):
        body = {"command_id": str(data.command_id), "command_type": data.command_type}
        if isinstance(data, CommandRefused):
            body |= {"code": data.code, "field": data.field, "message": data.message}
        orgs = [data.requested_by]
    else:
        return None
    return orgs, {"type": event.type, "timestamp": event.time.isoformat(), "data": body}


async def enqueue(conn: Connection, *events: Envelope) -> None:
    """Queue each of ``events`` for every enabled endpoint that subscribed to it, registered before it happened; one
    statement however many there are.

    Keyed by (endpoint, event id): a replay of the topics queues nothing twice and nothing from before.
    """
    rows = [(f"msg_{event.id}", event.type, json.dumps(found[1]), org, event.time)
            for event in events if (found := message(event)) is not None for org in sorted(set(found[0]))]  # fmt: skip
    if not rows:
        return
    queued = await conn.fetchval(
        """
        WITH added AS (
            INSERT INTO webhook_deliveries (webhook_id, message_id, event_type, payload)
            SELECT w.webhook_id, m.id, m.type, to_jsonb(m.payload)  -- the text as sent, signed as stored
              FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                   AS m(id, type, payload, org, at)
              JOIN webhooks w ON w.org_id = m.org AND w.enabled AND m.type = ANY(w.event_types) AND w.created_at <= m.at
            ON CONFLICT DO NOTHING RETURNING 1)
        SELECT count(*) FROM added
        """,
        *map(list, zip(*rows, strict=True)),
    )  # fmt: skip
    if queued:
        await conn.execute(f"NOTIFY {CHANNEL}")


class Sender:
    """Sends what is due, one gateway at a time per delivery (rows are claimed with SKIP LOCKED)."""

    def __init__(self, *, timeout: float = 10.0, batch: int = 20) -> None:
        self.timeout, self.batch = timeout, batch
        self._woken = asyncio.Event()

    def wake(self, *_: object) -> None:
        """A NOTIFY listener on ``CHANNEL``: a delivery was queued."""
        self._woken.set()

    async def run(self, pool: Pool, stop: asyncio.Event) -> None:
        """Background task: send what is due until ``stop``; woken by ``wake``, else at the next retry's time."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as http:
            while not stop.is_set():
                self._woken.clear()
                if await self.send_due(pool, http):
                    continue
                due = await pool.fetchval(
                    "SELECT min(next_attempt_at) FROM gateway.webhook_deliveries WHERE status = 'pending'"
                )
                wait = 30.0 if due is None else max((due - datetime.now(UTC)).total_seconds(), 0.05)
                await wait_any(stop, self._woken, timeout=min(wait, 30.0))

    async def send_due(self, pool: Pool, http: aiohttp.ClientSession) -> int:
        """Attempt every due delivery (up to a batch); return how many were attempted."""
        async with pool.acquire() as conn, conn.transaction():
            due = await conn.fetch(
                """
                SELECT d.*, w.url, w.secret FROM gateway.webhook_deliveries d JOIN gateway.webhooks w USING (webhook_id)
                 WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND w.enabled
                 ORDER BY d.next_attempt_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED
                """,
                self.batch,
            )
            results = await asyncio.gather(*(self._post(http, row) for row in due))
            for row, (status, error) in zip(due, results, strict=True):
                await self._record(conn, row, status, error)
        return len(due)

    async def _post(self, http: aiohttp.ClientSession, row: Any) -> tuple[int | None, str | None]:
        body = row["payload"] if isinstance(row["payload"], str) else json.dumps(row["payload"])
        now = datetime.now(UTC)
        headers = {"webhook-id": row["message_id"], "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": Webhook(row["secret"]).sign(row["message_id"], now, body),
                   "content-type": "application/json"}  # fmt: skip
        try:
            async with http.post(row["url"], data=body.encode(), headers=headers, allow_redirects=False) as response:
                return response.status, None if response.status < 300 else f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]

    @staticmethod
    async def _record(conn: Connection, row: Any, status: int | None, error: str | None) -> None:
        now = datetime.now(UTC)
        attempts = row["attempts"] + 1
        first = row["first_attempt_at"] or now
        await conn.execute(
            "INSERT INTO gateway.webhook_attempts (webhook_id, message_id, at, status_code, error)"
            " VALUES ($1, $2, $3, $4, $5)",
            row["webhook_id"], row["message_id"], now, status, error,
        )  # fmt: skip
        if error is None:
            await conn.execute(
                "UPDATE gateway.webhook_deliveries SET status = 'delivered', attempts = $3, first_attempt_at = $4,"
                " delivered_at = $5 WHERE webhook_id = $1 AND message_id = $2",
                row["webhook_id"], row["message_id"], attempts, first, now,
            )  # fmt: skip
            return
        if now - first >= GIVE_UP_AFTER:
            reason = f"deliveries failed for a day; last: {error}"
            await conn.execute(
                "UPDATE gateway.webhook_deliveries SET status = 'failed', attempts = $3, first_attempt_at = $4"
                " WHERE webhook_id = $1 AND message_id = $2",
                row["webhook_id"], row["message_id"], attempts, first,
            )  # fmt: skip
            await conn.execute(
                "UPDATE gateway.webhooks SET enabled = false, disabled_reason = $2 WHERE webhook_id = $1",
                row["webhook_id"], reason,
            )  # fmt: skip
            log.warning("webhook %s disabled: %s", row["webhook_id"], reason)
            return
        wait = BACKOFF[min(attempts - 1, len(BACKOFF) - 1)]
        await conn.execute(
            "UPDATE gateway.webhook_deliveries SET attempts = $3, first_attempt_at = $4, next_attempt_at = $5"
            " WHERE webhook_id = $1 AND message_id = $2",
            row["webhook_id"], row["message_id"], attempts, first, now + wait,
        )  # fmt: skip


def subscribed_types(types: Iterable[str]) -> list[str]:
    """The event types asked for, if each may be delivered; otherwise ``BadEndpoint`` naming the first that may not."""
    chosen = sorted(set(types))
    for t in chosen:
        if t not in DELIVERABLE:
            raise BadEndpoint(
                f"events: {t} is not an event a webhook delivers; one of {', '.join(sorted(DELIVERABLE))}"
            )
    if not chosen:
        raise BadEndpoint("events: name at least one event type")
    return chosen
