"""utjima.streaming: the shared window vectors (also run by tests/js/streaming.test.mjs)
and the step == sequence property of the pruning FeatureWindow."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from utjima.streaming import FeatureWindow, window_indices

VECTORS = json.loads((Path(__file__).parent / "vectors" / "streaming.json").read_text())
CASES = VECTORS["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector(case):
    n, dt = case["n_frames"], case["frame_interval_ms"]
    times, want = case["times_ms"], case["expect"]
    if "error" in want:
        with pytest.raises(ValueError, match=want["error"]):
            if not times:
                window_indices([], 0.0, n, dt)
            fw = FeatureWindow(n, dt)
            for i, t in enumerate(times):
                fw.push(t, np.array([i, i + 0.5], dtype=np.float32))
        return
    fw = FeatureWindow(n, dt)
    for i, t in enumerate(times):
        # the pure rule over the full history
        assert window_indices(times[: i + 1], t, n, dt) == want["windows"][i]
        # the pruning window: frame i carries the feature [i, i + 0.5]
        out = fw.push(t, np.array([i, i + 0.5], dtype=np.float32))
        assert out.shape == (n, 2) and out.dtype == np.float32
        idx = np.array(want["windows"][i], dtype=np.float32)
        np.testing.assert_array_equal(out, np.stack([idx, idx + 0.5], axis=1))  # (T, F)


def test_fresh_stream_sees_the_first_frame_repeated():
    fw = FeatureWindow(4, 100.0)
    out = fw.push(5000.0, np.arange(3, dtype=np.float32))
    np.testing.assert_array_equal(out, np.tile(np.arange(3, dtype=np.float32), (4, 1)))


def test_pruned_window_equals_full_history_on_random_streams():
    rng = random.Random(0)
    for _ in range(30):
        n, dt = rng.randint(1, 8), rng.choice([33.0, 50.0, 100.0, 100 / 3])
        fw, times, t = FeatureWindow(n, dt), [], 0.0
        feats = []
        for i in range(120):
            t += rng.choice([1.0, 16.7, 33.3, 100.0, 250.0, 1000.0]) * rng.uniform(0.5, 1.5)
            times.append(t)
            feats.append(np.float32([i, -i]))
            out = fw.push(t, feats[-1])
            want = np.stack([feats[j] for j in window_indices(times, t, n, dt)])
            np.testing.assert_array_equal(out, want)
            # the history is pruned to what a later window can still pick: the oldest frame
            # this window uses, then only frames inside the last (n - 1) * dt
            assert fw.times_ms[0] == times[window_indices(times, t, n, dt)[0]]
            assert all(x > t - (n - 1) * dt for x in fw.times_ms[1:])
