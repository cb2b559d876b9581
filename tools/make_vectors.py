"""Write tests/vectors/judge.json and tests/vectors/streaming.json.

The cases (inputs) are written here by hand; the expectations come from the Python
implementation and were reviewed by hand against docs/judge.md (the `--check` summary
prints them readably). Regenerate only when a rule changes on purpose, then review the
diff: the vectors are the contract the JS mirror is held to.

    .venv/bin/python tools/make_vectors.py          # rewrite both files
    .venv/bin/python tools/make_vectors.py --check  # fail if the files are out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from utjima import judge
from utjima.streaming import FeatureWindow, window_indices

ROOT = Path(__file__).resolve().parents[1]
JUDGE_JSON = ROOT / "tests" / "vectors" / "judge.json"
STREAMING_JSON = ROOT / "tests" / "vectors" / "streaming.json"


# --- sample builders ---------------------------------------------------------------------


def run(t0: float, t1: float, step: float, prob: float | None, face: bool = True) -> list[list]:
    """Samples every `step` ms in [t0, t1)."""
    n = int(round((t1 - t0) / step))
    return [[t0 + i * step, prob, face] for i in range(n)]


def hide(t0: float, t1: float, step: float = 100) -> list[list]:
    return run(t0, t1, step, None, False)


# --- judge cases -----------------------------------------------------------------------------


def track_cases() -> list[dict[str, Any]]:
    c: list[dict[str, Any]] = []

    def add(name: str, samples: list, config: dict | None = None, advance_to: float | None = None,
            note: str = "") -> None:
        c.append({"name": name, "kind": "track", "note": note, "config": config or {},
                  "samples": samples, "advance_to": advance_to})

    add("clean_laugh_10hz",
        run(0, 1000, 100, 0.1) + run(1000, 1500, 100, 0.8) + [[1500, 0.9, True]]
        + run(1600, 2000, 100, 0.8) + run(2000, 3000, 100, 0.1),
        note="starts at 1000, confirmed at 1400 (400 ms), ends 250 ms after its last support 1900")
    add("clean_laugh_30hz",
        [[i * 100 / 3, 0.05 if i < 30 or i >= 60 else 0.7 + 0.01 * (i % 5), True]
         for i in range(90)],
        note="float sample times; confirmed at the first sample >= start + 400")
    add("too_short_smile",
        run(0, 1000, 100, 0.1) + run(1000, 1400, 100, 0.8) + run(1400, 2000, 100, 0.1),
        note="300 ms above threshold: laugh_start and an unconfirmed laugh_end, no segment")
    dip = run(0, 1000, 100, 0.1) + run(1000, 1300, 100, 0.8) + run(1300, 1500, 100, 0.45) \
        + run(1500, 1900, 100, 0.8) + run(1900, 2500, 100, 0.1)
    add("hysteresis_dip_above_release", dip,
        note="0.45 >= 0.5 - 0.1 keeps supporting the laugh: one laugh 1000..1800")
    add("no_hysteresis_same_dip", dip, config={"release": 0.0},
        note="same samples with release 0: the 200 ms dip plus the sample gap splits it into "
             "two short laughs, neither confirmed")
    add("dip_below_release_bridged",
        run(0, 1000, 100, 0.1) + run(1000, 1600, 100, 0.8) + [[1600, 0.2, True]]
        + run(1700, 2100, 100, 0.8) + run(2100, 2600, 100, 0.1),
        note="one sample at 0.2: 200 ms without support < max_gap_ms 250, bridged")
    add("gap_tolerance_missing_samples",
        run(0, 1000, 100, 0.1) + run(1000, 1300, 100, 0.8) + run(1420, 2000, 100, 0.8)
        + run(2000, 2500, 100, 0.1),
        note="no samples 1200..1420 (220 ms < 250): one laugh, confirmed at 1420")
    add("gap_too_long_ends_it",
        run(0, 1000, 100, 0.1) + run(1000, 1400, 100, 0.8) + run(1600, 2300, 100, 0.8)
        + run(2300, 2800, 100, 0.1),
        note="no samples 1300..1600 (300 ms >= 250): the first laugh ends at 1550 unconfirmed, "
             "a second starts at 1600")
    add("gap_exactly_max_gap_ends_it",
        run(0, 1000, 100, 0.1) + [[1000, 0.8, True], [1100, 0.8, True]] + run(1350, 1900, 100, 0.8)
        + run(1900, 2400, 100, 0.1),
        note="support at 1100 then 1350: a gap of exactly max_gap_ms ends the laugh (bridged "
             "only if shorter)")
    add("threshold_boundaries",
        run(0, 500, 100, 0.1) + [[500, 0.5, True]] + run(600, 1000, 100, 0.375)
        + run(1000, 1300, 100, 0.37),
        config={"release": 0.125},
        note="0.5 == threshold starts; 0.375 == threshold - release supports (confirmed at "
             "900); 0.37 does not, so the laugh ends at 900 + 250")
    add("min_laugh_zero_confirms_at_start",
        run(0, 300, 100, 0.1) + [[300, 0.7, True]] + run(400, 1000, 100, 0.1),
        config={"min_laugh_ms": 0},
        note="min_laugh_ms 0: laugh_start and laugh_confirmed on the same sample")
    add("open_laugh_closed_at_last_sample",
        run(0, 500, 100, 0.1) + run(500, 1200, 100, 0.85),
        note="no laugh_end event (still open), but segments close it at its last support 1100")
    add("face_lost_briefly_during_laugh",
        run(0, 1000, 100, 0.1) + run(1000, 1500, 100, 0.8) + hide(1500, 1600)
        + run(1600, 2100, 100, 0.8) + run(2100, 2600, 100, 0.1),
        note="one face=false sample mid-laugh: bridged like any gap, no face events")
    add("face_lost_briefly_idle",
        run(0, 1000, 100, 0.1) + hide(1000, 1900) + run(1900, 2500, 100, 0.1),
        note="900 ms without a face < absent_grace_ms: silent")
    add("face_lost_and_back",
        run(0, 1000, 100, 0.1) + hide(1000, 2500) + run(2500, 3000, 100, 0.1),
        note="face_lost at since + grace (2000), face_back at the first face sample, no forfeit")
    add("face_absent_long_forfeit",
        run(0, 1000, 100, 0.1) + hide(1000, 4600),
        note="absent from 1000: face_lost 2000, absent_forfeit 4000 (offence 1000)")
    add("face_false_prob_ignored",
        [[0, 0.1, True], [100, None, False], [200, 7, False], [300, 0.2, True]],
        note="smile_prob is ignored (any value, or null) when face is false")
    add("covered_camera_while_smiling",
        run(0, 1000, 100, 0.1) + run(1000, 1300, 100, 0.8) + hide(1300, 2600),
        advance_to=6000,
        note="face lost mid-laugh: the laugh ends unconfirmed, but 1000 ms later it is a "
             "hidden_laugh forfeit with offence at the laugh's start; no second forfeit")
    add("no_face_from_start",
        hide(0, 1600),
        note="a tracker counts as absent from its first instant until it sees a face")
    add("stale_stream",
        run(0, 1100, 100, 0.1), advance_to=5000,
        note="samples stop after 1000: stale at 1500 (max_sample_gap_ms), face_lost 2500, "
             "absent_forfeit 4500 with offence 1500")
    add("stale_mid_laugh",
        run(0, 1000, 100, 0.1) + run(1000, 1300, 100, 0.8), advance_to=5000,
        note="the stream dies mid-laugh: laugh ends at 1450, stale at 1700, and that is a "
             "hidden laugh (offence 1000) at 2700")
    add("late_samples_after_stale_gap",
        run(0, 1100, 100, 0.1) + run(1700, 2000, 100, 0.1),
        note="a 700 ms hole is a (silent) absence 1500..1700, not an error")
    # errors (the network boundary validates loudly)
    add("error_non_monotonic_time", [[0, 0.1, True], [100, 0.1, True], [50, 0.1, True]])
    add("error_repeated_time", [[0, 0.1, True], [100, 0.1, True], [100, 0.2, True]])
    add("error_prob_out_of_range", [[0, 0.1, True], [100, 1.2, True]])
    add("error_prob_null_with_face", [[0, 0.1, True], [100, None, True]])
    add("error_face_not_bool", [[0, 0.1, True], [100, 0.1, 1]])
    add("error_time_not_number", [[0, 0.1, True], ["100", 0.1, True]])
    return c


def calibrate_cases() -> list[dict[str, Any]]:
    c: list[dict[str, Any]] = []

    def add(name: str, samples: list, config: dict | None = None, note: str = "") -> None:
        c.append({"name": name, "kind": "calibrate", "note": note, "config": config or {},
                  "samples": samples})

    neutral = [[i * 100, round(0.02 + 0.01 * (i % 7), 2), True] for i in range(30)]
    add("calibrate_neutral_keeps_base", neutral,
        note="p95 0.08 + 0.1 < 0.5: the model's threshold stays")
    resting = [[i * 100, round(0.45 + 0.02 * (i % 8), 2), True] for i in range(30)]
    add("calibrate_resting_smile_raises", resting,
        note="a face that reads ~0.5 at rest: threshold p95 + margin")
    add("calibrate_grinning_clipped", [[i * 100, 0.97, True] for i in range(30)],
        note="grinning through calibration buys at most calib_max_threshold")
    add("calibrate_low_base_clipped_up", [[i * 100, 0.01, True] for i in range(30)],
        config={"threshold": 0.1, "release": 0.05},
        note="a base threshold below calib_min_threshold is raised to it")
    add("calibrate_some_face_missing",
        [[i * 100, 0.3, True] if i % 5 else [i * 100, None, False] for i in range(25)],
        note="20 face samples out of 25: enough; p95 of 0.3s + 0.1 = 0.4 < 0.5")
    add("calibrate_too_few_samples", [[i * 100, 0.1, True] for i in range(10)])
    add("calibrate_no_face", [[i * 100, None, False] for i in range(30)])
    add("calibrate_empty", [])
    add("calibrate_non_monotonic", [[0, 0.1, True], [100, 0.1, True], [100, 0.1, True]])
    return c


def config_cases() -> list[dict[str, Any]]:
    return [{"name": name, "kind": "config", "config": cfg} for name, cfg in [
        ("config_defaults", {}),
        ("config_override", {"threshold": 0.65, "min_laugh_ms": 300}),
        ("config_error_release_ge_threshold", {"threshold": 0.3, "release": 0.3}),
        ("config_error_unknown_key", {"treshold": 0.5}),
        ("config_error_sample_gap_below_gap", {"max_gap_ms": 600}),
        ("config_error_forfeit_below_grace", {"absent_forfeit_ms": 500}),
        ("config_error_not_a_number", {"threshold": "0.5"}),
        ("config_error_bool", {"tie_ms": True}),
        ("config_error_fractional_min_samples", {"calib_min_samples": 2.5}),
    ]]


def interleave(*streams: list[list]) -> list[list]:
    """Merge per-player ["sample", pid, t, p, face] lists by time (stable by argument order)."""
    msgs = [m for s in streams for m in s]
    return sorted(msgs, key=lambda m: m[2])


def said(pid: str, samples: list[list]) -> list[list]:
    return [["sample", pid, *s] for s in samples]


def round_cases() -> list[dict[str, Any]]:
    c: list[dict[str, Any]] = []

    def add(name: str, players: list, start: float, end: float, messages: list,
            config: dict | None = None, note: str = "") -> None:
        c.append({"name": name, "kind": "round", "note": note, "config": config or {},
                  "round": {"players": players, "start_ms": start, "end_ms": end},
                  "messages": messages})

    ab = [["a", None], ["b", None]]
    # a's laugh starts first (700) but its samples arrive late; b's (1000) confirms first.
    a = run(0, 700, 100, 0.1) + run(700, 1700, 100, 0.8)
    b = run(0, 1000, 100, 0.1) + run(1000, 1700, 100, 0.8)
    add("round_first_starter_loses_despite_arrival_order", ab, 0, 60000,
        said("a", a[:7]) + said("b", b) + said("a", a[7:]),
        note="b's laugh (1000) confirms first in arrival order, but a's started at 700; the "
             "verdict waits while a's timeline is behind and a is declared the loser")
    add("round_draw_at_time_limit", ab, 0, 2000,
        interleave(said("a", run(0, 2100, 100, 0.1)),
                   said("b", run(0, 1800, 100, 0.1) + run(1800, 2100, 100, 0.8)))
        + [["advance", 2100]] + said("b", run(2100, 2400, 100, 0.1)),
        note="b's candidate from 1800 must resolve before the draw: it ends unconfirmed at 2250")
    add("round_laugh_started_before_limit_confirmed_after", ab, 0, 2000,
        interleave(said("a", run(0, 2500, 100, 0.1)),
                   said("b", run(0, 1800, 100, 0.1) + run(1800, 2500, 100, 0.8))),
        note="b's laugh starts at 1800 < end_ms and confirms at 2200: b loses")
    abc = [["a", None], ["b", None], ["c", None]]
    add("round_simultaneous_tie_within_tie_ms", abc, 0, 60000,
        interleave(said("a", run(0, 1000, 100, 0.1) + run(1000, 1800, 100, 0.8)),
                   said("b", run(50, 1050, 100, 0.1) + run(1050, 1850, 100, 0.8)),
                   said("c", run(0, 1200, 100, 0.1) + run(1200, 2000, 100, 0.8))),
        note="a starts 1000, b 1050 (within tie_ms 100): both lose; c (1200) does not")
    add("round_exact_tie_with_tie_ms_zero", abc, 0, 60000,
        interleave(said("a", run(0, 1000, 100, 0.1) + run(1000, 1600, 100, 0.8)),
                   said("b", run(0, 1000, 100, 0.1) + run(1000, 1600, 100, 0.8)),
                   said("c", run(0, 1100, 100, 0.1) + run(1100, 1600, 100, 0.8))),
        config={"tie_ms": 0},
        note="tie_ms 0: a and b start at exactly 1000 and both lose; c at 1100 does not")
    add("round_absence_forfeit_beats_later_laugh", ab, 0, 60000,
        interleave(said("a", run(0, 500, 100, 0.1) + hide(500, 4000)),
                   said("b", run(0, 2000, 100, 0.1) + run(2000, 4000, 100, 0.8))),
        note="a hides from 500; b laughs at 2000 but the verdict waits for a, who forfeits at "
             "3500 with offence 500")
    add("round_absence_returns_then_laugh_loses", ab, 0, 60000,
        interleave(said("a", run(0, 500, 100, 0.1) + hide(500, 2900) + run(2900, 3500, 100, 0.1)),
                   said("b", run(0, 2000, 100, 0.1) + run(2000, 3500, 100, 0.8))),
        note="a is back at 2900 before forfeiting, so b's laugh (2000) loses, decided then")
    add("round_hidden_laugh_loses", ab, 0, 60000,
        interleave(said("a", run(0, 1000, 100, 0.1) + run(1000, 1300, 100, 0.8) + hide(1300, 2500)),
                   said("b", run(0, 1200, 100, 0.1) + run(1200, 2500, 100, 0.8))),
        note="a starts laughing at 1000 and covers the camera at 1300; b's laugh (1200) "
             "confirms at 1600, but a's hidden laugh (offence 1000) lands at 2300: a loses")
    add("round_disconnect_after_other_laughs", ab, 0, 60000,
        interleave(said("a", run(0, 1200, 100, 0.1) + run(1200, 1800, 100, 0.8)),
                   said("b", run(0, 1100, 100, 0.1)))
        + [["advance", 1300], ["advance", 1400]],
        note="b's stream stops after 1000; a laughs at 1200. b's timeline is committed by "
             "ticks; b's stale absence starts at 1500 > 1300, so a loses at the 1400 tick")
    add("round_disconnect_forfeits", ab, 0, 60000,
        interleave(said("a", run(0, 3000, 100, 0.1) + run(3000, 3600, 100, 0.8)),
                   said("b", run(0, 1100, 100, 0.1)))
        + [["advance", t] for t in (3600, 4000, 4500)],
        note="b goes silent after 1000: stale from 1500, forfeit at 4500 with offence 1500, "
             "before a's laugh at 3000")
    add("round_disconnect_mid_laugh", ab, 0, 60000,
        interleave(said("a", run(0, 1200, 100, 0.1) + run(1200, 1800, 100, 0.8)),
                   said("b", run(0, 1000, 100, 0.1) + run(1000, 1300, 100, 0.8)))
        + [["advance", t] for t in (1600, 1800, 2700)],
        note="b starts laughing at 1000 and its stream dies at 1200. b's laugh ends unconfirmed "
             "at 1450, but the stale stream (from 1700) makes it a hidden laugh at 2700 with "
             "offence 1000, so the verdict must not declare a (1200) the loser in between")
    add("round_laughing_at_start", ab, 1000, 60000,
        interleave(said("a", run(1000, 1600, 100, 0.9)), said("b", run(1000, 1600, 100, 0.1))),
        note="a laughing when the round starts: the laugh starts at the first sample of the round")
    add("round_absent_at_time_limit", ab, 0, 2000,
        interleave(said("a", run(0, 1900, 100, 0.1) + hide(1900, 2500) + run(2500, 2700, 100, 0.1)),
                   said("b", run(0, 2700, 100, 0.1))),
        note="a hides from 1900 (< end_ms): the draw waits until a is back (2500)")
    add("round_calibrated_thresholds", [["a", 0.75], ["b", None]], 0, 60000,
        interleave(said("a", run(0, 1000, 100, 0.1) + run(1000, 2000, 100, 0.7)),
                   said("b", run(0, 1500, 100, 0.1) + run(1500, 2000, 100, 0.7))),
        note="a's calibrated threshold 0.75: 0.7 is not a laugh for a, so b loses")
    add("round_loser_peak_is_the_peak_at_confirmation", ab, 0, 60000,
        interleave(said("a", run(0, 1000, 100, 0.1) + [[1000, 0.6, True], [1100, 0.9, True]]
                        + run(1200, 1500, 100, 0.75) + run(1500, 2000, 100, 0.95)),
                   said("b", run(0, 2000, 100, 0.1))),
        note="a's laugh peaks at 0.9 by its confirmation (1400): the verdict carries 0.9, and "
             "the 0.95 samples after it was decided do not change it")
    add("round_hidden_laugh_carries_its_peak", ab, 0, 60000,
        interleave(said("a", run(0, 1000, 100, 0.1) + [[1000, 0.6, True], [1100, 0.85, True],
                                                          [1200, 0.7, True]] + hide(1300, 2500)),
                   said("b", run(0, 2500, 100, 0.1))),
        note="a laughs (peak 0.85) and covers the camera before confirming: the hidden_laugh "
             "forfeit at 2300 carries the laugh's start 1000 and its peak 0.85")
    add("round_error_sample_before_start", ab, 1000, 60000,
        [["sample", "a", 900, 0.1, True]])
    add("round_error_unknown_player", ab, 0, 60000, [["sample", "z", 100, 0.1, True]])
    return c


# --- running the cases (expectations) -------------------------------------------------------


def _error(e: Exception) -> dict[str, str]:
    """The language-neutral part of the message: what follows "got" is a value's repr."""
    msg = str(e)
    for sep in ("; got ", ", got ", " got "):
        msg = msg.split(sep)[0]
    return {"error": msg}


def expect_track(case: dict) -> dict:
    cfg = judge.JudgeConfig.from_dict(case["config"])
    try:
        trk, events = judge.track(case["samples"], cfg)
        if case["advance_to"] is not None:
            events += judge.advance(trk, case["advance_to"])[1]
        return {"events": events, "segments": judge.segments(case["samples"], cfg)}
    except ValueError as e:
        return _error(e)


def expect_calibrate(case: dict) -> dict:
    try:
        cfg = judge.JudgeConfig.from_dict(case["config"])
        return {"threshold": judge.calibrate(case["samples"], cfg)}
    except ValueError as e:
        return _error(e)


def expect_config(case: dict) -> dict:
    try:
        return {"config": judge.JudgeConfig.from_dict(case["config"]).to_dict()}
    except ValueError as e:
        return _error(e)


def play_round(case: dict) -> dict:
    """Run a round case: events, verdict changes [[message index, verdict], ...]."""
    cfg = judge.JudgeConfig.from_dict(case["config"])
    r = case["round"]
    rs = judge.new_round(cfg, r["players"], r["start_ms"], r["end_ms"])
    events: list = []
    verdicts: list = []
    for i, m in enumerate(case["messages"]):
        try:
            if m[0] == "sample":
                rs, ev = judge.round_update(rs, m[1], m[2], m[3], m[4])
            else:
                rs, ev = judge.round_advance(rs, m[1], m[2] if len(m) > 2 else None)
        except ValueError as e:
            return {**_error(e), "at": i}
        events += ev
        v = judge.round_verdict(rs)
        if not verdicts or verdicts[-1][1] != v:
            verdicts.append([i, v])
    return {"events": events, "verdicts": verdicts}


# --- streaming cases --------------------------------------------------------------------------


def streaming_cases() -> list[dict[str, Any]]:
    cases = [
        ("regular_frames", 4, 100.0, [i * 100.0 for i in range(8)]),
        ("fresh_stream_repeats_first_frame", 5, 100.0, [1000.0, 1100.0, 1200.0]),
        ("irregular_times", 4, 100.0, [0.0, 37.0, 120.0, 133.0, 260.0, 400.0, 401.0, 650.0, 655.0]),
        ("faster_than_interval_30fps", 4, 100.0, [i * 100 / 3 for i in range(16)]),
        ("slower_than_interval", 4, 100.0, [i * 250.0 for i in range(6)]),
        ("float_interval_exact_hits", 3, 100 / 3, [i * 100 / 3 for i in range(8)]),
        ("big_gap_then_burst", 3, 200.0, [0.0, 100.0, 2000.0, 2010.0, 2020.0, 2400.0]),
    ]
    out = []
    for name, n_frames, interval, times in cases:
        windows = [window_indices(times[: i + 1], t, n_frames, interval)
                   for i, t in enumerate(times)]
        # cross-check the pruning FeatureWindow against the full-history rule
        fw = FeatureWindow(n_frames, interval)
        for i, t in enumerate(times):
            got = fw.push(t, np.array([i, i + 0.5], dtype=np.float32))
            assert got[:, 0].astype(int).tolist() == windows[i], (name, i)
        out.append({"name": name, "n_frames": n_frames, "frame_interval_ms": interval,
                    "times_ms": times, "expect": {"windows": windows}})
    out.append({"name": "error_non_increasing_push", "n_frames": 3, "frame_interval_ms": 100.0,
                "times_ms": [0.0, 100.0, 100.0], "expect": {"error": "t_ms must increase"}})
    out.append({"name": "error_empty_window_indices", "n_frames": 3, "frame_interval_ms": 100.0,
                "times_ms": [], "expect": {"error": "needs at least one frame"}})
    return out


def build() -> tuple[dict, dict]:
    cases = []
    for case in track_cases():
        cases.append({**case, "expect": expect_track(case)})
    for case in calibrate_cases():
        cases.append({**case, "expect": expect_calibrate(case)})
    for case in config_cases():
        cases.append({**case, "expect": expect_config(case)})
    for case in round_cases():
        cases.append({**case, "expect": play_round(case)})
    judge_doc = {
        "schema": "utjima.judge-vectors/1",
        "about": "Shared by tests/test_judge.py and tests/js/judge.test.mjs; see docs/judge.md. "
                 "Numbers compare within 1e-9; an expected error is a substring of the message.",
        "defaults": judge.JudgeConfig().to_dict(),
        "cases": cases,
    }
    streaming_doc = {
        "schema": "utjima.streaming-vectors/1",
        "about": "Window indices per pushed frame (absolute frame numbers); shared by "
                 "tests/test_streaming.py and tests/js/streaming.test.mjs.",
        "cases": streaming_cases(),
    }
    return judge_doc, streaming_doc


def dumps(doc: dict) -> str:
    """One case per block, one sample/event per line: reviewable diffs, modest size."""
    def compact(v: Any) -> str:
        return json.dumps(v, ensure_ascii=False, separators=(", ", ": "))

    lines = ["{"]
    keys = list(doc)
    for k in keys:
        if k != "cases":
            lines.append(f"  {json.dumps(k)}: {compact(doc[k])},")
    lines.append('  "cases": [')
    for ci, case in enumerate(doc["cases"]):
        lines.append("    {")
        items = list(case.items())
        for ki, (k, v) in enumerate(items):
            comma = "," if ki < len(items) - 1 else ""
            if k == "expect" and isinstance(v, dict):
                inner = list(v.items())
                lines.append('      "expect": {')
                for ii, (ek, ev) in enumerate(inner):
                    c2 = "," if ii < len(inner) - 1 else ""
                    if isinstance(ev, list) and ev:
                        lines.append(f"        {json.dumps(ek)}: [")
                        lines += [f"          {compact(x)}{',' if xi < len(ev) - 1 else ''}"
                                  for xi, x in enumerate(ev)]
                        lines.append(f"        ]{c2}")
                    else:
                        lines.append(f"        {json.dumps(ek)}: {compact(ev)}{c2}")
                lines.append(f"      }}{comma}")
            else:
                lines.append(f"      {json.dumps(k)}: {compact(v)}{comma}")
        lines.append("    }" + ("," if ci < len(doc["cases"]) - 1 else ""))
    lines.append("  ]")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == json.loads(json.dumps(doc)), "dumps must round-trip"
    return text


def summary(doc: dict) -> None:
    for case in doc["cases"]:
        print(f"== {case['name']}  {case.get('note', '')}")
        exp = case["expect"]
        for k, v in exp.items():
            if isinstance(v, list):
                for x in v:
                    print(f"   {k}: {x}")
            else:
                print(f"   {k}: {v}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the vector files are out of date")
    ap.add_argument("--summary", action="store_true", help="print every case's expectation")
    a = ap.parse_args(argv)
    judge_doc, streaming_doc = build()
    if a.summary:
        summary(judge_doc)
    for path, doc in ((JUDGE_JSON, judge_doc), (STREAMING_JSON, streaming_doc)):
        text = dumps(doc)
        if a.check:
            if not path.is_file() or path.read_text() != text:
                print(f"{path} is out of date: run tools/make_vectors.py", file=sys.stderr)
                return 1
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)} ({len(doc['cases'])} cases)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
