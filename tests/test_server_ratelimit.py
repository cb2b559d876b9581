"""Token buckets (utjima/server/ratelimit.py)."""

from __future__ import annotations

from utjima.server.ratelimit import KeyedBuckets, TokenBucket


def test_burst_then_sustained_rate():
    b = TokenBucket(rate_per_s=10.0, burst=5)
    assert all(b.take(0.0) for _ in range(5))
    assert not b.take(0.0)
    assert b.take(100.0)  # 100 ms at 10/s = one token
    assert not b.take(100.0)
    assert sum(b.take(10_000.0) for _ in range(10)) == 5  # never more than the burst


def test_keyed_buckets_are_independent_and_bounded():
    k = KeyedBuckets(rate_per_s=0.001, burst=1, size=2)
    assert k.take("a", 0.0) and not k.take("a", 0.0)
    assert k.take("b", 0.0)
    k.take("c", 0.0)
    assert len(k.buckets) == 2 and "a" not in k.buckets  # least recently used dropped
