"""Friends on their own devices: the game over HTTPS on a name that is not loopback, with
the video relayed by a real TURN server, as two computers behind NATs would play it.

The server runs `utjima serve --tls` (its own self-signed certificate) and hands each member
short-lived TURN credentials for a coturn this test starts; `--relay-only` makes the pages
use relayed candidates only. Two browser processes open https://utjima.test:PORT/
(`--host-resolver-rules` maps the name to 127.0.0.1; the certificate is trusted by its
public-key pin), so their pages are secure contexts only because of HTTPS, as on a friend's
phone. They play a whole match; the peer connections are checked to really go through the
relay, and the traffic audit to show no media at the server.

`MATCH` is the list of steps the match test runs, in order, each a function of the shared
`Match`; later work adds steps (a straight-face gate, replays, host settings, a rematch) by
putting them into the list. The other tests: an http:// page on a network name explains
why the camera is blocked (in English and Korean, phone and laptop sizes), and the invite
block's screenshots.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from server_helpers import audit_no_media, audit_replay_window

from harness.chromium import remote_args

from .support import CHROMIUM_ARGS, Server
from .test_game_e2e import phase, scores

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOST = "utjima.test"  # the browsers resolve it to 127.0.0.1; not loopback by name
STUB = Path(__file__).with_name("stub_detector.js").read_text()
SERVER_ENV = dict(rounds_to_win=3, calib_ms=4000, countdown_ms=2000, verdict_ms=6000,
                  round_ms=60000)
SIZES = {"phone": {"width": 390, "height": 844}, "laptop": {"width": 1280, "height": 800}}
# Keeps every RTCPeerConnection a page makes (and the config it was given) on window.__pcs,
# so the test can read getStats(); the page's own code is untouched.
RECORD_PEER_CONNECTIONS = """(() => {
  const Native = window.RTCPeerConnection;
  if (!Native) return;
  window.__pcs = [];
  function Recorded(config, ...rest) {
    const pc = new Native(config, ...rest);
    window.__pcs.push({ pc, config: JSON.parse(JSON.stringify(config || {})) });
    return pc;
  }
  Recorded.prototype = Native.prototype;
  Object.setPrototypeOf(Recorded, Native);
  window.RTCPeerConnection = Recorded;
})();"""
# Per connected peer connection: the policy and ICE servers it was given, and the types of
# the candidates its selected pair uses (relay = through TURN), with the bytes it moved.
SELECTED_PAIRS = """async () => {
  const out = [];
  for (const { pc, config } of window.__pcs || []) {
    if (pc.connectionState !== "connected") continue;
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) {
        pair = stats.get(s.selectedCandidatePairId);
      }
    });
    const local = pair && stats.get(pair.localCandidateId);
    const remote = pair && stats.get(pair.remoteCandidateId);
    out.push({ policy: config.iceTransportPolicy, servers: config.iceServers,
               local: local?.candidateType, remote: remote?.candidateType,
               bytes_sent: pair?.bytesSent ?? 0, bytes_received: pair?.bytesReceived ?? 0 });
  }
  return out;
}"""


def _selected_pairs(page, min_bytes: int, timeout_s: float) -> list[dict]:
    """SELECTED_PAIRS once some connection has received `min_bytes` (or time is up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        pairs = page.evaluate(SELECTED_PAIRS)
        if any(p["bytes_received"] >= min_bytes for p in pairs) or time.monotonic() > deadline:
            return pairs
        time.sleep(0.5)


QR_LOADED = "() => document.querySelector('#invite-qr').naturalWidth > 0"


@dataclass
class Match:
    """What the steps of the match test share. A step reads and adds what it needs."""

    server: Server
    turn: object  # harness.coturn.Coturn
    shots: Path
    pages: dict = field(default_factory=dict)  # "a" (creates the room), "b" (joins) -> Page
    ids: dict = field(default_factory=dict)  # "a"/"b" -> member id
    errors: list = field(default_factory=list)  # uncaught page errors, "who: message"
    requests: list = field(default_factory=list)  # every URL the pages asked for
    code: str = ""
    invite: str = ""
    facts: dict = field(default_factory=dict)  # what the test reports at the end

    @property
    def origin(self) -> str:
        return self.server.url(HOST)

    def shot(self, who: str, name: str) -> None:
        self.pages[who].screenshot(path=str(self.shots / f"reach-{name}.png"))

    def smile(self, who: str, prob: float) -> None:
        """The scripted detector's smile probability on `who`'s page."""
        self.pages[who].evaluate(f"window.__stubProb = {prob}")


def open_browsers(m: Match, pw, stack: ExitStack, chromium: Path) -> None:
    """Two browser processes, each a friend's computer: the server is https://utjima.test."""
    for who in ("a", "b"):
        browser = pw.chromium.launch(executable_path=str(chromium),
                                     args=CHROMIUM_ARGS + remote_args(m.server.cert, HOST))
        stack.callback(browser.close)
        ctx = browser.new_context(viewport=SIZES["laptop"])
        ctx.set_default_timeout(30_000)
        ctx.route("**/static/detector/detector.js",
                  lambda r: r.fulfill(body=STUB, content_type="text/javascript"))
        ctx.add_init_script(RECORD_PEER_CONNECTIONS)
        ctx.on("request", lambda req: m.requests.append(req.url))
        page = ctx.new_page()
        page.on("pageerror", lambda e, who=who: m.errors.append(f"{who}: {e}"))
        m.pages[who] = page


# --- the steps ---------------------------------------------------------------------------


def create_room(m: Match) -> None:
    """A creates a room on the landing page; the invite link and its QR code use the
    address friends reach (the https:// name, never 127.0.0.1)."""
    a = m.pages["a"]
    a.goto(m.origin + "/")
    assert a.evaluate("isSecureContext && crossOriginIsolated"), "HTTPS makes it secure"
    assert a.locator("#camera-blocked").count() == 0
    a.fill("#nickname", "Ana")
    a.click("#create")
    a.wait_for_selector("#created:not([hidden])")
    m.code = a.text_content("#created-code")
    m.invite = a.input_value("#invite-link")
    assert m.invite == f"{m.origin}/r/{m.code}"
    a.wait_for_function(QR_LOADED)
    a.click("#enter")
    a.wait_for_selector(".tile.me")
    m.ids["a"] = a.get_attribute(".tile.me", "data-id")
    a.wait_for_selector("#invite:not([hidden])")
    assert a.input_value("#invite-link") == m.invite


def join_by_invite(m: Match) -> None:
    """B opens the invite link in its own browser and joins as a player."""
    b = m.pages["b"]
    b.goto(m.invite)
    b.fill("#nickname", "Bo")
    b.click("#join-player")
    b.wait_for_selector(".tile.me")
    m.ids["b"] = b.get_attribute(".tile.me", "data-id")
    for who in ("a", "b"):
        m.pages[who].wait_for_function(
            "() => [...document.querySelectorAll('.tile video')].length === 2 && "
            "[...document.querySelectorAll('.tile video')].every(v => v.videoWidth > 0)",
            timeout=60_000)


def video_relayed(m: Match) -> None:
    """Each page's peer connection was made with relay-only ICE and this member's own TURN
    credentials (username "<expiry>:<member id>", no static password), and its selected
    candidate pair is relay to relay with media flowing: the video went through coturn."""
    now = time.time()
    for who in ("a", "b"):
        pairs = _selected_pairs(m.pages[who], min_bytes=20_000, timeout_s=60)
        assert pairs, f"{who}: no connected peer connection"
        for p in pairs:
            assert p["policy"] == "relay", p
            assert (p["local"], p["remote"]) == ("relay", "relay"), p
            assert p["bytes_sent"] > 0 and p["bytes_received"] > 0, p
            [turn] = [s for s in p["servers"] if "username" in s]
            assert turn["urls"] == [m.turn.url]
            expiry, member = turn["username"].split(":")
            assert member == m.ids[who]
            assert now < int(expiry) <= now + 4 * 3600 + 60  # short-lived (turn_ttl_s)
            assert m.turn.secret not in json.dumps(p["servers"])
        m.facts[f"{who}_pairs"] = [(p["local"], p["remote"], p["bytes_received"]) for p in pairs]
    log = m.turn.log_text()
    for who in ("a", "b"):  # coturn accepted each member's own credentials
        assert re.search(rf"user <\d+:{m.ids[who]}>: incoming packet ALLOCATE processed, "
                         "success", log), f"coturn made no allocation for {who}"


def start_match(m: Match) -> None:
    """Both press Ready; calibration on a straight face; the first round starts."""
    a, b = m.pages["a"], m.pages["b"]
    for page in (a, b):
        page.wait_for_selector("#ready:not([disabled])", timeout=60_000)
    a.click("#ready")
    b.click("#ready")
    phase(a, "calibrating", 15)
    phase(a, "round", 30)


def b_laughs(round_no: int, final: bool = False, calm: bool = True) -> Callable[[Match], None]:
    """A step: in round `round_no` B smiles and loses it; then B keeps a straight face
    (unless `calm` is false: B is still laughing when the verdict comes)."""

    def step(m: Match) -> None:
        a = m.pages["a"]
        if round_no > 1:
            phase(a, "round", 30)
        time.sleep(1.0)
        m.smile("b", 0.95)
        phase(a, "match_over" if final else "verdict", 30)
        assert "Bo" in (a.text_content("#phase-text") + a.text_content("#big"))
        assert scores(a) == {"Ana": round_no, "Bo": 0}
        if calm:
            m.smile("b", 0.1)

    step.__name__ = f"b_laughs_round_{round_no}"
    return step


def host_settings(m: Match) -> None:
    """The host sets the rules in the lobby (first to 2, 30 s rounds): B sees them and
    cannot change them; the round that follows is 30 s long."""
    a, b = m.pages["a"], m.pages["b"]
    assert b.is_disabled('#rtw button >> nth=0')
    a.click('#rtw button[data-value="2"]')
    a.click('#round-len button[data-value="30"]')
    b.wait_for_selector('#rtw button[data-value="2"][aria-pressed="true"]')
    b.wait_for_selector('#round-len button[data-value="30"][aria-pressed="true"]')


def laugh_replayed(m: Match) -> None:
    """B's browser sent the seconds around its laugh to A's over the (relayed) data channel;
    A's verdict screen plays them."""
    a, b = m.pages["a"], m.pages["b"]
    m.facts["verdict_t"] = time.time()  # the previous step just saw the verdict
    a.wait_for_selector("#replay.playing", timeout=20_000)
    a.wait_for_function("() => +document.querySelector('#replay-canvas').dataset.shown > 3")
    [received] = a.evaluate("() => utjimaReplay.received")
    [sent] = b.evaluate("() => utjimaReplay.sent")
    assert received["from"] == m.ids["b"] and received["bytes"] == sent["bytes"] > 5_000
    m.facts["replay"] = {"frames": received["n"], "bytes": received["bytes"]}
    m.facts["replay_t"] = time.time()


def straight_face_gate(m: Match) -> None:
    """B is still laughing after the verdict: the next round waits ("straight face,
    please") until B's face has stayed straight for a second."""
    a = m.pages["a"]
    phase(a, "steady", 30)
    assert "Waiting for Bo" in a.text_content("#sub")
    time.sleep(2.0)
    assert a.evaluate("() => document.body.dataset.phase") == "steady"
    m.smile("b", 0.1)
    phase(a, "countdown", 10)


def rematch(m: Match) -> None:
    """The host makes it first to 1; both press Rematch; B laughs again; two matches stored."""
    a, b = m.pages["a"], m.pages["b"]
    a.click('#rtw button[data-value="1"]')
    b.wait_for_selector('#rtw button[data-value="1"][aria-pressed="true"]')
    a.click("#ready")
    b.click("#ready")
    phase(a, "calibrating", 15)
    phase(a, "round", 30)
    time.sleep(1.0)
    m.smile("b", 0.95)
    phase(a, "match_over", 30)
    assert len(m.server.get("/api/matches")) == 2


def match_over(m: Match) -> None:
    """A wins; the match is stored."""
    a = m.pages["a"]
    assert "Ana" in a.text_content("#big")
    a.wait_for_selector("#saved")
    m.shot("a", "match-over")
    [stored] = m.server.get("/api/matches")
    assert stored["room_code"] == m.code and stored["winners"] == ["Ana"]


MATCH: list[Callable[[Match], None]] = [
    create_room, join_by_invite, video_relayed, host_settings, start_match,
    b_laughs(1, calm=False), laugh_replayed, straight_face_gate,
    b_laughs(2, final=True), match_over, rematch,
]


def test_match_over_https_through_turn(chromium, serve, coturn, shots):
    from playwright.sync_api import sync_playwright

    server = serve("--tls", "--turn-url", coturn.url, "--relay-only", public_host=HOST,
                   turn_secret=coturn.secret, **SERVER_ENV)
    m = Match(server=server, turn=coturn, shots=shots)
    t0 = time.monotonic()
    with sync_playwright() as pw, ExitStack() as stack:
        open_browsers(m, pw, stack, chromium)
        for step in MATCH:
            step(m)
            m.facts[f"{step.__name__}_s"] = round(time.monotonic() - t0, 1)
        assert not m.errors, m.errors
    records = server.traffic_records()
    audit_no_media(records)  # no media reached the server, and no byte of the replay:
    m.facts["replay_audit"] = audit_replay_window(
        records, m.facts.pop("verdict_t"), m.facts.pop("replay_t"), m.facts["replay"]["bytes"])
    foreign = [u for u in m.requests if not u.startswith((m.origin, "data:", "blob:"))]
    assert not foreign, foreign  # ... and the pages talked to its origin only
    ws = [r for r in records if r["kind"] == "ws"]
    print("reach:", json.dumps({"ws_messages": len(ws), "ws_bytes": sum(r["bytes"] for r in ws),
                                "signals": sum(r["type"] == "signal" for r in ws), **m.facts}))


# --- plain http:// on a network name ----------------------------------------------------


def test_http_on_a_network_name_explains_the_camera(chromium, serve, shots):
    """http://utjima.test:PORT/ is not a secure context (no navigator.mediaDevices): the
    landing, room and demo pages say why and what to do, in the player's language, instead
    of a JS error; loopback http:// (a secure context) shows no such card."""
    from playwright.sync_api import sync_playwright

    server = serve()
    code = _post(server, "/api/rooms")["code"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium),
                                     args=CHROMIUM_ARGS + remote_args(None, HOST))
        try:
            for lang, title in (("en", "blocks the camera"), ("ko", "카메라를 막고")):
                for size, viewport in SIZES.items():
                    ctx = browser.new_context(viewport=viewport, locale=lang)
                    errors: list[str] = []
                    page = ctx.new_page()
                    page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                    base = server.url(HOST)
                    for name, path in (("landing", "/"), ("room", f"/r/{code}")):
                        page.goto(base + path)
                        card = page.wait_for_selector("#camera-blocked")
                        assert page.evaluate("isSecureContext") is False
                        text = card.text_content()
                        assert title in text and "https://" in text and base in text, text
                        assert "--tls" in text
                        page.screenshot(path=str(shots / f"reach-http-{name}-{lang}-{size}.png"))
                    assert page.is_disabled("#join-player")  # playing needs the camera
                    assert page.is_enabled("#join-spectator")  # watching does not
                    page.goto(base + "/demo?lang=" + lang)
                    page.wait_for_selector("#camera-blocked")
                    page.wait_for_function("() => ['no-camera', 'failed']"
                                           ".includes(document.body.dataset.state)")
                    page.screenshot(path=str(shots / f"reach-http-demo-{lang}-{size}.png"))
                    assert not errors, errors
                    ctx.close()
            ctx = browser.new_context()  # the same server on loopback: a secure context
            page = ctx.new_page()
            page.goto(server.base + "/")
            page.wait_for_selector("#camera")
            assert page.evaluate("isSecureContext") is True
            assert page.locator("#camera-blocked").count() == 0
            ctx.close()
        finally:
            browser.close()


def _post(server: Server, path: str) -> dict:
    import urllib.request

    req = urllib.request.Request(server.base + path, data=b"{}", method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10, context=server.ssl_context()) as r:
        return json.loads(r.read())


# --- the invite block --------------------------------------------------------------------


def decode_qr(png: bytes) -> str:
    """The text of the QR code in a screenshot (OpenCV's detector, as a phone camera)."""
    import cv2
    import numpy as np

    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(img)
    return text


def test_invite_block(chromium, serve, shots):
    """The invite block on the landing page and in the room's lobby, over HTTPS on a
    network name: the link and QR code use that name; Share appears only where the browser
    has the Web Share API, and hands it the link. Screenshots in English and Korean, phone
    and laptop."""
    from playwright.sync_api import sync_playwright

    server = serve("--tls")
    base = server.url(HOST)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium),
                                     args=CHROMIUM_ARGS + remote_args(server.cert, HOST))
        try:
            for lang in ("en", "ko"):
                for size, viewport in SIZES.items():
                    ctx = browser.new_context(viewport=viewport, locale=lang)
                    ctx.route("**/static/detector/detector.js",
                              lambda r: r.fulfill(body=STUB, content_type="text/javascript"))
                    page = ctx.new_page()
                    page.goto(base + "/")
                    assert page.evaluate("'share' in navigator") is False  # Linux Chromium
                    page.fill("#nickname", "Ana")
                    page.click("#create")
                    page.wait_for_selector("#created:not([hidden])")
                    code = page.text_content("#created-code")
                    assert page.input_value("#invite-link") == f"{base}/r/{code}"
                    page.wait_for_function(QR_LOADED)
                    assert page.is_hidden("#share")
                    assert decode_qr(page.locator("#invite-qr").screenshot()) == \
                        f"{base}/r/{code}"  # what a phone camera reads from the screen
                    page.locator("#created").scroll_into_view_if_needed()
                    page.screenshot(path=str(shots / f"reach-invite-landing-{lang}-{size}.png"))
                    page.click("#enter")
                    page.wait_for_selector("#invite:not([hidden])")
                    page.wait_for_function(QR_LOADED)
                    page.locator("#invite").scroll_into_view_if_needed()
                    page.screenshot(path=str(shots / f"reach-invite-room-{lang}-{size}.png"))
                    ctx.close()
            # a browser with the Web Share API (a phone): Share shows and hands over the link
            ctx = browser.new_context(viewport=SIZES["phone"])
            ctx.add_init_script("navigator.share = async (data) => { window.__shared = data; };")
            page = ctx.new_page()
            page.goto(base + "/")
            page.fill("#nickname", "Ana")
            page.click("#create")
            page.wait_for_selector("#share:not([hidden])")
            page.wait_for_function(QR_LOADED)
            page.locator("#created").scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "reach-invite-landing-share-en-phone.png"))
            page.click("#share")
            shared = page.evaluate("window.__shared")
            assert shared["url"] == page.input_value("#invite-link")
            assert page.text_content("#created-code") in shared["text"]
            ctx.close()
        finally:
            browser.close()
