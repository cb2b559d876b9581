"""utjima.data.sidecar: review.json (label changes + audit log) and how every reader sees it."""

import json

import numpy as np
import pytest

from utjima import EMOTIONS
from utjima.data import clips, load, sidecar
from utjima.data.sidecar import Review, SidecarError

AT = "2026-11-30T10:00:00Z"


def _clip(id="a", n=10, smile=None, emotion=None, clip_smile=-1, subject="p01"):
    frames = np.stack([np.full((8, 8, 3), 20 * i, np.uint8) for i in range(n)])
    return clips.Clip(id, frames, np.arange(n) * 100.0,
                      np.full(n, -1) if smile is None else smile,
                      np.full(n, -1) if emotion is None else emotion, clip_smile, subject)


def _folder(tmp_path):
    a = _clip("a", smile=[0, 0, 0, 1, 1, 1, 1, 0, 0, -1], clip_smile=1)
    b = _clip("b", n=4, smile=[0, 0, 0, 0], clip_smile=0)
    clips.write(tmp_path, [a, b])
    return tmp_path


def test_runs_are_maximal_and_end_at_the_next_frame():
    t = np.arange(6) * 100.0
    smile = np.array([0, 0, 1, 1, -1, -1])
    emo = np.array([6, 6, 3, -1, -1, -1])
    r = sidecar.runs(t, smile, emo)
    assert r == [
        {"start_ms": 0.0, "end_ms": 200.0, "smile": 0, "emotion": "neutral"},
        {"start_ms": 200.0, "end_ms": 300.0, "smile": 1, "emotion": "happy"},
        {"start_ms": 300.0, "end_ms": 400.0, "smile": 1, "emotion": None},
        {"start_ms": 400.0, "end_ms": 600.0, "smile": None, "emotion": None},  # last + 1 step
    ]
    mask = np.array([0, 1, 1, 0, 0, 1], bool)
    assert [(x["start_ms"], x["end_ms"]) for x in sidecar.runs(t, smile, emo, mask, 550)] == [
        (100.0, 200.0), (200.0, 300.0), (500.0, 550.0)]


def test_relabel_logs_who_when_old_and_new_and_load_applies_it(tmp_path):
    folder = _folder(tmp_path)
    manifest_before = (folder / "manifest.json").read_bytes()
    ref = clips.load(folder, reviewed=False).clips[0]
    review = Review()
    entry = review.relabel(ref, 200.0, 500.0, "mina", AT, smile=1, emotion="happy")
    assert entry == {"n": 1, "at": AT, "who": "mina", "clip": "a", "action": "relabel",
                     "start_ms": 200.0, "end_ms": 500.0,
                     "old": [{"start_ms": 200.0, "end_ms": 300.0, "smile": 0, "emotion": None},
                             {"start_ms": 300.0, "end_ms": 500.0, "smile": 1, "emotion": None}],
                     "new": {"smile": 1, "emotion": "happy"}}
    review.set_excluded(clips.load(folder, reviewed=False).clips[1], True, "mina", AT)
    sidecar.write(folder, review)
    cs = clips.load(folder)
    assert [c.id for c in cs.clips] == ["a"]  # b excluded
    a = cs.clips[0]
    assert a.smile.tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 0, -1]
    assert [EMOTIONS[e] if e >= 0 else None for e in a.emotion_label][2:6] == ["happy"] * 3 + [None]
    assert cs.info["review"] == {"relabelled": ["a"], "excluded": ["b"], "flagged": [],
                                 "unknown_clips": [], "log_entries": 2}
    # the same through a data spec (what train, evaluate and the study call)
    via_spec = load(f"clips:{folder}")
    assert [c.smile.tolist() for c in via_spec.clips] == [a.smile.tolist()]
    # the raw folder is still there, and the manifest was never touched
    assert len(clips.load(folder, reviewed=False).clips) == 2
    assert (folder / "manifest.json").read_bytes() == manifest_before


def test_clip_label_flag_undo_replay(tmp_path):
    folder = _folder(tmp_path)
    a = clips.load(folder, reviewed=False).clips[0]
    r = Review()
    r.relabel(a, 0, 300, "x", AT, smile=None)
    r.set_clip_label(a, 0, "x", AT)
    r.set_flag(a, " blurry ", "y", AT)
    assert r.of("a").flag == "blurry" and r.of("a").clip_smile == 0
    undo = r.undo(a, "y", AT)  # reverts the flag, the latest action
    assert undo["undoes"] == 3 and undo["old"]["flag"] == "blurry" and undo["new"]["flag"] is None
    r.undo(a, "y", AT)  # the clip label
    assert r.of("a").clip_smile is None
    r.undo(a, "y", AT)  # the relabel
    assert r.of("a").edits == []
    with pytest.raises(SidecarError, match="nothing to undo"):
        r.undo(a, "y", AT)
    assert [e["action"] for e in r.log] == ["relabel", "clip_label", "flag"] + ["undo"] * 3
    assert [e["n"] for e in r.log] == [1, 2, 3, 4, 5, 6]
    # unknown clip label: -1 overrides the manifest's 1
    r.set_clip_label(a, None, "x", AT)
    sidecar.write(folder, r)
    assert clips.load(folder).clips[0].clip_smile == -1
    assert sidecar.replay(r.log).clips["a"].clip_smile == -1


def test_changes_are_checked():
    a = _clip("a")
    r = Review()
    with pytest.raises(SidecarError, match="reviewer name"):
        r.relabel(a, 0, 100, "  ", AT, smile=1)
    with pytest.raises(SidecarError, match="end_ms must be after"):
        r.relabel(a, 300, 300, "x", AT, smile=1)
    with pytest.raises(SidecarError, match="not one of"):
        r.relabel(a, 0, 100, "x", AT, emotion="joy")
    with pytest.raises(SidecarError, match="smile must be 1, 0 or null"):
        r.relabel(a, 0, 100, "x", AT, smile=2)
    with pytest.raises(SidecarError, match="no frame in"):
        r.relabel(a, 5000, 6000, "x", AT, smile=1)
    with pytest.raises(SidecarError, match="sets smile and/or emotion"):
        r.relabel(a, 0, 100, "x", AT)
    assert r.log == [] and r.clips == {}


@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"),
    ("[]", "format is 'list'"),
    ('{"format": "other/1"}', "expected 'utjima.review/1'"),
    ('{"format": "utjima.review/1", "clips": {"a": {"edits": [{"start_ms": 5}]}}}',
     "an edit is"),
    ('{"format": "utjima.review/1", "clips": {"a": {"excluded": "yes"}}}', "true or false"),
    ('{"format": "utjima.review/1", "log": [{"n": 1}]}', "needs"),
    ('{"format": "utjima.review/1", "extra": 1}', "unknown keys"),
])
def test_a_garbage_sidecar_is_one_clear_error_and_stays_as_it_is(tmp_path, text, match):
    folder = _folder(tmp_path)
    (folder / "review.json").write_text(text)
    with pytest.raises(SidecarError, match=match) as e:
        clips.load(folder)
    assert "\n" not in str(e.value) and "review.json" in str(e.value)
    assert (folder / "review.json").read_text() == text


def test_write_then_read_round_trips_and_is_one_log_entry_a_line(tmp_path):
    folder = _folder(tmp_path)
    a = clips.load(folder, reviewed=False).clips[0]
    r = Review()
    r.relabel(a, 0, 250, "민아", AT, smile=1)
    r.set_flag(a, "눈 감음", "민아", AT)
    path = sidecar.write(folder, r)
    text = path.read_text(encoding="utf-8")
    assert json.loads(text)["format"] == "utjima.review/1" and "민아" in text
    log_lines = [ln for ln in text.splitlines() if ln.startswith('  {"n": ')]
    assert len(log_lines) == 2
    back = sidecar.read(folder)
    assert back.to_json() == r.to_json()
    assert sidecar.read(tmp_path / "nowhere") is None


def test_edits_of_clips_no_longer_in_the_folder_are_reported_not_applied(tmp_path):
    folder = _folder(tmp_path)
    r = Review()
    r.relabel(_clip("gone"), 0, 100, "x", AT, smile=1)
    sidecar.write(folder, r)
    cs = clips.load(folder)
    assert cs.info["review"]["unknown_clips"] == ["gone"] and len(cs.clips) == 2
