"""utjima.judge: the shared vectors (also run by tests/js/judge.test.mjs), the rules by
hand, and properties over random series."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from utjima import judge
from utjima.judge import JudgeConfig

VECTORS = json.loads((Path(__file__).parent / "vectors" / "judge.json").read_text())
CASES = VECTORS["cases"]
CFG = JudgeConfig()


def close_to(got, want, path="$"):
    """Exact structure, numbers within 1e-9; raises with the path of the first difference."""
    if isinstance(want, bool) or want is None or isinstance(want, str):
        assert got == want, f"{path}: {got!r} != {want!r}"
    elif isinstance(want, (int, float)):
        assert isinstance(got, (int, float)) and not isinstance(got, bool), f"{path}: {got!r}"
        assert abs(got - want) <= 1e-9, f"{path}: {got!r} != {want!r}"
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: {got!r} != {want!r}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            close_to(g, w, f"{path}[{i}]")
    else:
        assert isinstance(got, dict) and sorted(got) == sorted(want), f"{path}: {got!r} != {want!r}"
        for k in want:
            close_to(got[k], want[k], f"{path}.{k}")


def run_case(case: dict) -> dict:
    """What the implementation says for a vector case, in the vector's `expect` shape."""
    try:
        cfg = JudgeConfig.from_dict(case["config"])
        if case["kind"] == "config":
            return {"config": cfg.to_dict()}
        if case["kind"] == "calibrate":
            return {"threshold": judge.calibrate(case["samples"], cfg)}
        if case["kind"] == "track":
            trk, events = judge.track(case["samples"], cfg)
            if case["advance_to"] is not None:
                events += judge.advance(trk, case["advance_to"])[1]
            return {"events": events, "segments": judge.segments(case["samples"], cfg)}
    except ValueError as e:
        return {"error": str(e)}
    assert case["kind"] == "round", case["kind"]
    r = case["round"]
    rs = judge.new_round(cfg, r["players"], r["start_ms"], r["end_ms"])
    events, verdicts = [], []
    for i, m in enumerate(case["messages"]):
        try:
            if m[0] == "sample":
                rs, ev = judge.round_update(rs, *m[1:])
            else:
                rs, ev = judge.round_advance(rs, *m[1:])
        except ValueError as e:
            return {"error": str(e), "at": i}
        events += ev
        v = judge.round_verdict(rs)
        if not verdicts or verdicts[-1][1] != v:
            verdicts.append([i, v])
    return {"events": events, "verdicts": verdicts}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector(case):
    got, want = run_case(case), case["expect"]
    if "error" in want:
        assert "error" in got, f"expected an error containing {want['error']!r}, got {got}"
        assert want["error"] in got["error"]
        assert got.get("at") == want.get("at")
    else:
        close_to(got, want)


def test_vector_defaults_are_the_config_defaults():
    assert VECTORS["defaults"] == JudgeConfig().to_dict()


def test_vectors_cover_the_rules():
    names = {c["name"] for c in CASES}
    kinds = {c["kind"] for c in CASES}
    assert kinds == {"track", "calibrate", "config", "round"}
    for must in ("clean_laugh_10hz", "too_short_smile", "hysteresis_dip_above_release",
                 "gap_tolerance_missing_samples", "gap_too_long_ends_it",
                 "face_lost_briefly_during_laugh", "face_absent_long_forfeit",
                 "covered_camera_while_smiling", "error_non_monotonic_time",
                 "calibrate_resting_smile_raises", "calibrate_too_few_samples",
                 "round_first_starter_loses_despite_arrival_order", "round_draw_at_time_limit",
                 "round_simultaneous_tie_within_tie_ms"):
        assert must in names


# --- the rules, by hand ----------------------------------------------------------------------


def series(*parts):
    """parts: (t0, t1, prob) runs at 10 Hz; prob None = face absent."""
    return [[t, p, p is not None] for t0, t1, p in parts for t in range(t0, t1, 100)]


def test_clean_laugh_confirms_at_min_laugh_and_ends_after_gap():
    trk, events = judge.track(series((0, 1000, 0.1), (1000, 2000, 0.8), (2000, 3000, 0.1)), CFG)
    assert [(e["type"], e["t_ms"]) for e in events] == [
        ("laugh_start", 1000), ("laugh_confirmed", 1400), ("laugh_end", 1900 + CFG.max_gap_ms)]
    assert events[-1]["end_ms"] == 1900 and events[-1]["confirmed"] is True


def test_update_rejects_bad_samples_loudly():
    trk = judge.new_tracker(CFG, 0)
    trk, _ = judge.update(trk, 100, 0.2, True)
    with pytest.raises(ValueError, match="t_ms must increase: got 100.0 after 100.0"):
        judge.update(trk, 100, 0.2, True)
    with pytest.raises(ValueError, match="t_ms must increase"):
        judge.update(trk, 50, 0.2, True)
    for bad in (math.nan, math.inf, -0.1, 1.01, None, "0.5", True):
        with pytest.raises(ValueError, match="smile_prob"):
            judge.update(trk, 200, bad, True)
    with pytest.raises(ValueError, match="face must be true or false"):
        judge.update(trk, 200, 0.2, "yes")
    trk2, _ = judge.advance(trk, 500)
    with pytest.raises(ValueError, match="must not go backwards"):
        judge.update(trk2, 400, 0.2, True)
    with pytest.raises(ValueError, match="must not go backwards"):
        judge.advance(trk2, 499)
    # face absent: smile_prob is ignored, whatever it is
    judge.update(trk, 200, math.nan, False)


def test_state_is_immutable_and_update_is_pure():
    trk = judge.new_tracker(CFG, 0)
    a = judge.update(trk, 0, 0.9, True)
    b = judge.update(trk, 0, 0.9, True)
    assert a == b and trk.laugh is None  # same input, same output; input untouched
    with pytest.raises(AttributeError):
        trk.now_ms = 5  # type: ignore[misc]


def test_numpy_inputs_from_the_offline_pipeline():
    t = np.arange(0, 2000, 100, dtype=np.float64)
    p = np.where((t >= 500) & (t < 1500), 0.8, 0.1).astype(np.float32)
    face = np.ones_like(t, dtype=bool)
    segs = judge.segments(list(zip(t, p, face, strict=True)), CFG)
    assert [(s["start_ms"], s["end_ms"]) for s in segs] == [(500.0, 1400.0)]


def test_segments_of_empty_series():
    assert judge.segments([], CFG) == []


def test_config_from_dict_lists_valid_keys():
    with pytest.raises(ValueError, match="valid keys: threshold, release"):
        JudgeConfig.from_dict({"thresh": 0.4})
    assert JudgeConfig.from_dict(None) == CFG


def test_hysteresis_can_confirm_what_a_plain_threshold_splits():
    # Why the property below counts *all* laughs: hysteresis may confirm a laugh that a
    # plain threshold splits into short unconfirmed ones (more confirmed segments).
    s = series((0, 1000, 0.1), (1000, 1300, 0.8), (1300, 1500, 0.45), (1500, 1900, 0.8))
    assert len(judge.segments(s, CFG)) == 1
    assert len(judge.segments(s, JudgeConfig(release=0.0))) == 0


def test_calibrate_formula():
    probs = [0.3 + 0.01 * (i % 10) for i in range(40)]
    samples = [[i * 100, p, True] for i, p in enumerate(probs)]
    want = float(np.percentile(probs, 95)) + CFG.calib_margin  # numpy's linear percentile
    assert judge.calibrate(samples, CFG) == pytest.approx(max(want, CFG.threshold), abs=1e-12)
    with pytest.raises(judge.CalibrationError, match="no face"):
        judge.calibrate([[0, None, False]] * 1, CFG)


def test_round_rejects_bad_setup():
    with pytest.raises(ValueError, match="end_ms must be after start_ms"):
        judge.new_round(CFG, [("a", None)], 100, 100)
    with pytest.raises(ValueError, match="unique"):
        judge.new_round(CFG, [("a", None), ("a", None)], 0, 100)
    with pytest.raises(ValueError, match="release must be in"):
        judge.new_round(CFG, [("a", 0.05)], 0, 100)  # a threshold below release


def test_judge_is_pure_python():
    code = ("import sys, utjima.judge; "
            "print(sorted(m for m in ('numpy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- properties over random series ---------------------------------------------------------


def random_series(rng: random.Random, n: int = 150, t0: float = 0.0) -> list[list]:
    """A jittery 10-30 Hz stream: drifting prob, bursts of laughing, face drops, holes."""
    out, t, p, face = [], t0, 0.1, True
    for _ in range(n):
        t += rng.choice([33, 33, 34, 50, 100, 100]) + rng.random() * 5
        if rng.random() < 0.03:
            t += rng.uniform(150, 1200)  # dropped samples / network hole
        if rng.random() < 0.04:
            face = not face
        if rng.random() < 0.1:
            p = rng.choice([0.05, 0.3, 0.45, 0.55, 0.8, 0.95])
        p = min(1.0, max(0.0, p + rng.gauss(0, 0.05)))
        out.append([t, p if face else None, face])
    return out


def random_player(rng: random.Random, until: float) -> list[list]:
    """A round player's stream: neutral stretches, laughs, face drops and holes, at 10-30 Hz,
    ending at a random point (a stream may die mid-laugh)."""
    out, t = [], rng.uniform(0, 100)
    while t < until:
        kind = rng.choice(["neutral", "laugh", "laugh", "hide", "hole"])
        span = rng.uniform(100, {"neutral": 1200, "laugh": 700, "hide": 4000, "hole": 1500}[kind])
        step = rng.choice([100 / 3, 50.0, 100.0])
        if kind == "hole":
            t += span
            continue
        for _ in range(max(1, int(span / step))):
            p = {"neutral": rng.uniform(0, 0.45), "laugh": rng.uniform(0.45, 1.0)}.get(kind)
            out.append([t, p, kind != "hide"])
            t += step * rng.uniform(0.9, 1.1)
    return out


def laugh_starts(samples, cfg):
    trk, events = judge.track(samples, cfg)
    events += judge.close(trk)[1]
    return [e for e in events if e["type"] == "laugh_start"]


def test_segments_never_overlap_and_last_min_laugh():
    rng = random.Random(0)
    for _ in range(60):
        cfg = JudgeConfig(min_laugh_ms=rng.choice([0, 200, 400]), release=rng.choice([0, 0.1, 0.2]))
        segs = judge.segments(random_series(rng), cfg)
        for s in segs:
            assert s["end_ms"] - s["start_ms"] >= cfg.min_laugh_ms
            assert cfg.threshold <= s["peak_prob"] <= 1.0
        for a, b in pairwise(segs):
            assert a["end_ms"] < b["start_ms"]


def test_hysteresis_never_starts_more_laughs_and_covers_plain_segments():
    rng = random.Random(1)
    plain, hyst = JudgeConfig(release=0.0), JudgeConfig(release=0.15)
    for _ in range(60):
        s = random_series(rng)
        assert len(laugh_starts(s, hyst)) <= len(laugh_starts(s, plain))
        hs = judge.segments(s, hyst)
        for seg in judge.segments(s, plain):
            assert any(h["start_ms"] <= seg["start_ms"] and seg["end_ms"] <= h["end_ms"]
                       for h in hs)


def test_events_do_not_depend_on_how_often_the_caller_ticks():
    rng = random.Random(2)
    for _ in range(40):
        s = random_series(rng)
        trk, want = judge.track(s, CFG)
        want += judge.advance(trk, s[-1][0] + 5000)[1]
        trk, got = judge.new_tracker(CFG, s[0][0]), []
        for (t, p, face), nxt in zip(s, s[1:] + [[s[-1][0] + 5000]], strict=True):
            trk, ev = judge.update(trk, t, p, face)
            got += ev
            for _ in range(rng.randint(0, 3)):  # ticks anywhere before the next sample
                trk, ev = judge.advance(trk, rng.uniform(trk.now_ms, nxt[0]))
                got += ev
        got += judge.advance(trk, s[-1][0] + 5000)[1]
        assert got == want
        assert all(a["t_ms"] <= b["t_ms"] for a, b in pairwise(got))


def test_round_decides_online_what_hindsight_decides():
    """With random arrival order, streams that die, and ticks at any time, the first
    decided verdict equals the verdict with every sample in, and never changes afterwards
    (the fairness claim of docs/judge.md). Each loser's offence is the one its last event
    marked `offence` says (what the server stores as the decisive event)."""
    rng = random.Random(3)
    decided_early = 0
    for _ in range(150):
        ids = ["a", "b", "c"][: rng.randint(2, 3)]
        end = rng.uniform(1500, 4000)
        streams = {pid: random_player(rng, rng.uniform(200, end + 1500)) or [[0.0, 0.1, True]]
                   for pid in ids}
        horizon = max(max(s[-1][0] for s in streams.values()), end) + CFG.absent_forfeit_ms + 1000
        rs = judge.new_round(CFG, [(pid, None) for pid in ids], 0, end)
        pos = dict.fromkeys(ids, 0)
        first, events = None, []
        for _step in range(400):
            pid = rng.choice(ids)
            trk, s = rs.trackers[rs.players.index(pid)], streams[pid]
            nxt = s[pos[pid]][0] if pos[pid] < len(s) else horizon
            if pos[pid] < len(s) and rng.random() < 0.75:
                rs, ev = judge.round_update(rs, pid, *s[pos[pid]])
                pos[pid] += 1
            elif trk.now_ms < nxt:  # a tick, never past this player's next sample
                rs, ev = judge.round_advance(rs, min(nxt, trk.now_ms + rng.uniform(0, 300)), pid)
            else:
                ev = []
            events += ev
            v = judge.round_verdict(rs)
            if first is None and v["status"] != "pending":
                first = v
                decided_early += 1
            if first is not None:
                assert v == first
        for pid in ids:
            for smp in streams[pid][pos[pid]:]:
                rs, ev = judge.round_update(rs, pid, *smp)
                events += ev
                assert first is None or judge.round_verdict(rs) == first
        rs, ev = judge.round_advance(rs, horizon)
        events += ev
        final = judge.round_verdict(rs)
        assert final["status"] != "pending"
        assert first is None or first == final
        marked = {ev["player"]: ev for ev in events if ev.get("offence")}  # the last one each
        for lo in final.get("losers", []):
            ev = marked[lo["player"]]
            assert ev["type"] in ("laugh_confirmed", "absent_forfeit")
            assert lo["offence_ms"] == ev.get("offence_ms", ev["start_ms"])
            assert (lo["reason"], lo["peak_prob"]) == (ev.get("reason", "laugh"), ev["peak_prob"])
    assert decided_early > 50  # the online path was really exercised
