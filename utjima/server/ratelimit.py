"""Token buckets: `rate_per_s` sustained, `burst` at once. Time is an argument."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate_per_s: float  # tokens added per second
    burst: float  # bucket size
    tokens: float | None = None  # starts full
    last_ms: float | None = None

    def take(self, now_ms: float, n: float = 1.0) -> bool:
        """Spend `n` tokens if there are enough; False means the caller is over the limit."""
        if self.tokens is None or self.last_ms is None:
            self.tokens, self.last_ms = float(self.burst), now_ms
        elapsed = max(0.0, now_ms - self.last_ms)
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate_per_s / 1000.0)
        self.last_ms = now_ms
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False


class KeyedBuckets:
    """One bucket per key (a client address), the least recently used dropped past `size`."""

    def __init__(self, rate_per_s: float, burst: float, size: int = 4096) -> None:
        self.rate_per_s, self.burst, self.size = rate_per_s, burst, size
        self.buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, now_ms: float) -> bool:
        b = self.buckets.pop(key, None) or TokenBucket(self.rate_per_s, self.burst)
        self.buckets[key] = b  # most recent last
        while len(self.buckets) > self.size:
            self.buckets.pop(next(iter(self.buckets)))
        return b.take(now_ms)
