"""What a finished match leaves behind: typed records that `game.Room` makes and
`store.Store.save_match` writes. Plain frozen dataclasses (no judge, no database), so the
game and the store each depend on this module and not on each other.

Times are in ms: a round's `start_ms` since the match started, an event's times since
its round started (what the pages show).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Result = Literal["win", "loss", "draw", "forfeit"]


@dataclass(frozen=True)
class PlayerRecord:
    id: str  # member id in the room (not stored: players are stored by nickname)
    nickname: str
    seat: int  # 0..3
    score: int  # rounds won
    result: Result
    threshold: float | None  # calibrated laugh threshold
    key_hash: str | None = None  # the player's identity (device key SHA-256); None: a guest


@dataclass(frozen=True)
class EventRecord:
    """One judge event of a round (docs/judge.md lists the types and their keys)."""

    player: str  # member id
    type: str  # laugh_start, laugh_confirmed, laugh_end, face_lost, face_back, absent_forfeit
    t_ms: float  # when the judge reported it
    start_ms: float | None  # when the laugh or the absence began
    end_ms: float | None  # laugh_end: the laugh's last supporting sample
    peak_prob: float | None  # the laugh's highest smile_prob (a hidden laugh's too)
    reason: str | None  # absent_forfeit: absent | hidden_laugh
    decisive: bool  # the offence this player lost the round by

    @classmethod
    def from_judge(cls, ev: dict[str, Any], decisive: bool) -> EventRecord:
        """From a judge event tagged with `player` (round-relative times)."""
        return cls(player=ev["player"], type=ev["type"], t_ms=ev["t_ms"],
                   start_ms=ev.get("start_ms"), end_ms=ev.get("end_ms"),
                   peak_prob=ev.get("peak_prob"), reason=ev.get("reason"), decisive=decisive)


@dataclass(frozen=True)
class RoundRecord:
    index: int  # 1-based
    status: Literal["loss", "draw"]
    start_ms: float  # since the match started
    duration_ms: float
    events: tuple[EventRecord, ...]  # a loss has one decisive event per loser


@dataclass(frozen=True)
class MatchRecord:
    room_code: str
    number: int  # per room, 1-based
    duration_ms: float
    rounds_to_win: int
    players: tuple[PlayerRecord, ...]  # seat order
    rounds: tuple[RoundRecord, ...]
    winners: tuple[str, ...]  # member ids; empty for a drawn match
