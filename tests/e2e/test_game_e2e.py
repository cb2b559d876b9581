"""A whole match in headless Chromium: two player browsers (one process each, fake cameras)
and a spectator browser against `utjima serve`.

Player A creates a room, B joins by the invite link, a spectator watches; both calibrate
on a neutral face and play; B's camera smiles, so B loses each round; between the rounds
B's page is closed and reopened within the grace period and keeps its seat and score; A
wins, the match is stored and shown on the history page. Throughout, the server's
traffic log proves that only small JSON messages reached it (no media), and the pages
made no request to any other origin.

- `test_match_real_detector`: the real on-device detector (utjima/web/detector/detector.js) and
  the bundled model, on fake cameras made from FER+ faces (clearly neutral, then clearly
  smiling). Skips, saying why, when the bundled model cannot tell those faces apart.
- `test_match_scripted_detector`: the same flow with a scripted stand-in for detector/detector.js
  (tests/e2e/stub_detector.js, injected by Playwright, not by the server), so the pages,
  protocol and WebRTC are tested whatever the model's quality.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest
from server_helpers import MAX_WS_BYTES, audit_no_media

from utjima.contract import sha256_file

from .fakecam import pick_faces, write_y4m
from .support import CHROMIUM_ARGS, Server, create_room

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STUB = Path(__file__).with_name("stub_detector.js").read_text()
SERVER_ENV = dict(rounds_to_win=2, calib_ms=4000, countdown_ms=2000, verdict_ms=3000,
                  grace_ms=30000, round_ms=60000)


LAUGHED = '.tile.me .meter[data-laugh="laughed"]'


def phase(page, name: str, timeout_s: float) -> None:
    page.wait_for_selector(f'body[data-phase="{name}"]', timeout=timeout_s * 1000)


def scores(page) -> dict[str, int]:
    return page.evaluate("""() => Object.fromEntries(
        [...document.querySelectorAll('#scoreboard li')].map(li => [
            li.querySelector('span').textContent, +li.querySelector('strong').textContent]))""")


def videos_playing(page) -> list[int]:
    return page.evaluate(
        "() => [...document.querySelectorAll('.tile video')].map(v => v.videoWidth)")


class Players:
    """The three browsers and what their pages requested."""

    def __init__(self, pw, stack: ExitStack, chromium: Path, server: Server,
                 cams: dict[str, str | None], stub: bool) -> None:
        self.server, self.requests, self.errors = server, [], []
        self.contexts = {}
        for who, cam in cams.items():
            args = CHROMIUM_ARGS + ([f"--use-file-for-fake-video-capture={cam}"] if cam else [])
            browser = pw.chromium.launch(executable_path=str(chromium), args=args)
            stack.callback(browser.close)
            # the spectator watches on a phone-sized screen: the pages must stay readable
            phone = who == "s"
            viewport = {"width": 390, "height": 844} if phone else {"width": 1000, "height": 760}
            ctx = browser.new_context(viewport=viewport)
            ctx.set_default_timeout(30_000)
            if stub:
                ctx.route("**/static/detector/detector.js",
                          lambda r: r.fulfill(body=STUB, content_type="text/javascript"))
            ctx.on("request", lambda req: self.requests.append(req.url))
            self.contexts[who] = ctx

    def page(self, who: str):
        page = self.contexts[who].new_page()
        page.on("pageerror", lambda e: self.errors.append(f"{who}: {e}"))
        return page


def play_match(pw, chromium: Path, server: Server, shots: Path, tag: str,
               cams: dict[str, str | None], stub: bool, smile: Callable,
               round_timeout_s: float) -> dict:
    """The scenario; `smile(page)` makes B's camera smile (a no-op for the real detector,
    whose video turns to a smile by itself). Returns what the checks need."""
    shot = lambda page, name: page.screenshot(path=str(shots / f"{tag}-{name}.png"))  # noqa: E731
    t0 = time.monotonic()
    timings = {}
    with ExitStack() as stack:
        b = Players(pw, stack, chromium, server, cams, stub)
        # A creates the room on the landing page
        a = b.page("a")
        a.goto(server.base + "/")
        invite = create_room(a, "Ana")
        code = a.text_content("#created-code")
        assert invite == f"{server.base}/r/{code}"
        shot(a, "1-landing")
        a.click("#enter")
        a.wait_for_selector(".tile.me")
        # B joins through the invite link; a spectator watches
        bo = b.page("b")
        bo.goto(invite)
        bo.fill("#nickname", "Bo")
        bo.click("#join-player")
        bo.wait_for_selector(".tile.me")
        spec = b.page("s")
        spec.goto(invite + "?spectate=1")
        spec.fill("#nickname", "Sam")
        spec.click("#join-spectator")
        spec.wait_for_selector(".tile >> nth=1")
        # both detectors running (the Ready button waits for them)
        for p in (a, bo):
            p.wait_for_selector("#ready:not([disabled])", timeout=90_000)
        timings["detectors_ready_s"] = time.monotonic() - t0
        me_b = bo.get_attribute(".tile.me", "data-id")
        a.wait_for_function("() => [...document.querySelectorAll('.tile video')]"
                            ".every(v => v.videoWidth > 0)",
                            timeout=30_000)
        shot(a, "2-lobby")
        a.click("#ready")
        bo.click("#ready")
        phase(a, "calibrating", 10)
        shot(bo, "3-calibrating")
        phase(a, "round", 20)
        timings["round1_start_s"] = time.monotonic() - t0
        shot(spec, "4-round-spectator")
        smile(bo)
        # B's page runs the server's judge rules on the scores it sends (local_judge.js):
        # its own meter says "laughed", and the cue flashed, from the samples being judged
        bo.wait_for_selector(LAUGHED, timeout=round_timeout_s * 1000)
        # once the laugh counts, the tile never says "almost" (it says "laughed" until the
        # verdict, which may already be in)
        assert bo.get_attribute(".tile.me .cue", "data-cue") != "almost"
        shot(bo, "4-round-laughed")
        phase(a, "verdict", round_timeout_s)
        timings["round1_verdict_s"] = time.monotonic() - t0
        verdict = a.text_content("#big")
        assert "Bo" in verdict, verdict
        assert a.get_attribute(".tile.me .meter", "data-laugh") == "", "A kept a straight face"
        assert scores(a) == {"Ana": 1, "Bo": 0}
        assert all(w > 0 for w in videos_playing(spec)), "the spectator sees both players"
        shot(a, "5-verdict")
        shot(spec, "5-verdict-spectator")
        # B closes the page and opens the invite link again, within the grace period
        bo.close()
        phase(a, "paused", 15)
        shot(a, "6-paused")
        bo = b.page("b")
        bo.goto(invite)
        bo.wait_for_selector(".tile.me")
        assert bo.get_attribute(".tile.me", "data-id") == me_b, "the same seat came back"
        assert bo.is_hidden("#join-panel")
        assert scores(bo) == {"Ana": 1, "Bo": 0}, "the score survived the reload"
        phase(a, "round", 90)
        timings["round2_start_s"] = time.monotonic() - t0
        smile(bo)
        phase(a, "match_over", round_timeout_s)
        timings["match_over_s"] = time.monotonic() - t0
        assert "Ana" in a.text_content("#big")
        assert scores(a) == {"Ana": 2, "Bo": 0}
        a.wait_for_selector("#saved")
        href = a.get_attribute("#saved", "href")
        shot(a, "7-match-over")
        shot(bo, "7-match-over-loser")
        # the history page shows the stored match
        spec.goto(server.base + href)
        spec.wait_for_selector("details[open] tr.round >> nth=1")
        text = spec.text_content("details[open]")
        assert "Ana" in text and "Bo" in text
        shot(spec, "8-history")
        spec.goto(server.base + "/leaderboard")
        spec.wait_for_selector("#board table")
        shot(spec, "9-leaderboard")
        spec.click("#lang")  # switch to Korean (the choice sticks across pages)
        spec.goto(server.base + "/")
        assert spec.text_content("#create") == "방 만들기"
        shot(spec, "10-landing-ko")
        assert not b.errors, b.errors
        return {"requests": b.requests, "href": href, "code": code, "timings": timings}


def check_stored_and_private(server: Server, result: dict) -> None:
    # the result is in the database, through the API
    [m] = server.get("/api/matches")
    assert f"#m{m['id']}" in result["href"] and m["room_code"] == result["code"]
    assert m["winners"] == ["Ana"]
    assert {p["nickname"]: (p["score"], p["result"]) for p in m["players"]} == {
        "Ana": (2, "win"), "Bo": (0, "loss")}
    detail = server.get(f"/api/matches/{m['id']}")
    assert [r["losers"] for r in detail["rounds"]] == [["Bo"], ["Bo"]]
    assert all(r["reason"] == "laugh" for r in detail["rounds"])
    # no media reached the server: every websocket message was small JSON of a known
    # type, no binary frame, and no HTTP request carried a body of any size
    records = server.traffic_records()
    audit_no_media(records)
    ws = [r for r in records if r["kind"] == "ws"]
    bodies = [r for r in records if r["kind"] == "http" and r["bytes"]]
    assert sum(r["bytes"] for r in ws if r["type"] == "score") / max(1, len(
        [r for r in ws if r["type"] == "score"])) < 120  # {t_ms, face, smile_prob} only
    # the pages talked to our origin only
    foreign = [u for u in result["requests"]
               if not (u.startswith(server.base) or u.startswith(("data:", "blob:")))]
    assert not foreign, foreign
    summary = {"ws_messages": len(ws), "ws_bytes": sum(r["bytes"] for r in ws),
               "by_type": {t: sum(1 for r in ws if r["type"] == t) for t in MAX_WS_BYTES},
               "http_bodies": len(bodies), **result["timings"]}
    print("traffic:", json.dumps(summary))


def test_match_scripted_detector(chromium, serve, shots):
    from playwright.sync_api import sync_playwright

    server = serve(**SERVER_ENV)

    def smile(page):
        time.sleep(1.0)
        page.evaluate("window.__stubProb = 0.95")

    with sync_playwright() as pw:
        result = play_match(pw, chromium, server, shots, "scripted",
                            {"a": None, "b": None, "s": None},
                            stub=True, smile=smile, round_timeout_s=20)
    check_stored_and_private(server, result)


NEUTRAL_S = 30.0  # B's fake camera: this long neutral (calibration happens here) ...
SMILE_S = 10.0  # ... then this long smiling; Chromium loops the file


@pytest.fixture(scope="module")
def cameras(dataset_cache, shots) -> dict:
    """Fake camera files from FER+ faces the bundled model separates (cached per model)."""
    ferplus = dataset_cache("ferplus")
    from utjima.contract import default_model_dir

    key = sha256_file(default_model_dir() / "model.json")[:12]
    cache = shots / f"faces-{key}.json"
    if cache.is_file():
        pick = json.loads(cache.read_text())
    else:
        pick = pick_faces(ferplus)
        cache.write_text(json.dumps(pick, indent=1))
    if not pick["ok"]:
        pytest.skip(pick["why"])
    from PIL import Image

    neutral, smiling = Image.open(pick["neutral"]), Image.open(pick["smile"])
    a = shots / f"cam-a-{key}.y4m"
    b = shots / f"cam-b-{key}.y4m"
    if not a.is_file():
        write_y4m(a, [(neutral, 20.0)])
    if not b.is_file():
        write_y4m(b, [(neutral, NEUTRAL_S), (smiling, SMILE_S)])
    return {"a": str(a), "b": str(b), "pick": pick}


@pytest.mark.data
def test_match_real_detector(chromium, serve, shots, cameras):
    from playwright.sync_api import sync_playwright

    server = serve(**SERVER_ENV)
    with sync_playwright() as pw:
        result = play_match(pw, chromium, server, shots, "real",
                            {"a": cameras["a"], "b": cameras["b"], "s": None},
                            stub=False, smile=lambda page: None,
                            # a smile that comes before the round holds it at "straight
                            # face, please" until the file loops back to neutral: then a
                            # whole neutral stretch passes before the smile that loses it
                            round_timeout_s=2 * (NEUTRAL_S + SMILE_S))
    check_stored_and_private(server, result)
