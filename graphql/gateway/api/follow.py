"""Subscriptions: woken by the read model, never polled."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from starlette.websockets import WebSocket

from gateway.api.base import Info, fail, principal
from gateway.api.commands import CommandOutcome
from gateway.api.pathway import REFERRALS, Referral
from gateway.auth import Role
from gateway.consent import ConsentScope
from gateway.projection import INBOX_CHANNEL, MOVES_CHANNEL, OUTCOMES_CHANNEL


async def _follow(info: Info, channel: str, start: str, rows: str, cursor: str) -> AsyncGenerator[Any, None]:
    """Rows for the caller's organisation as they arrive: ``start`` gives the cursor to begin after, ``rows``
    the rows after a cursor (in the column named ``cursor``). Woken by the projection's NOTIFY, never polled; the key is
    checked again at least every 30 s and a revoked key closes the connection (4403)."""
    who = principal(info)
    pool, wakeup, watch = info.context["pool"], info.context["wakeup"], info.context["key_watch"]
    token, socket = info.context["token"], info.context["request"]
    if token is None:  # a websocket with a key, or a console session (which follows over server-sent events)
        raise fail("UNAUTHENTICATED", "subscribe over a websocket with an API key")
    last = await pool.fetchval(start, who.org_id)
    woken = wakeup.armed(channel)  # armed before looking: a notification during the query still wakes the wait
    found: list[Any] = []
    recheck = time.monotonic() + watch.interval
    while True:
        for r in found:
            last = r[cursor]
            # Each push is decided on its own: consent as it stands now, not when the subscription began, and
            # nothing the connection's loaders cached earlier.
            info.context["consent"] = ConsentScope(pool, who)
            for loader in ("keys", "records", "referrals"):
                info.context[loader].clear_all()
            yield r
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), max(recheck - time.monotonic(), 0.0))
        if time.monotonic() >= recheck:
            if not await watch.valid(token):
                if isinstance(socket, WebSocket):
                    await socket.close(code=4403, reason="the API key was revoked")
                return
            recheck = time.monotonic() + watch.interval
        found = []
        if woken.is_set():
            woken = wakeup.armed(channel)
            found = await pool.fetch(rows, who.org_id, last)


@strawberry.type
class Subscription:
    """What arrives, as it arrives."""

    @strawberry.subscription(description="New referrals addressed to my organisation, as they arrive.")
    async def inbox(self, info: Info) -> AsyncGenerator[Referral, None]:
        principal(info, Role.CASEWORKER, Role.ORG_ADMIN)
        start = "SELECT coalesce(max(seq), 0) FROM gateway.referrals WHERE recipient_org = $1"
        rows = f"{REFERRALS} WHERE r.recipient_org = $1 AND r.seq > $2 ORDER BY r.seq"
        async for r in _follow(info, INBOX_CHANNEL, start, rows, "seq"):
            yield Referral.of(r)

    @strawberry.subscription(
        description="Every move of a referral my organisation made or received (accepted, rejected, completed …), "
        "as it happens: what a referrer's system follows to hear the outcome of its referrals."
    )
    async def referral_updates(self, info: Info) -> AsyncGenerator[Referral, None]:
        start = "SELECT coalesce(max(moved_seq), 0) FROM gateway.referrals WHERE $1 IN (referrer_org, recipient_org)"
        rows = f"{REFERRALS} WHERE $1 IN (r.referrer_org, r.recipient_org) AND r.moved_seq > $2 ORDER BY r.moved_seq"
        async for r in _follow(info, MOVES_CHANNEL, start, rows, "moved_seq"):
            yield Referral.of(r)

    @strawberry.subscription(description="The decisions on my organisation's commands, as they are made.")
    async def command_outcomes(self, info: Info) -> AsyncGenerator[CommandOutcome, None]:
        start = "SELECT coalesce(max(decided_seq), 0) FROM gateway.command_outcomes WHERE org_id = $1"
        rows = ("SELECT * FROM gateway.command_outcomes WHERE org_id = $1 AND decided_seq > $2"
                " ORDER BY decided_seq")  # fmt: skip
        async for r in _follow(info, OUTCOMES_CHANNEL, start, rows, "decided_seq"):
            yield CommandOutcome.of(r)
