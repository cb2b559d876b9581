"""utjima review: the session over a clip folder, its page's server (token, host, every
change to review.json with its audit log), the suspects queue, statistics, contact sheets,
and the command's bad inputs (docs/review.md). The page itself in a browser:
tests/e2e/test_review_e2e.py."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from utjima.data import clips
from utjima.review import suspects
from utjima.review.app import COOKIE, create_app
from utjima.review.session import ReviewError, ReviewSession

TOKEN = "review-test-token"
AT = "2026-11-30T10:00:00Z"


def _clip(id, smile, subject, clip_smile=-1, n=None):
    n = len(smile) if n is None else n
    rng = np.random.default_rng(len(id))
    frames = rng.integers(0, 255, (n, 48, 48, 3), dtype=np.uint8)
    return clips.Clip(id, frames, np.arange(n) * 100.0, np.array(smile),
                      np.full(n, -1), clip_smile, subject)


def _folder(tmp_path):
    """Three good clips (one whose middle span is labelled 'not smiling' while the scores
    say smiling), one entry with overlapping segments and one whose frames are gone."""
    folder = tmp_path / "clips"
    cs = [_clip("a-big", [0, 0, 1, 1, 1, 1, 0, 0], "p01", 1),
          _clip("b-rest", [0] * 8, "p01", 0),
          _clip("c-mislabelled", [0, 0, 0, 0, 0, 0, 0, 0], "p02", 0)]
    clips.write(folder, cs, ext=".png")
    manifest = json.loads((folder / "manifest.json").read_text())
    for e, lighting in zip(manifest["clips"], ["bright", "dim", "bright"], strict=True):
        e["capture"] = {"lighting": lighting}
    manifest["clips"].append({"id": "d-overlap", "frames_dir": "a-big",
                              "times_ms": manifest["clips"][0]["times_ms"],
                              "segments": [{"start_ms": 0, "end_ms": 500, "smile": 0},
                                           {"start_ms": 400, "end_ms": 800, "smile": 1}]})
    (folder / "e-empty").mkdir()
    manifest["clips"].append({"id": "e-empty", "frames_dir": "e-empty", "times_ms": []})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    oof = {"format": "utjima.oof/1", "clips": {
        "a-big": {"smile_prob": [.1, .1, .9, .95, .9, .8, .1, .05]},
        "b-rest": {"smile_prob": [.05, .1, .1, None, .1, .05, .1, .1]},
        "c-mislabelled": {"smile_prob": [.1, .1, .97, .98, .99, .96, .1, .1]}}}
    (tmp_path / "oof.json").write_text(json.dumps(oof))
    return folder, tmp_path / "oof.json"


@pytest.fixture
def served(tmp_path):
    folder, oof = _folder(tmp_path)
    s = ReviewSession.open(str(folder), reviewer="mina", oof=oof, clock=lambda: AT)
    s.score_all()
    client = TestClient(create_app(s, TOKEN, hosts={"testserver"}))
    try:
        yield s, client, folder
    finally:
        s.close()


def test_the_page_needs_the_printed_address_and_this_host(served):
    s, client, _ = served
    assert client.get("/api/info").status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 401
    assert client.get("/?token=wrong", follow_redirects=False).status_code == 401
    r = client.get(f"/?token={TOKEN}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert "httponly" in r.headers["set-cookie"].lower()
    assert "samesite=strict" in r.headers["set-cookie"].lower()
    assert client.get("/").status_code == 200 and client.get("/api/info").status_code == 200
    evil = client.get("/api/info", headers={"host": "attacker.example:80"})
    assert evil.status_code == 403 and evil.json()["detail"]["code"] == "bad_host"


def test_broken_entries_are_listed_with_one_error_and_the_rest_is_reviewable(served):
    s, client, _ = served
    client.cookies.set(COOKIE, TOKEN)
    info = client.get("/api/info").json()
    broken = {b["id"]: b["error"] for b in info["broken"]}
    assert set(broken) == {"d-overlap", "e-empty"}
    assert "segments[1] [400, 800) ms overlaps segments[0] [0, 500) ms" in broken["d-overlap"]
    assert "e-empty holds no images" in broken["e-empty"]
    assert all("\n" not in e for e in broken.values())
    r = client.get("/api/clips/d-overlap")
    assert r.status_code == 409 and "overlaps" in r.json()["detail"]["message"]
    assert client.get("/api/clips/nope").status_code == 404
    good = [c["id"] for c in client.get("/api/clips").json()["clips"] if not c["error"]]
    assert good == ["a-big", "b-rest", "c-mislabelled"]
    view = client.get("/api/clips/a-big").json()
    assert [(sp["start_ms"], sp["end_ms"], sp["smile"]) for sp in view["spans"]] == [
        (0.0, 200.0, 0), (200.0, 600.0, 1), (600.0, 800.0, 0)]
    assert view["scores"][3] == 0.95 and view["score_source"] == "out-of-fold"
    assert client.get("/api/clips/b-rest").json()["scores"][3] is None  # no face
    png = client.get("/api/clips/a-big/sheet.png?download=1")
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.headers["content-disposition"] == 'attachment; filename="a-big.png"'
    frame = client.get("/api/clips/a-big/frames/2")
    assert frame.headers["content-type"] == "image/png"
    assert client.get("/api/clips/a-big/frames/99").status_code == 404


def test_changes_go_to_the_sidecar_with_who_when_old_and_new(served):
    s, client, folder = served
    client.cookies.set(COOKIE, TOKEN)
    manifest = (folder / "manifest.json").read_bytes()
    r = client.post("/api/clips/c-mislabelled/relabel", json={"first": 2, "last": 5, "smile": 1})
    assert r.status_code == 200, r.text
    side = json.loads((folder / "review.json").read_text())
    assert side["clips"]["c-mislabelled"]["edits"] == [
        {"start_ms": 200.0, "end_ms": 600.0, "smile": 1}]
    assert side["log"] == [{"n": 1, "at": AT, "who": "mina", "clip": "c-mislabelled",
                            "action": "relabel", "start_ms": 200.0, "end_ms": 600.0,
                            "old": [{"start_ms": 200.0, "end_ms": 600.0, "smile": 0,
                                     "emotion": None}],
                            "new": {"smile": 1}}]
    assert r.json()["clip"]["spans"][1] == {"start_ms": 200.0, "end_ms": 600.0, "smile": 1,
                                           "emotion": None}
    # someone else's name from the page, a flag, an exclusion, then undo the exclusion
    assert client.post("/api/clips/b-rest/flag", json={"note": "eyes shut", "who": "jun"}) \
        .status_code == 200
    assert client.post("/api/clips/b-rest/exclude", json={"excluded": True}).status_code == 200
    assert client.post("/api/clips/b-rest/undo", json={}).json()["entry"]["undoes"] == 3
    side = json.loads((folder / "review.json").read_text())
    assert [(e["n"], e["who"], e["action"]) for e in side["log"]] == [
        (1, "mina", "relabel"), (2, "jun", "flag"), (3, "mina", "exclude"), (4, "mina", "undo")]
    assert side["clips"]["b-rest"] == {"flag": "eyes shut"}
    # refused changes: one clear 4xx each, review.json as it was
    before = (folder / "review.json").read_bytes()
    for body, status in [({"first": 6, "last": 9, "smile": 1}, 422),
                         ({"first": 3, "last": 2, "smile": 1}, 422),
                         ({"first": 0, "last": 1}, 422),
                         ({"first": 0, "last": 1, "smile": 2}, 422),
                         ({"first": 0, "last": 1, "smile": 1, "who": "  "}, 422),
                         ({"first": 0, "last": 1, "emotion": "joy"}, 422),
                         ({"first": 0, "last": 1, "smile": 1, "extra": 1}, 422)]:
        r = client.post("/api/clips/a-big/relabel", json=body)
        assert r.status_code == status, (body, r.text)
        assert set(r.json()["detail"]) == {"code", "message"}
    assert client.post("/api/clips/a-big/undo", json={}).status_code == 422  # nothing to undo
    assert client.post("/api/clips/e-empty/flag", json={"note": ""}).status_code == 409
    assert (folder / "review.json").read_bytes() == before
    assert (folder / "manifest.json").read_bytes() == manifest
    # what a reader of the folder gets: review.json applied over the manifest
    from utjima.data import sidecar

    ref = s.items["c-mislabelled"].ref
    smile, _, _ = sidecar.labels_of(ref, sidecar.read(folder).of("c-mislabelled"))
    assert smile.tolist() == [0, 0, 1, 1, 1, 1, 0, 0]


def test_suspects_rank_the_span_the_scores_disagree_with_first(served):
    s, client, _ = served
    client.cookies.set(COOKIE, TOKEN)
    q = client.get("/api/suspects").json()
    top = q["spans"][0]
    # spans are runs of one label: c-mislabelled is one 'not smiling' run, 4 of its 8 frames
    # confidently smiling
    assert (top["clip"], top["first"], top["last"], top["smile"]) == ("c-mislabelled", 0, 7, 0)
    assert (top["issues"], top["scored"], top["share"]) == (4, 8, 0.5)
    assert q["clips"][0]["clip"] == "c-mislabelled" and q["clips"][0]["clip_label_issue"]
    assert q["sources"] == ["out-of-fold"]
    assert "b-rest" not in {sp["clip"] for sp in q["spans"]}


def test_confident_learning_thresholds_are_per_class_self_confidence():
    y = np.array([1, 1, 1, 0, 0, 0, 0])
    p = np.array([.9, .8, .1, .1, .2, .0, .95])
    t0, t1 = suspects.thresholds(y, p)
    assert t1 == pytest.approx((.9 + .8 + .1) / 3) and t0 == pytest.approx((.9 + .8 + 1 + .05) / 4)
    # the smile labelled 0.1 and the non-smile at 0.95 are the issues
    assert suspects.label_issues(y, p, (t0, t1)).tolist() == [0, 0, 1, 0, 0, 0, 1]
    assert suspects.rank([])["spans"] == []


def test_statistics_per_participant_label_and_lighting(served):
    s, client, _ = served
    client.cookies.set(COOKIE, TOKEN)
    st = client.get("/api/stats").json()
    assert st["overall"]["participants"] == 2 and st["broken"] == 2
    by = {k: {g["key"]: g for g in v} for k, v in st["by"].items()}
    assert by["participant"]["p01"]["clips"] == 2 and by["participant"]["p02"]["clips"] == 1
    assert set(by["lighting"]) == {"bright", "dim"} and by["lighting"]["dim"]["clips"] == 1
    assert set(by["clip_label"]) == {"laughed", "did_not_laugh"}


def test_a_research_set_is_read_only_and_its_sheets_stay_out_of_a_repository(tmp_path):
    from utjima.review.session import Item, MemoryRef

    c = _clip("S010_006", [0, 0, 1, 1], "S010")
    ref = MemoryRef(id=c.id, times_ms=c.times_ms, smile=c.smile, emotion_label=c.emotion_label,
                    clip_smile=c.clip_smile, subject=c.subject, split=None, entry={},
                    frames=c.frames)
    s = ReviewSession("ckplus:all", [Item(c.id, ref)], "face", folder=None, review=None,
                      read_only=True)
    with pytest.raises(ReviewError, match="read-only"):
        s.relabel(c.id, 0, 1, "mina", smile=1)
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    with pytest.raises(ReviewError, match="must never be committed"):
        s.export_sheets(tmp_path / "repo" / "sheets")
    assert not (tmp_path / "repo" / "sheets").exists()


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "utjima", "review", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def test_cli_exports_sheets_and_prints_statistics(tmp_path):
    folder, oof = _folder(tmp_path)
    out = _cli(folder, "--oof", oof, "--export-sheets", tmp_path / "sheets", "--stats")
    assert out.returncode == 0, out.stderr
    assert "d-overlap cannot be reviewed" in out.stderr and "Traceback" not in out.stderr
    assert "wrote 3 contact sheets" in out.stdout and "participant" in out.stdout
    names = sorted(p.name for p in (tmp_path / "sheets").iterdir())
    assert names == ["a-big.png", "b-rest.png", "c-mislabelled.png"]
    img = cv2.imread(str(tmp_path / "sheets" / "a-big.png"))
    assert img is not None and img.shape[1] >= 400


def test_cli_bad_inputs_are_one_line_and_lose_nothing(tmp_path):
    folder, oof = _folder(tmp_path)
    (folder / "review.json").write_text('{"format": "utjima.review/1", "clips": {"a": 1}}')
    for args, rc, says in [
        ([folder, "--stats"], 2, "review.json: clips['a'] must be an object"),
        ([tmp_path / "nowhere", "--stats"], 2, "is not a folder"),
        ([folder, "--oof", tmp_path / "none.json", "--stats"], 2, "--oof"),
        ([folder, "--port", "70000"], 2, "--port"),
    ]:
        out = _cli(*args)
        assert out.returncode == rc, (args, out.stderr)
        assert says in out.stderr and "Traceback" not in out.stderr, out.stderr
        assert sum("error" in ln for ln in out.stderr.splitlines()) == 1, out.stderr
    assert (folder / "review.json").read_text() == \
        '{"format": "utjima.review/1", "clips": {"a": 1}}'


def test_one_folder_one_review_at_a_time(tmp_path):
    folder, _ = _folder(tmp_path)
    s = ReviewSession.open(str(folder))
    try:
        with pytest.raises(ReviewError, match="already open"):
            ReviewSession.open(str(folder))
    finally:
        s.close()
    ReviewSession.open(str(folder)).close()


def test_a_studys_predictions_serve_as_out_of_fold_scores(tmp_path):
    """`--oof` takes `utjima study --out DIR` (its predictions.json, the early-stopping arm)."""
    from utjima import study as study_mod
    from utjima.review import session as review_session

    assert review_session.STUDY_FORMAT == study_mod.PREDICTIONS_FORMAT  # one format
    folder, _ = _folder(tmp_path)
    study = tmp_path / "study"
    study.mkdir()
    doc = {"format": review_session.STUDY_FORMAT, "clips": [
        {"id": "c-mislabelled", "frame_scores": {"baseline": [0.5] * 8,
                                                 "early_stop": [.1, .1, .9, .9, .9, .9, .1, .1]}}]}
    (study / "predictions.json").write_text(json.dumps(doc))
    s = ReviewSession.open(str(folder), oof=study, lock=False)
    try:
        assert s.oof["c-mislabelled"].tolist() == [.1, .1, .9, .9, .9, .9, .1, .1]
    finally:
        s.close()
    doc["clips"][0]["frame_scores"] = {"baseline": [0.5] * 8}
    (study / "predictions.json").write_text(json.dumps(doc))
    with pytest.raises(ReviewError, match="frame_scores.early_stop"):
        ReviewSession.open(str(folder), oof=study, lock=False)


def test_the_model_scores_every_frame_of_a_clip():
    """SmileModel.clip_probs, what the page's score curve shows: face crops through the
    streaming windows; camera frames through the live path (NaN where it finds no face)."""
    from utjima.runtime import SmileModel

    m = SmileModel()
    c = _clip("x", [0] * 6, "p01")
    p = m.clip_probs(c.frames, c.times_ms, "face")
    assert p.shape == (6,) and np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    blank = np.full((6, 240, 320, 3), 128, np.uint8)  # no face anywhere
    assert np.isnan(m.clip_probs(blank, c.times_ms, "full")).all()
