"""`utjima study --quick` on clips made by the capture flow: two participants run the
shortened protocol on /capture in headless Chromium (a fake camera with one face) and
upload to `utjima serve --collect`; the study then runs on the collection folder as it
landed (whole camera frames, cropped through the face path; the covered and leave-the-frame
clips, which carry no clip label, left out)."""

from __future__ import annotations

import json

import pytest

from harness.capture import consent, serving, wait_done, with_scale, write_face_camera
from utjima.cli import main
from utjima.data import clips as clipfmt

from .support import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOKEN = "e2e-study-token-0123456789"
SCALE = 0.15  # the whole protocol in about 20 s per participant
PARTICIPANTS = ("p-study1", "p-study2")


def test_utjima_study_quick_on_captured_clips(chromium, tmp_path, capsys):
    from playwright.sync_api import sync_playwright

    camera = write_face_camera(tmp_path / "face.y4m")
    errors: list[str] = []
    with serving(tmp_path, TOKEN) as srv, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(chromium),
            args=CHROMIUM_ARGS + [f"--use-file-for-fake-video-capture={camera}"])
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.set_default_timeout(60_000)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(with_scale(srv.link, SCALE))
            for k, pid in enumerate(PARTICIPANTS):
                if k:  # the same tab, another participant
                    page.click("#again")
                consent(page, pid)
                page.click("#start")
                wait_done(page)
                page.click("#upload")
                page.wait_for_selector("#receipt:not([hidden])")
                assert f"as {pid}" in page.text_content("#upload-status")
        finally:
            browser.close()
        collected = srv.collect_dir
    assert errors == []
    cs = clipfmt.load(collected)
    assert sorted({c.subject for c in cs.clips}) == list(PARTICIPANTS)

    out = tmp_path / "study"
    code = main(["study", "--quick", "--short-captures", "--data", f"clips:{collected}",
                 "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "baseline (0 epochs)" in printed and "wrote" in printed
    doc = json.loads((out / "study.json").read_text())
    labelled = [c for c in cs.clips if c.clip_smile in (0, 1)]
    assert doc["data"]["participants"] == list(PARTICIPANTS)
    assert doc["data"]["clips"] == len(labelled) == 2 * 11  # 13 prompts, 2 without a label
    assert len(doc["data"]["excluded"]["no clip_smile label"]) == 4  # covered, leave
    # each participant is tested once, by a model trained on the other one
    assert [f["test_subjects"] for f in doc["folds"]] in ([["p-study1"], ["p-study2"]],
                                                          [["p-study2"], ["p-study1"]])
    for f in doc["folds"]:
        assert f["inner"]["0"]["by"] == "clip"  # one participant to train on: a share of clips
        assert f["train_subjects"] != f["test_subjects"]
    for a in doc["arms"].values():
        assert 0 <= a["clip"]["accuracy"] <= 1 and len(a["clip"]["per_seed"]) == 1
    pred = json.loads((out / "predictions.json").read_text())
    n_frames = {c.id: len(c) for c in labelled}
    assert {c["id"]: c["n_frames"] for c in pred["clips"]} == n_frames
    assert (out / "report.html").stat().st_size > 10_000
