"""The load benchmark's simulated players speak the protocol: a tiny run against a real
`utjima serve` (short phases) plays rounds, every scripted laugh is the verdict, and the
judge confirms each laugh on the very sample the benchmark times from. Not timed: the
figures come from running the benchmark itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_server_players_play_by_the_protocol():
    env = {**os.environ, "UTJIMA_CALIB_MS": "2000", "UTJIMA_COUNTDOWN_MS": "500",
           "UTJIMA_VERDICT_MS": "1000"}
    run = subprocess.run([sys.executable, "-m", "benchmarks.bench_server", "--players", "5",
                          "--warmup", "1", "--seconds", "14"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    (step,) = summary["steps"]
    assert step["players"] == 5 and step["rooms"] == 2  # rooms of 2-4 adding up to 5
    assert step["errors"] == {} and step["other_verdicts"] == {}, step
    assert not {c for c in step["closes"]} - {1000, 1001, "1000", "1001"}, step["closes"]
    assert step["verdicts"] >= 2 and step["p50_ms"] is not None
    assert step["judge_confirmed_on_scripted_sample"] >= 1
    assert step["judge_confirmed_elsewhere"] == 0
    assert step["signals_received"] >= 2 * 3  # offers answered, with ICE candidates
    assert step["loop_lag_ms"]["ticks"] > 0 and step["server_cpu_pct"] is not None
    assert "players" in run.stdout.splitlines()[0]  # the human table comes first
