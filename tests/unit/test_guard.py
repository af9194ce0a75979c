"""The gateway guard's token buckets: they limit, refill, and never grow past their capacity."""

from __future__ import annotations

import time

from gateway.auth import Principal, Role
from gateway.guard import Buckets, RecentKeys

from events.consent import OrgType


def test_a_bucket_allows_its_burst_then_refuses() -> None:
    buckets = Buckets(rate=0.001, burst=3)
    assert [buckets.allow("key") for _ in range(4)] == [True, True, True, False]
    assert buckets.allow("another"), "each key has its own bucket"


def test_random_keys_never_grow_the_table_past_its_capacity() -> None:
    buckets = Buckets(rate=1, burst=1, capacity=100)
    for n in range(10_000):
        buckets.allow(f"random-token-{n}")
    assert len(buckets) == 100


def test_the_least_recently_used_bucket_is_the_one_forgotten() -> None:
    buckets = Buckets(rate=0.001, burst=1, capacity=2)
    assert buckets.allow("busy")
    assert buckets.allow("idle")
    assert not buckets.allow("busy"), "busy has spent its burst (and is now the most recently used)"
    buckets.allow("newcomer")  # pushes out "idle", not "busy"
    assert not buckets.allow("busy"), "a sender cannot reset its own bucket by flooding with other keys"


def test_a_recent_key_is_trusted_for_its_seconds_and_forgotten_at_once_when_its_revocation_is_announced() -> None:
    keys = RecentKeys(seconds=0.2)
    who = Principal("harbour-shelter", OrgType.SHELTER, Role.CASEWORKER)
    keys.put("hash-a", who)
    keys.put("hash-b", who)
    assert keys.get("hash-a") == who, "no query for a key seen a moment ago"
    keys.forget(None, 0, "haven_key_revoked", "hash-a")
    assert keys.get("hash-a") is None, "a revoked key is asked about again at once"
    time.sleep(0.25)
    assert keys.get("hash-b") is None, "and any key after the bound, had the announcement been lost"


def test_recent_keys_hold_at_most_their_size_dropping_the_oldest() -> None:
    keys = RecentKeys(seconds=60, size=3)
    who = Principal("harbour-shelter", OrgType.SHELTER, Role.CASEWORKER)
    for n in range(5):
        keys.put(f"hash-{n}", who)
    assert [keys.get(f"hash-{n}") for n in range(5)] == [None, None, who, who, who]
