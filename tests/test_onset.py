"""The shipped model on real onsets: CK+ training subjects' smiles (never the held-out ones),
played 3x faster than recorded (a smile formed in 100-450 ms), through the live path and the
judge as `benchmarks/bench_onset.py` runs them. The laugh must start while the smile forms,
after the neutral second and before the apex; the figures (lead times) are the benchmark's."""

from __future__ import annotations

import pytest

from benchmarks.bench_onset import features, laughs, played_faster

pytestmark = pytest.mark.slow


def test_fast_smiles_laugh_before_their_apex(dataset_cache):
    from utjima.data import ckplus
    from utjima.runtime import SmileModel

    root = dataset_cache("ckplus")
    model = SmileModel()
    judge_cfg = model.contract.judge_config()
    happy = [r for r in ckplus.read_labels(root)
             if r["subject_id"] in ckplus.TRAIN_SUBJECTS and r["emotion"] == "happy"]
    assert len(happy) == 5
    for r in happy:
        raw = ckplus.raw_frames(root, r["sequence_id"])
        video, apex_ms = ckplus.webcam_video(played_faster(raw, 3))
        times, feats = features(model, video, ckplus.FPS)
        assert all(f is not None for f in feats[5:]), r["sequence_id"]  # the face is followed
        interval = float(model.contract.streaming["frame_interval_ms"])  # the shipped window
        got = laughs(model, times, feats, interval, judge_cfg)
        assert got, f"{r['sequence_id']}: no laugh"
        start = got[0]["start_ms"]
        assert 1000.0 <= start < apex_ms, (r["sequence_id"], start, apex_ms)
