"""The gateway guard's token buckets: they limit, refill, and never grow past their capacity."""

from __future__ import annotations

from gateway.guard import Buckets


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
