"""`utjima evaluate` end to end on real faces and recorded clips; the framing split."""

import json
import re

import numpy as np
import pytest

from utjima.cli import main
from utjima.evaluate import by_framing, worst_errors


def test_by_framing_splits_found_faces_from_the_fallback():
    y = np.array([1, 0, 1, 0, 1, 0], bool)
    p = np.array([0.9, 0.1, 0.8, 0.2, 0.1, 0.9])
    found = np.array([1, 1, 1, 1, 0, 0], bool)
    r = by_framing(y, p, found, 0.5)
    assert r["found"] == {"n": 4, "accuracy": 1.0, "auc": 1.0, "positive_rate": 0.5}
    assert r["fallback"] == {"n": 2, "accuracy": 0.0, "auc": 0.0, "positive_rate": 0.5}
    assert set(by_framing(y[:4], p[:4], found[:4], 0.5)) == {"found"}  # nothing fell back
    assert by_framing(y[4:5], p[4:5], ~found[4:5], 0.5)["found"]["auc"] is None  # one class: no AUC


@pytest.mark.slow
def test_evaluate_cli_writes_report_json_and_a_self_contained_page(tmp_path, exported_model,
                                                                    dataset_cache, capsys):
    for name in ("smilesmiled", "ferplus"):
        dataset_cache(name)
    out = tmp_path / "rep"
    code = main(["evaluate", "--model", str(exported_model), "--data", "smilesmiled:test",
                 "--data", "ferplus:test", "--select-threshold", "smilesmiled:val",
                 "--limit", "60", "--bootstrap", "50", "--errors", "6", "--out", str(out)])
    assert code == 0
    rep = json.loads((out / "report.json").read_text())
    thr = rep["thresholds"]
    assert thr["selected_on"] == ["smilesmiled:val"] and 0 <= thr["selected"] <= 1
    assert thr["n"] == 60 and rep["command"].startswith("utjima evaluate --model ")
    s = rep["sources"]["ferplus:test"]
    assert s["n"] == 60 and "smile" in s and "emotion" in s and 0.9 <= s["face_found"] <= 1
    assert set(s["smile"]["ci95"]) == {"accuracy", "precision", "recall", "f1", "auc"}
    assert set(s["emotion"]["per_class"]) == set(s["emotion"]["classes"])
    # the worst errors: ids and scores only (no pixels in the JSON), surest first
    t = thr["selected"]
    fl = s["worst_errors"]["false_laughs"]
    assert len(fl) <= 6 and all(e["smile_prob"] >= t for e in fl)
    assert [e["smile_prob"] for e in fl] == sorted((e["smile_prob"] for e in fl), reverse=True)
    assert all(e["smile_prob"] < t for e in s["worst_errors"]["missed"])
    page = (out / "report.html").read_text()
    for section in ("Headline", "Threshold", "Curves", "Smile confusion", "Emotions: FER+ test",
                    "Worst errors", "Provenance"):
        assert f">{section}</h2>" in page, section
    assert page.count("<svg") == 3 and 'class="thumbs research"' in page
    assert "data:image/png;base64," in page and not re.search(r'src="(https?:)?//', page)
    assert f"{s['smile']['accuracy'] * 100:.1f}" in page and "smilesmiled:val" in page
    printed = capsys.readouterr().out
    assert "smile accuracy %" in printed and f"and {out / 'report.html'}" in printed


def test_worst_errors_are_the_surest_mistakes():
    y = np.array([0, 0, 0, 1, 1, 1, 0], bool)
    p = np.array([0.9, 0.2, 0.7, 0.1, 0.8, 0.4, 0.95])
    fp, fn = worst_errors(y, p, 0.5, 2)
    assert fp.tolist() == [6, 0] and fn.tolist() == [3, 5]
    assert worst_errors(y, p, 0.5, 0)[0].size == 0


def test_thresholds_never_come_from_a_test_set(tmp_path, exported_model, capsys):
    code = main(["evaluate", "--model", str(exported_model), "--data", "genki4k",
                 "--select-threshold", "genki4k",
                 "--out", str(tmp_path)])
    assert code == 2 and "never on a test set" in capsys.readouterr().err


def test_laugh_like_rule_raises_youden_until_few_laugh_like_faces_smile(tmp_path, exported_model,
                                                                       dataset_cache):
    from utjima.evaluate import MAX_LAUGH_LIKE_FPR, Scorer, select_threshold

    dataset_cache("ferplus")
    scorer = Scorer(exported_model)
    t = select_threshold(["ferplus:valid"], scorer, "youden_laugh_like", limit=400, progress=False)
    ll = t["laugh_like"]
    assert t["selected"] == max(t["youden"], ll["cap"]) >= t["youden"]
    assert ll["n"] > 50 and ll["fpr_at_selected"] <= MAX_LAUGH_LIKE_FPR
    with pytest.raises(ValueError, match="emotion labels"):
        select_threshold(["smilesmiled:val"], scorer, "youden_laugh_like", limit=100,
                         progress=False)
    with pytest.raises(ValueError, match="held-out test set"):
        select_threshold(["ckplus:test"], scorer, "youden", limit=None, progress=False)


@pytest.mark.slow
def test_evaluate_a_clip_folder(tmp_path, exported_model, dataset_cache):
    """Recorded clips (face crops, per-frame labels) are scored per frame and per clip."""
    from utjima.data import clips, ferplus
    from utjima.evaluate import evaluate

    fs = ferplus.load(dataset_cache("ferplus"), "test")
    neutral = np.flatnonzero(fs.emotion[:, 6] >= 0.8)[:2]
    happy = np.flatnonzero(fs.emotion[:, 3] >= 0.8)[:2]
    out = []
    for k in range(2):
        frames = np.stack([np.repeat(fs.images[i][:, :, None], 3, 2)
                           for i in [neutral[k]] * 6 + [happy[k]] * 6])
        out.append(clips.Clip(id=f"c{k}", frames=frames, times_ms=np.arange(12) * 66.7,
                              smile=np.r_[np.zeros(6), np.ones(6)], emotion_label=np.full(12, -1),
                              clip_smile=1))
    frames = np.stack([np.repeat(fs.images[neutral[0]][:, :, None], 3, 2)] * 8)
    out.append(clips.Clip(id="calm", frames=frames, times_ms=np.arange(8) * 66.7, smile=np.zeros(8),
                          emotion_label=np.full(8, -1), clip_smile=0))
    clips.write(tmp_path / "rec", out)
    rep = evaluate([f"clips:{tmp_path / 'rec'}"], tmp_path / "rep", model_dir=exported_model,
                   n_boot=20, progress=False)
    r = rep["sources"][f"clips:{tmp_path / 'rec'}"]
    assert r["smile"]["n"] == 32 and r["clip_smile"]["n"] == 3
