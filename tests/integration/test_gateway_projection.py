"""The replay's set-based projection against the live one, event by event, on the real read model."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from gateway import projection

from events.envelope import Envelope
from events.needs import ReferralType, Urgency
from events.referrals import (
    ReferralAccepted,
    ReferralCancelled,
    ReferralCompleted,
    ReferralReceived,
    ReferralRejected,
    ReferralRequested,
    ReferralStarted,
)
from services.kernel.consumer import UnitOfWork
from services.kernel.db import create_pool
from services.kernel.settings import Settings

PATHS = (
    (ReferralReceived, ReferralAccepted, ReferralStarted, ReferralCompleted),
    (ReferralReceived, ReferralRejected),
    (ReferralCancelled,),
    (),
)


def history(referrals: int, seed: int) -> list[Envelope]:
    """Each referral's events in order, the referrals interleaved as one partition could carry them."""
    rng, now = random.Random(seed), datetime.now(UTC)
    lives = []
    for n in range(referrals):
        common = {"referral_id": uuid4(), "survivor_id": uuid4(), "referrer_org": "city-hotline",
                  "recipient_org": f"shelter-{n % 3}"}  # fmt: skip
        requested = ReferralRequested(
            **common, actor_org="city-hotline", referral_type=ReferralType.EMERGENCY_SHELTER,
            urgency=Urgency.EMERGENCY, purpose="service_delivery", categories=frozenset({"case_status"}),
            deadline=now + timedelta(hours=4),
            withheld=frozenset(rng.sample(["identity", "contact"], rng.randint(0, 2))),
        )  # fmt: skip
        moves = [move(**common, actor_org=common["recipient_org"], reason="no_capacity" if move is ReferralRejected
                      else None) for move in rng.choice(PATHS)]  # fmt: skip
        lives.append([requested, *moves])
    events, clock = [], now
    while any(lives):
        life = rng.choice([life for life in lives if life])
        clock += timedelta(seconds=1)
        events.append(Envelope.new(life.pop(0), source="haven/test", time=clock))
    return events


async def projected(settings: Settings, events: list[Envelope], *, set_based: bool) -> dict[str, Any]:
    """The read model's rows for these events after projecting them; rolled back afterwards."""
    pool = await create_pool(settings, schema="gateway")
    ids = list({e.data.referral_id for e in events})  # type: ignore[attr-defined]
    try:
        async with pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            uow = UnitOfWork(conn)
            if set_based:
                half = len(events) // 2  # two runs, as two fetches would bring them
                for run in (events[:half], events[half:]):
                    await projection.referrals_moved(run, uow)
            else:
                handlers = projection.handlers()
                for event in events:
                    await handlers[event.type](event, uow)
            referrals = await conn.fetch(
                "SELECT referral_id, survivor_id, referrer_org, recipient_org, referral_type, urgency, status,"
                " deadline, created_at, updated_at, accepted_ever, shared, withheld"
                " FROM referrals WHERE referral_id = ANY($1) ORDER BY referral_id",
                ids,
            )
            transitions = await conn.fetch(
                "SELECT * FROM transitions WHERE referral_id = ANY($1) ORDER BY event_id", ids
            )
            await transaction.rollback()
    finally:
        await pool.close()
    return {"referrals": [dict(r) for r in referrals], "transitions": [dict(t) for t in transitions]}


async def test_the_set_based_replay_ends_where_projecting_event_by_event_does(settings: Settings) -> None:
    events = history(referrals=40, seed=7)

    one_by_one = await projected(settings, events, set_based=False)
    set_based = await projected(settings, events, set_based=True)

    assert len(one_by_one["referrals"]) == 40
    assert len(one_by_one["transitions"]) == len(events)
    statuses = {r["status"] for r in one_by_one["referrals"]}
    assert {"completed", "rejected", "cancelled", "requested"} <= statuses, "every path was exercised"
    assert any(r["accepted_ever"] for r in one_by_one["referrals"]), "acceptances count for the care team"
    assert any(r["withheld"] for r in one_by_one["referrals"]), "what consent withheld is kept"
    assert set_based == one_by_one
