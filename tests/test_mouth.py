"""benchmarks/mouth.py: MediaPipe's face mesh (the benchmark-only ONNX asset) measures how far a
mouth is open, on real faces of the CK+ training subjects (never the held-out ones)."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from benchmarks import mouth
from benchmarks.bench_negatives import open_mouth
from utjima import EMOTIONS


def test_the_asset_is_the_converted_model_with_its_licence(tmp_path):
    assert hashlib.sha256(mouth.ASSET.read_bytes()).hexdigest() == mouth.ASSET_SHA256
    notice = (mouth.ASSET.parent / "LICENSE-face_landmark.txt").read_text()
    assert "face_landmark.tflite" in notice and "Apache License" in notice
    gauge = mouth.MouthGauge()
    lm, presence = gauge.landmarks(np.full((64, 64), 128, np.uint8))
    assert lm.shape == (468, 3) and 0 <= presence <= 1
    # a changed file is refused with the way to rebuild it, not silently used
    bad = tmp_path / "face_landmark.onnx"
    shutil.copy(mouth.ASSET, bad)
    with open(bad, "r+b") as f:
        f.seek(-1, 2)
        f.write(b"\x00" if f.read(1) != b"\x00" else b"\x01")
    with pytest.raises(SystemExit, match="convert_face_landmark"):
        mouth.MouthGauge(bad)


@pytest.fixture(scope="module")
def ck_train(dataset_cache):
    from utjima.data import ckplus

    clips = ckplus.load(dataset_cache("ckplus"), "train")
    assert {c.subject for c in clips.clips} == set(ckplus.TRAIN_SUBJECTS)
    return clips


@pytest.mark.data
def test_neutral_first_frames_are_closed_and_open_apexes_open(ck_train):
    gauge = mouth.MouthGauge()
    first = [c.frames[0] for c in ck_train.clips]
    apex = [
        c.frames[-1] for c in ck_train.clips if ck_train.info["emotion"][c.id] in mouth.OPEN_APEX
    ]
    gap_first, p_first = gauge.gap(first)
    gap_apex, p_apex = gauge.gap(apex)
    assert len(first) == 24 and len(apex) == 11
    assert (p_first >= mouth.MIN_PRESENCE).all() and (p_apex >= mouth.MIN_PRESENCE).all()
    assert (gap_first < mouth.OPEN_GAP).all(), gap_first
    assert (gap_apex >= mouth.OPEN_GAP).all(), gap_apex
    # the gap is a ratio of the face's own height: the same faces mirrored, or at half the
    # resolution (about FER+'s), are called the same (the values move by up to ~0.03)
    for look in (lambda f: f[:, ::-1], lambda f: f[::2, ::2]):
        assert (gauge.gap([look(f) for f in first])[0] < mouth.OPEN_GAP).all()
        assert (gauge.gap([look(f) for f in apex])[0] >= mouth.OPEN_GAP).all()


@pytest.mark.data
def test_bench_negatives_counts_only_open_mouths(ck_train):
    """open_mouth() on grey crops: first frames (closed) and surprise apexes (open), all
    labelled surprise; only the apexes enter the subset, with their smile decisions."""
    surprise = [c for c in ck_train.clips if ck_train.info["emotion"][c.id] == "surprise"]
    crops = np.stack([c.frames[i].mean(axis=2).astype(np.uint8) for c in surprise for i in (0, -1)])
    labels = np.full(len(crops), EMOTIONS.index("surprise"), np.int8)
    yes = np.zeros(len(crops), bool)
    yes[1] = True  # the first apex "smiles"
    yes[2] = True  # a closed first frame "smiles": not in the subset
    measured = np.ones(len(crops), bool)
    measured[3] = False  # BlazeFace missed this apex: left out
    r = open_mouth(crops, labels, measured, yes)
    assert r["measured"] == len(crops) - 1 and r["mesh_no_face"] == 0
    assert r["pooled"]["n"] == len(surprise) - 1 and r["pooled"]["k"] == 1
    assert r["classes"]["surprise"] == r["pooled"] and r["classes"]["sad"]["n"] == 0
