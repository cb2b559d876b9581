"""Token buckets: `rate_per_s` sustained, `burst` at once. Time is an argument.

Limits are kept per key: a client address (`address_key`: an IPv4 address, or the /64
network of an IPv6 one, which one household or phone usually holds whole), a seat.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


def address_key(host: str | None) -> str:
    """The key a client address is limited by: IPv4 as is, IPv6 by its /64 network."""
    if not host:
        return "?"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]  # a test client's name, a unix socket
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


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

    def empty(self, now_ms: float) -> bool:
        """Would `take` fail now? (Spends nothing.)"""
        if self.tokens is None or self.last_ms is None:
            return self.burst < 1
        elapsed = max(0.0, now_ms - self.last_ms)
        return min(float(self.burst), self.tokens + elapsed * self.rate_per_s / 1000.0) < 1.0


class KeyedBuckets:
    """One bucket per key (a client address), the least recently used dropped past `size`."""

    def __init__(self, rate_per_s: float, burst: float, size: int = 16384) -> None:
        self.rate_per_s, self.burst, self.size = rate_per_s, burst, size
        self.buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, now_ms: float) -> bool:
        b = self.buckets.pop(key, None) or TokenBucket(self.rate_per_s, self.burst)
        self.buckets[key] = b  # most recent last
        while len(self.buckets) > self.size:
            self.buckets.pop(next(iter(self.buckets)))
        return b.take(now_ms)

    def empty(self, key: str, now_ms: float) -> bool:
        """Is this key over its limit now? (Spends nothing; an unknown key is not.)"""
        b = self.buckets.get(key)
        return b is not None and b.empty(now_ms)
