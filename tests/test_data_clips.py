"""utjima.data.clips: the clip-folder format, its reader/writer and sliding windows."""

import json

import cv2
import numpy as np
import pytest

from utjima import EMOTIONS
from utjima.data import clips
from utjima.data.cache import DatasetError
from utjima.streaming import window_indices


def _clip(id="a", n=6, fps=10.0, smile=None, emotion=None, **kw):
    frames = np.stack([np.full((16, 16, 3), 10 * i, np.uint8) for i in range(n)])
    frames[:, :, :, 0] = 250  # red: checks RGB order on the way through files
    return clips.Clip(id, frames, np.arange(n) * 1000 / fps,
                      smile if smile is not None else np.full(n, -1),
                      emotion if emotion is not None else np.full(n, -1), **kw)


def test_write_then_load_round_trip(tmp_path):
    a = _clip("a", smile=[0, 0, 1, 1, -1, 0], emotion=[6, -1, 3, 3, -1, 6], clip_smile=1,
              subject="p01")
    b = _clip("b", n=3, fps=30)
    clips.write(tmp_path, [a, b])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["format"] == "utjima.clips/1" and manifest["crop"] == "face"
    assert manifest["clips"][0]["labels"]["emotion"][:3] == ["neutral", None, "happy"]
    cs = clips.load(tmp_path)
    assert [c.id for c in cs.clips] == ["a", "b"] and cs.source == f"clips:{tmp_path}"
    x = cs.clips[0]
    assert np.array_equal(x.frames, a.frames)  # PNG: lossless, RGB kept
    assert np.allclose(x.times_ms, a.times_ms)
    assert x.smile.tolist() == [0, 0, 1, 1, -1, 0]
    assert x.emotion_label.tolist() == [6, -1, 3, 3, -1, 6]
    assert x.clip_smile == 1 and x.subject == "p01"
    assert (cs.clips[1].smile == -1).all()
    c = cs.counts()
    counts = (c["clips"], c["frames"], c["smile"], c["non_smile"], c["smile_masked"])
    assert counts == (2, 9, 2, 3, 4)
    # append keeps the old clips; ids stay unique
    clips.write(tmp_path, [_clip("c", n=2)], append=True)
    assert [c.id for c in clips.load(tmp_path).clips] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="unique"):
        clips.write(tmp_path, [_clip("a", n=2)], append=True)


def test_segments_default_and_fps(tmp_path):
    clips.write(tmp_path, [_clip("a", n=10, fps=10)])  # frames at 0, 100, ..., 900 ms
    m = json.loads((tmp_path / "manifest.json").read_text())
    entry = m["clips"][0]
    del entry["times_ms"]
    entry["fps"] = 10
    entry["segments"] = [{"start_ms": 200, "end_ms": 500, "smile": 1, "emotion": "happy"},
                         {"start_ms": 400, "end_ms": 450, "smile": None}]  # later overrides
    entry["default"] = {"smile": 0}
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    c = clips.load(tmp_path).clips[0]
    assert c.smile.tolist() == [0, 0, 1, 1, -1, 0, 0, 0, 0, 0]
    assert c.emotion_label.tolist() == [-1, -1, 3, 3, 3, -1, -1, -1, -1, -1]


def test_video_file(tmp_path):
    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20, (32, 32))
    if not writer.isOpened():
        pytest.skip("OpenCV has no MJPG writer here")
    for i in range(8):
        writer.write(np.full((32, 32, 3), 20 * i, np.uint8))
    writer.release()
    manifest = {"format": "utjima.clips/1", "clips": [
        {"id": "v", "video": "v.avi", "segments": [{"start_ms": 100, "end_ms": 1000, "smile": 1}],
         "default": {"smile": 0}}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    c = clips.load(tmp_path).clips[0]
    assert c.frames.shape == (8, 32, 32, 3)
    assert np.allclose(c.times_ms, np.arange(8) * 50)  # the container's 20 fps
    assert c.smile.tolist() == [0, 0, 1, 1, 1, 1, 1, 1]


def test_windows_follow_the_streaming_rule():
    c = _clip("a", n=12, fps=30, smile=[0] * 6 + [1] * 6)  # 33.3 ms apart
    ws = list(clips.windows(c, n_frames=5, frame_interval_ms=100))
    assert len(ws) == 12
    for w in ws:
        t = c.times_ms[: w.index + 1].tolist()
        assert list(w.indices) == window_indices(t, t[-1], 5, 100)
        assert w.frames.shape == (5, 16, 16, 3) and w.indices[-1] == w.index
        assert w.smile == c.smile[w.index]
    assert ws[0].indices == (0, 0, 0, 0, 0)  # a fresh stream: the first frame repeated
    assert ws[11].indices == (0, 2, 5, 8, 11)
    assert [w.index for w in clips.windows(c, 5, 100, stride=4)] == [0, 4, 8]


@pytest.mark.parametrize("change, match", [
    (lambda m: m.update(format="other/1"), "expected 'utjima.clips/1'"),
    (lambda m: m["clips"][0].update(video="x.mp4"), "exactly one of"),
    (lambda m: m["clips"][0].pop("times_ms"), "needs 'fps' or 'times_ms'"),
    (lambda m: m["clips"][0].update(labels={"smile": [1]}), "1 entries for 3 frames"),
    (lambda m: m["clips"][0].update(labels={"emotion": ["joy"] * 3}), "not one of"),
    (lambda m: m["clips"][0].update(segments=[]), "not both"),
    (lambda m: m["clips"][0].update(segments={"start_ms": 0}, labels=None) or
     m["clips"][0].pop("labels"), "must be a list"),
    (lambda m: m["clips"][0].pop("labels") and m["clips"][0].update(
        segments=[{"start_ms": 0, "end_ms": float("nan")}]), "must be finite"),
    (lambda m: m.update(crop="half"), "crop 'half'"),
])
def test_bad_manifests_fail_loudly(tmp_path, change, match):
    clips.write(tmp_path, [_clip("a", n=3, smile=[0, 1, 1])])
    m = json.loads((tmp_path / "manifest.json").read_text())
    change(m)
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DatasetError, match=match):
        clips.load(tmp_path)


def test_missing_manifest_points_to_the_spec(tmp_path):
    with pytest.raises(DatasetError, match="docs/clip_format.md"):
        clips.load(tmp_path)


def test_emotion_names_match_the_model():
    assert clips._emotion_index("surprise", "x") == EMOTIONS.index("surprise")
