"""`utjima review` end to end: a participant records the protocol on /capture (headless
Chromium, fake camera) and uploads it to `utjima serve --collect DIR`; then `utjima review
DIR` (a real subprocess, as a model builder starts it) shows those clips in the browser:

- `test_review_a_recorded_clip`: the big-smile clip's timeline draws its label spans and
  the model's per-frame score curve (checked on the canvas's pixels and against the API);
  a span is relabelled and a boundary moved with the keyboard; both land in review.json
  beside the manifest with their audit log (who, when, old -> new), the manifest is
  untouched, and `utjima.data.clips.load` returns the reviewed labels.
- `test_review_screenshots`: the clip view, the suspects queue and the statistics at
  laptop and phone sizes, in English and Korean (written to .cache/e2e/).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from harness.capture import record_and_upload, serving, write_face_camera
from harness.server import stop_process
from utjima.data import clips as clipfmt

from .support import CHROMIUM_ARGS, REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOKEN = "e2e-review-token-0123456789"
REVIEWER = "e2e-reviewer"
PHONE, LAPTOP = {"width": 390, "height": 844}, {"width": 1280, "height": 800}
START_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, chromium) -> Path:
    """A clip folder as `serve --collect` stored it: one participant's whole protocol."""
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("review")
    cam = write_face_camera(tmp / "face.y4m")
    with serving(tmp, TOKEN) as srv, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS + [
            f"--use-file-for-fake-video-capture={cam}"])
        try:
            page = browser.new_context(viewport=LAPTOP, locale="en-US").new_page()
            page.set_default_timeout(60_000)
            record_and_upload(page, srv, TOKEN, "p-rev01", "dim", "fake camera")
        finally:
            browser.close()
    assert (srv.collect_dir / "manifest.json").is_file()
    return srv.collect_dir


@pytest.fixture
def reviewing(recorded, tmp_path) -> Iterator[tuple[str, Path]]:
    """`utjima review DIR --no-browser --reviewer NAME` until the test ends: (url, DIR)."""
    folder = tmp_path / "clips"
    subprocess.run(["cp", "-a", str(recorded), str(folder)], check=True)  # each test its own
    log = tmp_path / "review.log"
    proc = subprocess.Popen([sys.executable, "-m", "utjima", "review", str(folder),
                             "--no-browser", "--reviewer", REVIEWER],
                            cwd=REPO_ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            env={**os.environ, "UTJIMA_CACHE": str(tmp_path / "cache")})
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (m := re.search(r"open (http://127\.0\.0\.1:\d+/\?token=\S+)", log.read_text())):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"utjima review did not start:\n{log.read_text()}")
            time.sleep(0.2)
        assert "13 clips; changes go to" in log.read_text()
        yield m.group(1), folder
    finally:
        stop_process(proc)
    assert "Traceback" not in log.read_text(), log.read_text()


def _open(page, url: str, clip_title: str = "Big smile", prompt: str = "big_smile") -> dict:
    """Open the page, pick a clip from the list, wait for its scores; the clip's view as the
    API gives it."""
    page.goto(url)
    page.wait_for_selector('body[data-ready="1"]', timeout=60_000)
    if page.is_visible(".clip-list"):
        page.click(f".clip-item:has-text('{clip_title}')")
    else:  # phone: the list is a menu
        page.select_option("#clip-select", label=clip_title)
    page.wait_for_function("t => document.querySelector('#clip-title').textContent === t",
                           arg=clip_title)
    page.wait_for_function(
        "async () => (await (await fetch('/api/progress')).json()).done", timeout=120_000)
    cid = page.evaluate("async p => (await (await fetch('/api/clips')).json()).clips"
                        ".find(c => c.prompt === p).id", prompt)
    view = page.evaluate("async id => (await fetch('/api/clips/' + encodeURIComponent(id)))"
                         ".json()", cid)
    page.wait_for_function("() => document.querySelector('#frame-info').dataset.scored === '1'",
                           timeout=60_000)
    return view


# Pixels of the timeline near a colour (the canvas is drawn at the device pixel ratio).
COUNT_COLOUR = """([hex, tol]) => {
  const c = document.querySelector('#timeline');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const want = [1, 3, 5].map(k => parseInt(hex.slice(k, k + 2), 16));
  let n = 0;
  for (let i = 0; i < d.length; i += 4)
    if (Math.abs(d[i] - want[0]) <= tol && Math.abs(d[i + 1] - want[1]) <= tol &&
        Math.abs(d[i + 2] - want[2]) <= tol) n++;
  return n;
}"""


def test_review_a_recorded_clip(chromium, reviewing):
    from playwright.sync_api import sync_playwright

    url, folder = reviewing
    manifest = (folder / "manifest.json").read_bytes()
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=LAPTOP, locale="en-US").new_page()
            page.set_default_timeout(30_000)
            page.on("pageerror", lambda e: errors.append(str(e)))
            view = _open(page, url)
            cid = view["id"]
            assert cid.endswith("-05-big_smile") and view["subject"] == "p-rev01"
            # what the timeline draws: the label spans (a smiling run after an unlabelled
            # margin, another unlabelled one at the end when a frame falls in it) and a
            # score per frame from the bundled model
            assert [s["smile"] for s in view["spans"]] in ([None, 1], [None, 1, None])
            scores = [p for p in view["scores"] if p is not None]
            assert view["score_source"] == "model" and len(scores) > 0.8 * len(view["scores"])
            assert page.evaluate(COUNT_COLOUR, ["#ff4f79", 12]) > 500  # the smiling span
            assert page.evaluate(COUNT_COLOUR, ["#1d8fd8", 40]) > 100  # the score curve
            assert page.input_value("#who") == REVIEWER
            # keyboard: the next span (the smiling one) is selected, 0 = not smiling
            smile_span = view["spans"][1]
            t = view["times_ms"]
            first = t.index(smile_span["start_ms"])
            page.keyboard.press("ArrowDown")
            page.keyboard.press("0")
            page.wait_for_selector("#log li[data-action] >> nth=0")
            # move the span's start two frames right: those frames take the label before it
            page.keyboard.press("ArrowRight")
            page.keyboard.press("ArrowRight")
            page.keyboard.press("BracketLeft")
            page.wait_for_selector("#log li[data-action] >> nth=1")
        finally:
            browser.close()
    assert errors == []
    side = json.loads((folder / "review.json").read_text())
    log = side["log"]
    assert [(e["n"], e["who"], e["clip"], e["action"]) for e in log] == [
        (1, REVIEWER, cid, "relabel"), (2, REVIEWER, cid, "relabel")]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["at"]) for e in log)
    assert (log[0]["start_ms"], log[0]["end_ms"]) == (smile_span["start_ms"],
                                                      smile_span["end_ms"])
    assert [o["smile"] for o in log[0]["old"]] == [1] and log[0]["new"] == {"smile": 0}
    assert (log[1]["start_ms"], log[1]["end_ms"]) == (t[first], t[first + 2])
    assert [o["smile"] for o in log[1]["old"]] == [0] and log[1]["new"]["smile"] is None
    assert side["clips"][cid]["edits"] == [
        {"start_ms": log[0]["start_ms"], "end_ms": log[0]["end_ms"], "smile": 0},
        {"start_ms": log[1]["start_ms"], "end_ms": log[1]["end_ms"], **log[1]["new"]}]
    # the clips themselves were never rewritten; every reader gets the reviewed labels
    assert (folder / "manifest.json").read_bytes() == manifest
    clip = {c.id: c for c in clipfmt.load(folder).clips}[cid]
    raw = {c.id: c for c in clipfmt.load(folder, reviewed=False).clips}[cid]
    assert (raw.smile == 1).sum() > 0 and (clip.smile == 1).sum() == 0
    assert clip.smile[first:first + 2].tolist() == [-1, -1]
    assert np.array_equal(clip.smile[first + 2:][raw.smile[first + 2:] == 1],
                          np.zeros((raw.smile[first + 2:] == 1).sum()))


def test_review_screenshots(chromium, reviewing, shots):
    from playwright.sync_api import sync_playwright

    url, _ = reviewing
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            for lang, locale in (("en", "en-US"), ("ko", "ko-KR")):
                for size in (LAPTOP, PHONE):
                    page = browser.new_context(viewport=size, locale=locale).new_page()
                    page.set_default_timeout(30_000)
                    page.on("pageerror", lambda e: errors.append(str(e)))
                    _open(page, url, "Big smile" if lang == "en" else "활짝 웃기")
                    wh = f"{size['width']}x{size['height']}"
                    page.screenshot(path=str(shots / f"review-{lang}-clip-{wh}.png"))
                    if size is LAPTOP:
                        page.screenshot(path=str(shots / f"review-{lang}-clip-full.png"),
                                        full_page=True)
                    for tab in ("suspects", "stats"):
                        page.click(f".tabs button[data-tab='{tab}']")
                        page.wait_for_selector(f"#{tab}-view:not([hidden]) table tr")
                        page.screenshot(path=str(shots / f"review-{lang}-{tab}-{wh}.png"))
                    # nothing wider than the screen
                    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
                    page.context.close()
        finally:
            browser.close()
    assert errors == []
