"""The laugh judge: pure, time-explicit rules that turn smile samples into laughs and verdicts.

Each player's browser streams `(t_ms, smile_prob, face)` samples; this module decides who
laughed. The same rules turn a video's per-frame scores into laugh segments offline
(`utjima predict`). Nothing here reads a clock or does I/O: time enters only through
`t_ms` arguments, every function returns a new state, and `utjima/web/judge.js` mirrors it
line for line. `tests/vectors/judge.json` is run by both pytest and `node --test`.

Per player (`LaughTracker`, see docs/judge.md for the reasoning):
- a laugh starts at a face sample with `smile_prob >= threshold`; it is *supported* by every
  face sample with `smile_prob >= threshold - release` (hysteresis);
- it ends once `max_gap_ms` pass with no supporting sample (dips, missing samples and a
  lost face all count as gap); `end_ms` is its last supporting sample;
- it is confirmed at the first supporting sample with `t_ms - start_ms >= min_laugh_ms`;
- the face is absent from the first `face=False` sample, or from `last sample +
  max_sample_gap_ms` when samples stop (a stale stream); absences shorter than
  `absent_grace_ms` are silent, `absent_forfeit_ms` of absence forfeits the round, and a
  face lost in the middle of a laugh for `absent_grace_ms` forfeits at once ("hidden
  laugh": a covered camera must not be a way to win).
Timed rules fire at their exact deadline (`advance`), so events and verdicts do not depend
on how often the caller ticks.

Per round (`RoundState`): the player whose offence (a confirmed laugh's start, or a
forfeit) came first loses; the verdict waits until no other player can still produce an
earlier offence. Events and verdicts are plain dicts with snake_case keys (the wire format),
one key per concept: `start_ms` is when a laugh or an absence began, `peak_prob` a laugh's
highest smile_prob so far.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

Event = dict[str, Any]
Sample = Sequence[Any]  # [t_ms, smile_prob | None, face]


class CalibrationError(ValueError):
    """Calibration samples cannot give a threshold (no face, too few samples)."""


# --- config ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgeConfig:
    """Judge rules. Defaults suit a 10-30 Hz stream; model.json's `judge` key overrides them."""

    # Laugh at smile_prob >= threshold. Per player: `calibrate` raises it for faces that
    # read as smiling at rest. 0.5 = the model's default decision threshold.
    threshold: float = 0.5
    # Hysteresis: a laugh in progress is supported while smile_prob >= threshold - release,
    # so a laugh hovering around the threshold is one laugh, not a flicker of many.
    release: float = 0.1
    # A laugh is confirmed once a supporting sample comes this long after its start
    # (5 samples at 10 Hz). Shorter smiles are "almost laughed", never a loss.
    min_laugh_ms: float = 400.0
    # A laugh survives a stretch shorter than this without supporting samples (dips,
    # dropped samples, a blink of face loss). 250 > 2 frames at 10 Hz: one bad sample at
    # the slowest rate is bridged.
    max_gap_ms: float = 250.0
    # No sample for this long = stale stream, treated as face absent from that moment
    # (a frozen tab or cut network must not be a way to win). Must be >= max_gap_ms.
    max_sample_gap_ms: float = 500.0
    # Face absence shorter than this is tolerated silently (a hand, a head turn); at this
    # point `face_lost` fires, and a face lost mid-laugh is a hidden laugh (forfeit).
    absent_grace_ms: float = 1000.0
    # Face absent this long during a round forfeits it ("hid their face"). Offline
    # segments ignore forfeits.
    absent_forfeit_ms: float = 3000.0
    # Round verdict: offences within tie_ms of the first one are simultaneous and lose
    # together. 100 ms = one sample period at 10 Hz, below which start order is noise.
    tie_ms: float = 100.0
    # Calibration: threshold = clip(max(threshold, percentile(neutral) + margin), min, max).
    calib_percentile: float = 95.0
    # Margin above the neutral face's high percentile, so resting noise stays below.
    calib_margin: float = 0.1
    # Fewest face samples calibration accepts (2 s at 10 Hz).
    calib_min_samples: int = 20
    # Lowest calibrated threshold (guards a low model threshold against noise).
    calib_min_threshold: float = 0.2
    # Highest calibrated threshold: grinning through calibration buys at most this, and
    # real laughs still score above it.
    calib_max_threshold: float = 0.9

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ValueError(f"JudgeConfig.{f.name} must be a finite number, got {v!r}")
        checks = [
            (0 < self.threshold < 1, "threshold must be in (0, 1)"),
            (0 <= self.release < self.threshold, "release must be in [0, threshold)"),
            (self.min_laugh_ms >= 0, "min_laugh_ms must be >= 0"),
            (self.max_gap_ms > 0, "max_gap_ms must be > 0"),
            (self.max_sample_gap_ms >= self.max_gap_ms, "max_sample_gap_ms must be >= max_gap_ms"),
            (self.absent_grace_ms >= 0, "absent_grace_ms must be >= 0"),
            (self.absent_forfeit_ms >= self.absent_grace_ms,
             "absent_forfeit_ms must be >= absent_grace_ms"),
            (self.tie_ms >= 0, "tie_ms must be >= 0"),
            (0 <= self.calib_percentile <= 100, "calib_percentile must be in [0, 100]"),
            (self.calib_margin >= 0, "calib_margin must be >= 0"),
            (self.calib_min_samples >= 1 and float(self.calib_min_samples).is_integer(),
             "calib_min_samples must be an integer >= 1"),
            (0 < self.calib_min_threshold <= self.calib_max_threshold < 1
             and self.release < self.calib_max_threshold,
             "need 0 < calib_min_threshold <= calib_max_threshold < 1, "
             "release < calib_max_threshold"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"JudgeConfig: {msg}; got {self.to_dict()}")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> JudgeConfig:
        """Build from a dict (model.json `judge`, a vector's `config`); unknown keys fail."""
        d = dict(d or {})
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise ValueError(f"JudgeConfig: unknown keys: {', '.join(unknown)}; "
                             f"valid keys: {', '.join(valid)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- input validation (the network boundary) -------------------------------------------


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        raise ValueError(f"{what} must be a finite number, got {v!r}")
    return float(v)


def _face(v: Any) -> bool:
    # bool, or a numpy bool from the offline pipeline
    if isinstance(v, bool) or getattr(getattr(v, "dtype", None), "kind", None) == "b":
        return bool(v)
    raise ValueError(f"face must be true or false, got {v!r}")


def _prob(v: Any) -> float:
    p = _number(v, "smile_prob (face present)")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"smile_prob must be in [0, 1] when face is true, got {p!r}")
    return p


# --- per-player tracker ------------------------------------------------------------------


@dataclass(frozen=True)
class Laugh:
    """A laugh in progress."""

    start_ms: float  # first sample at or above threshold
    last_ms: float  # last supporting sample (>= threshold - release)
    peak_prob: float  # highest smile_prob so far
    confirmed: bool  # lasted min_laugh_ms (laugh_confirmed fired)


@dataclass(frozen=True)
class Absence:
    """The face is not seen (face=False samples or a stale stream)."""

    since_ms: float  # when the absence began
    laugh: Laugh | None  # the laugh in progress when the face went, if any
    lost: bool = False  # face_lost fired (absent_grace_ms reached)
    forfeited: bool = False  # absent_forfeit fired


@dataclass(frozen=True)
class LaughTracker:
    """One player's judge state. Immutable: `update`/`advance` return a new one."""

    cfg: JudgeConfig
    now_ms: float  # timeline committed up to here (last sample or advance)
    last_sample_ms: float | None = None  # time of the last sample
    laugh: Laugh | None = None  # laugh in progress
    absence: Absence | None = None  # None while the face is present
    # the laugh open right after the last sample: a stale stream that cuts off a laugh is a
    # hidden laugh, whenever the caller gets round to noticing
    laugh_at_sample: Laugh | None = None


def new_tracker(cfg: JudgeConfig, t_ms: float) -> LaughTracker:
    """A tracker whose timeline starts at `t_ms`; no face seen yet counts as absent from then."""
    t = _number(t_ms, "t_ms")
    return LaughTracker(cfg=cfg, now_ms=t, absence=Absence(since_ms=t, laugh=None))


def _next_deadline(trk: LaughTracker) -> tuple[float, str] | None:
    """The earliest timed rule still to fire; ties go in this fixed order."""
    cfg, due = trk.cfg, []
    if trk.laugh is not None:
        due.append((trk.laugh.last_ms + cfg.max_gap_ms, "laugh_end"))
    if trk.absence is None and trk.last_sample_ms is not None:
        due.append((trk.last_sample_ms + cfg.max_sample_gap_ms, "stale"))
    a = trk.absence
    if a is not None and not a.lost:
        due.append((a.since_ms + cfg.absent_grace_ms, "face_lost"))
    if a is not None and not a.forfeited and a.laugh is not None:
        due.append((a.since_ms + cfg.absent_grace_ms, "hidden_laugh"))
    if a is not None and not a.forfeited:
        due.append((a.since_ms + cfg.absent_forfeit_ms, "absent_forfeit"))
    return min(due, key=lambda d: d[0]) if due else None  # min keeps the first of equals


def _fire(trk: LaughTracker, t: float, kind: str, events: list[Event]) -> LaughTracker:
    laugh, a = trk.laugh, trk.absence
    if kind == "laugh_end":
        assert laugh is not None
        events.append({"type": "laugh_end", "t_ms": t, "start_ms": laugh.start_ms,
                       "end_ms": laugh.last_ms, "peak_prob": laugh.peak_prob,
                       "confirmed": laugh.confirmed})
        return replace(trk, laugh=None)
    if kind == "stale":
        return replace(trk, absence=Absence(since_ms=t, laugh=trk.laugh_at_sample))
    assert a is not None
    if kind == "face_lost":
        events.append({"type": "face_lost", "t_ms": t, "start_ms": a.since_ms})
        return replace(trk, absence=replace(a, lost=True))
    hidden = a.laugh if kind == "hidden_laugh" else None
    events.append({"type": "absent_forfeit", "t_ms": t, "start_ms": a.since_ms,
                   "reason": "absent" if hidden is None else "hidden_laugh",
                   "offence_ms": a.since_ms if hidden is None else hidden.start_ms,
                   "peak_prob": None if hidden is None else hidden.peak_prob})
    return replace(trk, absence=replace(a, forfeited=True))


def _run_deadlines(trk: LaughTracker, t: float, events: list[Event]) -> LaughTracker:
    while (due := _next_deadline(trk)) is not None and due[0] <= t:
        trk = _fire(trk, due[0], due[1], events)
    return trk


def advance(trk: LaughTracker, t_ms: float) -> tuple[LaughTracker, list[Event]]:
    """Commit the timeline up to `t_ms` with no new sample: fire every rule due by then."""
    t = _number(t_ms, "t_ms")
    if t < trk.now_ms:
        raise ValueError(f"t_ms must not go backwards: advance to {t} after {trk.now_ms}")
    events: list[Event] = []
    trk = _run_deadlines(trk, t, events)
    return replace(trk, now_ms=t), events


def update(trk: LaughTracker, t_ms: float, smile_prob: float | None,
           face: bool) -> tuple[LaughTracker, list[Event]]:
    """Apply one sample. `t_ms` must exceed the last sample's (and not precede `advance`)."""
    t = _number(t_ms, "t_ms")
    if trk.last_sample_ms is not None and t <= trk.last_sample_ms:
        raise ValueError(f"t_ms must increase: got {t} after {trk.last_sample_ms}")
    if t < trk.now_ms:
        raise ValueError(f"t_ms must not go backwards: got {t} after advance to {trk.now_ms}")
    face = _face(face)
    p = _prob(smile_prob) if face else None
    events: list[Event] = []
    trk = _run_deadlines(trk, t, events)  # everything due up to t happens before the sample
    cfg, laugh, absence = trk.cfg, trk.laugh, trk.absence
    if not face:
        if absence is None:
            absence = Absence(since_ms=t, laugh=laugh)
    else:
        assert p is not None
        if absence is not None:
            if absence.lost:
                events.append({"type": "face_back", "t_ms": t, "start_ms": absence.since_ms})
            absence = None
        if laugh is None and p >= cfg.threshold:
            laugh = Laugh(start_ms=t, last_ms=t, peak_prob=p, confirmed=False)
            events.append({"type": "laugh_start", "t_ms": t, "start_ms": t, "peak_prob": p})
        elif laugh is not None and p >= cfg.threshold - cfg.release:
            laugh = replace(laugh, last_ms=t, peak_prob=max(laugh.peak_prob, p))
        if laugh is not None and not laugh.confirmed and laugh.last_ms == t \
                and t - laugh.start_ms >= cfg.min_laugh_ms:
            laugh = replace(laugh, confirmed=True)
            events.append({"type": "laugh_confirmed", "t_ms": t, "start_ms": laugh.start_ms,
                           "peak_prob": laugh.peak_prob})
    trk = replace(trk, now_ms=t, last_sample_ms=t, laugh=laugh, absence=absence,
                  laugh_at_sample=laugh)
    trk = _run_deadlines(trk, t, events)  # rules due at t itself (absent_grace_ms == 0)
    return trk, events


def close(trk: LaughTracker) -> tuple[LaughTracker, list[Event]]:
    """End a laugh still open at `now_ms` (end of a video); its end is its last support."""
    if trk.laugh is None:
        return trk, []
    laugh = trk.laugh
    ev = {"type": "laugh_end", "t_ms": trk.now_ms, "start_ms": laugh.start_ms,
          "end_ms": laugh.last_ms, "peak_prob": laugh.peak_prob, "confirmed": laugh.confirmed}
    return replace(trk, laugh=None), [ev]


def track(samples: Iterable[Sample], cfg: JudgeConfig) -> tuple[LaughTracker | None, list[Event]]:
    """Run a fresh tracker (timeline from the first sample) over a series; no closing."""
    trk: LaughTracker | None = None
    events: list[Event] = []
    for i, s in enumerate(samples):
        if len(s) != 3:
            raise ValueError(f"sample {i} must be [t_ms, smile_prob, face], got {s!r}")
        if trk is None:
            trk = new_tracker(cfg, s[0])
        try:
            trk, ev = update(trk, s[0], s[1], s[2])
        except ValueError as e:
            raise ValueError(f"sample {i}: {e}") from None
        events.extend(ev)
    return trk, events


def segments(samples: Iterable[Sample], cfg: JudgeConfig) -> list[dict[str, float]]:
    """Confirmed laughs in a whole series (offline video scoring); forfeits do not apply."""
    trk, events = track(samples, cfg)
    if trk is not None:
        events += close(trk)[1]
    return [{"start_ms": e["start_ms"], "end_ms": e["end_ms"], "peak_prob": e["peak_prob"]}
            for e in events if e["type"] == "laugh_end" and e["confirmed"]]


# --- calibration -----------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), written out for the JS mirror."""
    xs = sorted(values)
    pos = q / 100.0 * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def calibrate(samples: Iterable[Sample], cfg: JudgeConfig) -> float:
    """A player's threshold from a few seconds of neutral face.

    clip(max(cfg.threshold, percentile(neutral probs, calib_percentile) + calib_margin),
    calib_min_threshold, calib_max_threshold): it only ever raises the model's threshold
    (for faces that read as smiling at rest) and never beyond calib_max_threshold.
    """
    probs: list[float] = []
    last: float | None = None
    n = 0
    for i, s in enumerate(samples):
        n += 1
        if len(s) != 3:
            raise ValueError(f"sample {i} must be [t_ms, smile_prob, face], got {s!r}")
        t = _number(s[0], f"sample {i}: t_ms")
        if last is not None and t <= last:
            raise ValueError(f"sample {i}: t_ms must increase: got {t} after {last}")
        last = t
        if _face(s[2]):
            probs.append(_prob(s[1]))
    if not probs:
        raise CalibrationError(
            f"calibration saw no face in {n} samples; look at the camera and try again")
    if len(probs) < cfg.calib_min_samples:
        raise CalibrationError(
            f"calibration needs at least {cfg.calib_min_samples} face samples, got {len(probs)}")
    raised = max(cfg.threshold, percentile(probs, cfg.calib_percentile) + cfg.calib_margin)
    return min(max(raised, cfg.calib_min_threshold), cfg.calib_max_threshold)


# --- round verdict -------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundState:
    """A round: one tracker per player, all started at `start_ms`, and their offences."""

    cfg: JudgeConfig  # shared rules (tie_ms); each tracker carries its own threshold
    start_ms: float  # round start: trackers begin here, samples before it are rejected
    end_ms: float  # time limit: offences at or after it do not count
    players: tuple[str, ...]  # player ids, in the order verdicts list them
    trackers: tuple[LaughTracker, ...]  # same order as players
    # per player: earliest offence {"reason", "offence_ms", "peak_prob"} before end_ms, or None
    offences: tuple[dict[str, Any] | None, ...]


def new_round(cfg: JudgeConfig, players: Sequence[tuple[str, float | None]],
              start_ms: float, end_ms: float) -> RoundState:
    """`players`: (id, calibrated threshold or None for cfg.threshold), in display order."""
    start, end = _number(start_ms, "start_ms"), _number(end_ms, "end_ms")
    if end <= start:
        raise ValueError(f"end_ms must be after start_ms, got {start} .. {end}")
    ids = [p[0] for p in players]
    if not ids or any(not isinstance(i, str) or not i for i in ids) or len(set(ids)) != len(ids):
        raise ValueError(f"players need unique non-empty string ids, got {ids}")
    trackers = tuple(new_tracker(
        cfg if thr is None else replace(cfg, threshold=_number(thr, "threshold")), start)
        for _, thr in players)
    return RoundState(cfg=cfg, start_ms=start, end_ms=end, players=tuple(ids),
                      trackers=trackers, offences=(None,) * len(ids))


def _offence(ev: Event) -> dict[str, Any] | None:
    """What an event makes its player guilty of: reason, when, and how hard they laughed
    (the laugh's peak so far; None for a plain absence)."""
    if ev["type"] == "laugh_confirmed":
        return {"reason": "laugh", "offence_ms": ev["start_ms"], "peak_prob": ev["peak_prob"]}
    if ev["type"] == "absent_forfeit":
        return {"reason": ev["reason"], "offence_ms": ev["offence_ms"],
                "peak_prob": ev["peak_prob"]}
    return None


def _with_events(rs: RoundState, i: int, trk: LaughTracker,
                 events: list[Event]) -> tuple[RoundState, list[Event]]:
    """Tag events with the player; the one that becomes the player's earliest offence also
    gets `offence: True` (so the caller can tell which event a verdict's loser lost by)."""
    best = rs.offences[i]
    tagged = []
    for ev in events:
        off = _offence(ev)
        if off is not None and off["offence_ms"] < rs.end_ms and (
                best is None or off["offence_ms"] < best["offence_ms"]):
            best = off
            ev = {**ev, "offence": True}
        tagged.append({"player": rs.players[i], **ev})
    trackers = rs.trackers[:i] + (trk,) + rs.trackers[i + 1:]
    offences = rs.offences[:i] + (best,) + rs.offences[i + 1:]
    return replace(rs, trackers=trackers, offences=offences), tagged


def _index(rs: RoundState, player: str) -> int:
    if player not in rs.players:
        raise ValueError(f"unknown player {player}; players: {', '.join(rs.players)}")
    return rs.players.index(player)


def round_update(rs: RoundState, player: str, t_ms: float, smile_prob: float | None,
                 face: bool) -> tuple[RoundState, list[Event]]:
    """One player's sample; events come back tagged with `player`."""
    i = _index(rs, player)
    trk, events = update(rs.trackers[i], t_ms, smile_prob, face)
    return _with_events(rs, i, trk, events)


def round_advance(rs: RoundState, t_ms: float,
                  player: str | None = None) -> tuple[RoundState, list[Event]]:
    """Server tick: commit every player's (or one player's) timeline up to `t_ms`.

    Players already past `t_ms` are left alone. Samples older than the committed time are
    rejected afterwards, so tick at `now - allowed network delay`.
    """
    t = _number(t_ms, "t_ms")
    out: list[Event] = []
    for i in range(len(rs.players)) if player is None else [_index(rs, player)]:
        if rs.trackers[i].now_ms < t:
            trk, events = advance(rs.trackers[i], t)
            rs, tagged = _with_events(rs, i, trk, events)
            out += tagged
    return rs, out


def _earliest_possible(trk: LaughTracker) -> float:
    """Lower bound on the offence time of anything this tracker can still report."""
    bound = trk.now_ms  # a new laugh or absence starts at a sample/deadline >= now
    if trk.laugh is not None and not trk.laugh.confirmed:
        bound = min(bound, trk.laugh.start_ms)  # may still confirm (by start+min+gap)
    a = trk.absence
    if a is not None and not a.forfeited:
        bound = min(bound, a.since_ms)  # may still forfeit (by since+forfeit)
        if a.laugh is not None:
            bound = min(bound, a.laugh.start_ms)  # may still be a hidden laugh
    if a is None and trk.laugh_at_sample is not None:
        # the stream may still go stale with this laugh cut off: a hidden laugh, even
        # after the laugh itself has ended (cleared by the next sample)
        bound = min(bound, trk.laugh_at_sample.start_ms)
    return bound


def round_verdict(rs: RoundState) -> dict[str, Any]:
    """{"status": "pending", "waiting_for": [...]}, {"status": "loss", "losers": [{"player",
    "reason", "offence_ms", "peak_prob"}, ...]} or {"status": "draw"}.

    The first offence (earliest offence_ms, ties within tie_ms) loses, decided only once
    no other player can still report an offence at or before it; "draw" once nobody can
    report one before end_ms. Once decided, later samples never change the verdict.
    """
    times = [o["offence_ms"] for o in rs.offences if o is not None]
    # offences at or before `cut` decide the round; without any, all of the round counts
    cut = min(times) + rs.cfg.tie_ms if times else math.inf
    waiting = []
    for pid, trk, off in zip(rs.players, rs.trackers, rs.offences, strict=True):
        if off is not None and off["offence_ms"] <= cut:
            continue  # already a loser: nothing it reports can change that
        bound = _earliest_possible(trk)
        if bound <= cut and bound < rs.end_ms:
            waiting.append(pid)
    if waiting:
        return {"status": "pending", "waiting_for": waiting}
    if not times:
        return {"status": "draw"}
    return {"status": "loss", "losers": [
        {"player": pid, **off} for pid, off in zip(rs.players, rs.offences, strict=True)
        if off is not None and off["offence_ms"] <= cut]}
