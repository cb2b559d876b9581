"""Putting a client's sample times on the server's clock, without letting it back-date.

Each page stamps samples with its own `performance.now()` (`t_ms`). The server pings
(`ping {server_ms}`), the page echoes at once (`pong {server_ms, t_ms}`), and the server
measures the round trip itself: the page's clock read `t_ms` somewhere between the ping's
departure and the pong's arrival, so

    offset = (sent + received) / 2 - t_ms        (error at most rtt / 2)

and the estimate from the fastest round trip is kept. Mapping a sample:

- `t = t_ms + offset`, clamped to its own receipt time (a sample cannot come from the
  future; the receipt time is the upper bound whatever a client claims);
- rejected if `t` is older than `max_age_ms` at receipt (sitting on samples and
  back-dating them), or not after the previous accepted sample (time runs forward).

The offset is `lock()`ed for a round, so one better ping mid-round cannot reorder samples.
Nothing here reads a clock: every time is an argument (pure, like the judge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


class ClockError(ValueError):
    """A sample time the server will not accept; `code` is sent back in the error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class ClockSync:
    """One connection's clock mapping (a reload starts a new page clock, so a new one)."""

    max_age_ms: float  # reject samples older than this at receipt
    offset_ms: float | None = None  # best estimate: server_ms - page_ms
    rtt_ms: float = math.inf  # round trip of that estimate
    locked_ms: float | None = None  # offset in use while locked (a round)
    last_ms: float | None = None  # mapped time of the last accepted sample
    pending: dict[float, None] = field(default_factory=dict)  # pings sent, not answered

    def ping_sent(self, server_ms: float) -> None:
        self.pending[server_ms] = None
        while len(self.pending) > 8:  # unanswered pings are forgotten, oldest first
            self.pending.pop(next(iter(self.pending)))

    def pong(self, server_ms: float, t_ms: float, received_ms: float) -> bool:
        """Fold in one echo; False if it does not answer a ping we sent (ignored)."""
        if server_ms not in self.pending or received_ms < server_ms:
            return False
        del self.pending[server_ms]
        rtt = received_ms - server_ms
        if rtt < self.rtt_ms:
            self.rtt_ms = rtt
            self.offset_ms = (server_ms + received_ms) / 2.0 - t_ms
        return True

    @property
    def synced(self) -> bool:
        return self.offset_ms is not None

    def lock(self) -> None:
        self.locked_ms = self.offset_ms

    def unlock(self) -> None:
        self.locked_ms = None

    def map(self, t_ms: float, received_ms: float) -> float:
        """The sample's time on the server clock; raises ClockError if it is not accepted."""
        offset = self.locked_ms if self.locked_ms is not None else self.offset_ms
        if offset is None:
            # not synced yet: the receipt time is the only bound we have
            offset = received_ms - t_ms
        t = min(t_ms + offset, received_ms)
        if t < received_ms - self.max_age_ms:
            raise ClockError("stale_sample", (
                f"sample t_ms={t_ms:.0f} is {received_ms - t:.0f} ms old on arrival; samples "
                f"older than {self.max_age_ms:.0f} ms are rejected (send them as they happen)"))
        if self.last_ms is not None and t <= self.last_ms:
            raise ClockError("out_of_order", (
                f"sample t_ms={t_ms:.0f} is not after the previous sample "
                f"({self.last_ms - t:.0f} ms earlier on the server clock); times must increase"))
        self.last_ms = t
        return t
