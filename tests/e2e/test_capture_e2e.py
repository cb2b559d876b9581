"""The capture page end to end, in headless Chromium with a fake camera, against the real
`utjima serve --collect DIR` (docs/capture.md).

- `test_a_participant_records_and_uploads`: a participant opens the operator's link
  (first with a wrong token), consents, runs the protocol (every segment, shortened with
  ?scale), downloads the zip and uploads the session; what landed is read back with
  `utjima.data.clips.load` and checked against the protocol timeline (labels, margins,
  frames, times, quality from the live detector, participant, device, lighting). Then bad
  uploads made from that real zip (over the limit, wrong token, overlapping segments, a
  clip without frames) each get one clear error and change nothing; last, the participant
  deletes their clips from the page.
- `test_a_participant_on_another_device_uploads_over_https`: the same over HTTPS on a name
  that is not loopback (`serve --tls --collect`), phone-sized, checked by the traffic log.
- `test_the_game_never_records`: the landing page's camera check and a room with the live
  detector never construct a MediaRecorder, encode a canvas or touch the capture routes.
- `test_capture_screenshots`: the consent, a prompt with its countdown and a quality
  warning (a dark camera), and the done/upload screen, at phone and laptop sizes, in
  English and Korean (written to .cache/e2e/).
"""

from __future__ import annotations

import http.client
import io
import json
import re
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from harness import fakecam
from harness.capture import Serving, consent, serving, wait_done, with_scale, write_face_camera
from harness.chromium import remote_args
from utjima.data import clips as clipfmt

from .support import CHROMIUM_ARGS, REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOKEN = "e2e-collect-token-0123456789"
SCALE = 0.15  # every protocol time x 0.15: the whole protocol in about 20 s
MAX_UPLOAD = 8 * 1024 * 1024  # the server's limit in these tests (a short session is ~1.5 MB)
PROTOCOL = json.loads((REPO_ROOT / "utjima" / "web" / "capture" / "protocol.json").read_text())
PHONE, LAPTOP = {"width": 390, "height": 844}, {"width": 1280, "height": 800}


# --- fake cameras and the server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def camera(tmp_path_factory) -> Path:
    return write_face_camera(tmp_path_factory.mktemp("cam") / "face.y4m")


@pytest.fixture(scope="module")
def dark_camera(tmp_path_factory) -> Path:
    return write_face_camera(tmp_path_factory.mktemp("cam") / "dark.y4m", brightness=0.25)


@pytest.fixture
def collecting(tmp_path) -> Iterator[Serving]:
    with serving(tmp_path, TOKEN, {"UTJIMA_COLLECT_MAX_UPLOAD_BYTES": str(MAX_UPLOAD)}) as srv:
        port = urllib.parse.urlsplit(srv.base).port
        assert srv.link == f"http://localhost:{port}/capture#token={TOKEN}", srv.log.read_text()
        yield srv


@pytest.fixture
def plain_server(tmp_path) -> Iterator[Serving]:
    with serving(tmp_path) as srv:
        assert srv.link == "" and "collecting" not in srv.log.read_text()
        yield srv


def _post(base: str, body: bytes | int, token: str | None = TOKEN) -> tuple[int, dict]:
    """POST an upload; an int `body` only declares that many bytes and sends none (the
    server answers an over-limit upload before reading it, and closes)."""
    headers = {"content-type": "application/zip"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if isinstance(body, int):
        conn = http.client.HTTPConnection(urllib.parse.urlsplit(base).netloc, timeout=30)
        conn.putrequest("POST", "/api/collect/uploads")
        for k, v in {**headers, "content-length": str(body)}.items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        out = r.status, json.loads(r.read())
        conn.close()
        return out
    req = urllib.request.Request(base + "/api/collect/uploads", data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _browser(pw, chromium: Path, cam: Path):
    return pw.chromium.launch(executable_path=str(chromium),
                              args=CHROMIUM_ARGS + [f"--use-file-for-fake-video-capture={cam}"])


# --- the participant's session -----------------------------------------------------------------


def _expected_labels(prompt: dict, times_ms: np.ndarray) -> tuple[list[int], list[str | None]]:
    """The protocol timeline's labels for frames at `times_ms` (clip time)."""
    start = round(PROTOCOL["margin_start_ms"] * SCALE)
    end = round(prompt["duration_ms"] * SCALE) - round(PROTOCOL["margin_end_ms"] * SCALE)
    inside = (times_ms >= start) & (times_ms < end)
    smile = [prompt["smile"] if i and prompt["smile"] is not None else -1 for i in inside]
    emotion = [prompt["emotion"] if i else None for i in inside]
    return smile, emotion


def test_a_participant_records_and_uploads(chromium, camera, collecting, tmp_path):
    from playwright.sync_api import sync_playwright

    srv = collecting
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = _browser(pw, chromium, camera)
        try:
            ctx = browser.new_context(viewport=LAPTOP, locale="en-US", accept_downloads=True)
            ctx.set_default_timeout(30_000)
            page = ctx.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            # a link with a wrong token: said at once, and kept out of the address bar
            page.goto(with_scale(f"{srv.base}/capture#token=wrong-token-0123456789", SCALE))
            page.wait_for_selector("#error:not([hidden])")
            assert "token is wrong" in page.text_content("#error")
            assert "#token" not in page.url
            # no consent, no recording
            page.click("#continue")
            assert "agree" in page.text_content("#consent-error")
            assert page.is_hidden("#stage")
            consent(page, "p-e2e01", "dim", "fake camera, astronaut photo")
            page.wait_for_selector(".q-chip.ok", timeout=90_000)  # the live detector sees a face
            page.click("#start")
            page.wait_for_selector('body[data-phase="record"]')
            assert page.is_visible(".rec")
            wait_done(page)
            rows = page.locator("#summary tbody tr")
            assert rows.count() == len(PROTOCOL["prompts"])
            # download: the zip made in the browser is a clip folder
            with page.expect_download() as dl:
                page.click("#download")
            zpath = tmp_path / dl.value.suggested_filename
            dl.value.save_as(zpath)
            assert re.fullmatch(r"utjima-p-e2e01-s\d{8}-\d{4}-[a-z2-9]{4}\.zip", zpath.name)
            # upload: the wrong token again, then the right one
            assert page.is_visible("#token-box")
            page.fill("#token", "still-wrong-token-0123")
            page.click("#upload")
            page.wait_for_selector("#upload-status.error")
            assert "token is wrong" in page.text_content("#upload-status")
            assert srv.stored() == []
            page.fill("#token", TOKEN)
            page.click("#upload")
            page.wait_for_selector("#receipt:not([hidden])", timeout=60_000)
            assert "Uploaded 13 clips as p-e2e01" in page.text_content("#upload-status")
            assert len(page.input_value("#ptoken")) >= 32
            _check_what_landed(srv, zpath, tmp_path)
            _bad_uploads_change_nothing(srv, zpath)
            # delete my clips, from the page, with the token it was given
            page.click("#delete-now")
            page.wait_for_selector("#upload-status:has-text('Deleted 13 clips')")
            assert clipfmt.load(srv.collect_dir).clips == []
            assert not (srv.collect_dir / "p-e2e01").exists()
        finally:
            browser.close()
    assert errors == []


def _check_what_landed(srv: Serving, zpath: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(zpath) as z:
        assert z.testzip() is None
        z.extractall(tmp_path / "download")
        sent = {n: z.read(n) for n in z.namelist()}
    downloaded = clipfmt.load(tmp_path / "download")
    cs = clipfmt.load(srv.collect_dir)
    manifest = json.loads((srv.collect_dir / "manifest.json").read_text())
    prompts = {p["id"]: p for p in PROTOCOL["prompts"]}
    assert cs.crop == "full" and downloaded.crop == "full"
    assert [c.id for c in cs.clips] == [c.id for c in downloaded.clips]
    assert [e["prompt"] for e in manifest["clips"]] == [p["id"] for p in PROTOCOL["prompts"]]
    face_seen = []
    for clip, entry in zip(cs.clips, manifest["clips"], strict=True):
        prompt = prompts[entry["prompt"]]
        assert clip.subject == "p-e2e01" and entry["session"] in zpath.name
        assert entry["frames_dir"] == f"p-e2e01/{clip.id}"
        n = len(clip)
        duration = round(prompt["duration_ms"] * SCALE)
        assert n >= 0.5 * duration / 100, (clip.id, n)  # ~10 frames per second
        assert clip.frames.shape == (n, 360, 480, 3)  # 640x480 camera, long side 480
        assert 0 <= clip.times_ms[0] < 200 and clip.times_ms[-1] < duration
        assert 60 <= np.median(np.diff(clip.times_ms)) <= 150
        assert clip.frames[:, :20, :20].mean() == pytest.approx(fakecam.BACKGROUND, abs=8)
        smile, emotion = _expected_labels(prompt, clip.times_ms)
        assert clip.smile.tolist() == smile, clip.id
        names = [None if e < 0 else clipfmt.EMOTIONS[e] for e in clip.emotion_label]
        assert names == emotion, clip.id
        assert clip.clip_smile == (-1 if prompt["clip_smile"] is None else prompt["clip_smile"])
        assert (clip.smile == -1)[clip.times_ms < round(PROTOCOL["margin_start_ms"] * SCALE)].all()
        cap = entry["capture"]
        assert cap["lighting"] == "dim" and cap["notes"] == "fake camera, astronaut photo"
        assert cap["protocol"] == {"id": PROTOCOL["id"], "version": 1, "scale": SCALE}
        assert cap["device"]["width"] == 640 and cap["device"]["height"] == 480
        assert cap["lang"] == "en" and cap["consent"] == "capture-consent/1"
        q = entry["quality"]
        assert len(q["luma"]) == n and all(abs(v - 150) < 30 for v in q["luma"])
        face_seen += [f for f in q["face"] if f is not None]
        # stored byte for byte as the browser sent it
        for i in (0, n - 1):
            name = f"{clip.id}/{i:06d}.jpg"
            assert (srv.collect_dir / "p-e2e01" / name).read_bytes() == sent[name]
    # the live detector ran during the capture and saw the fake camera's face
    assert len(face_seen) > 0.8 * sum(len(c) for c in cs.clips)
    assert np.mean(face_seen) > 0.9


def _bad_uploads_change_nothing(srv: Serving, zpath: Path) -> None:
    """Bad uploads made from the real zip: one clear error each, the collection untouched."""
    good = zpath.read_bytes()
    before = srv.stored()
    manifest_before = (srv.collect_dir / "manifest.json").read_bytes()

    def rezip(change) -> bytes:
        src = zipfile.ZipFile(io.BytesIO(good))
        m = json.loads(src.read("manifest.json"))
        names = change(m)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as out:
            out.writestr("manifest.json", json.dumps(m))
            for n in src.namelist():
                if n != "manifest.json" and n not in names:
                    out.writestr(n, src.read(n))
        return buf.getvalue()

    def overlap(m):
        seg = m["clips"][5]["segments"][0]
        m["clips"][5]["segments"].append({**seg, "start_ms": seg["start_ms"] + 10})
        return set()

    def no_frames(m):
        cid = m["clips"][2]["id"]
        return {n for n in zipfile.ZipFile(io.BytesIO(good)).namelist() if n.startswith(cid + "/")}

    cases = [
        ("over the limit", MAX_UPLOAD + 1, TOKEN, 413, "limited to 8388608 bytes"),
        ("wrong token", good, "a-wrong-token-0123456789", 403, "token is wrong"),
        ("no token", good, None, 401, "need the collection token"),
        ("overlapping segments", rezip(overlap), TOKEN, 422, "overlaps segments[0]"),
        ("a clip without frames", rezip(no_frames), TOKEN, 422, "has no frames"),
        ("the same session again", good, TOKEN, 409, "participant id p-e2e01 already has clips"),
    ]
    for what, body, token, status, words in cases:
        code, answer = _post(srv.base, body, token)
        assert code == status, (what, answer)
        assert set(answer) == {"detail"} and words in answer["detail"]["message"], (what, answer)
        assert srv.stored() == before, what
        assert (srv.collect_dir / "manifest.json").read_bytes() == manifest_before, what


def test_a_participant_on_another_device_uploads_over_https(chromium, camera, serve, tmp_path):
    """The participant's own device: `serve --tls --collect` behind a name that is not
    loopback (https://utjima.test), the link it prints, a secure context with a camera,
    the whole (shortened) protocol, the upload; the traffic log shows that the upload was
    the only body of any size the server received."""
    from playwright.sync_api import sync_playwright

    host = "utjima.test"
    srv = serve("--tls", "--collect", str(tmp_path / "clips"), "--collect-token", TOKEN,
                public_host=host)
    link = re.search(r"https://\S+/capture#token=\S+", srv.log.read_text()).group(0)
    assert link == f"{srv.url(host)}/capture#token={TOKEN}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS + [
            f"--use-file-for-fake-video-capture={camera}", *remote_args(srv.cert, host)])
        try:
            page = browser.new_page(viewport=PHONE)
            page.set_default_timeout(60_000)
            page.goto(with_scale(link, 0.1))
            assert page.evaluate("isSecureContext && crossOriginIsolated")
            consent(page, "p-phone01")
            page.click("#start")
            wait_done(page)
            page.click("#upload")
            page.wait_for_selector("#receipt:not([hidden])")
        finally:
            browser.close()
    cs = clipfmt.load(tmp_path / "clips")
    assert len(cs.clips) == len(PROTOCOL["prompts"])
    assert {c.subject for c in cs.clips} == {"p-phone01"}
    bodies = [r for r in srv.traffic_records() if r.get("kind") == "http" and r["bytes"] > 16384]
    assert [(r["method"], r["path"], r["content_type"]) for r in bodies] == [
        ("POST", "/api/collect/uploads", "application/zip")]


# --- the game never records ---------------------------------------------------------------------

RECORDING_PROBE = """
window.__recording = {MediaRecorder: 0, toBlob: 0, toDataURL: 0, convertToBlob: 0};
if (window.MediaRecorder) {
  const Real = window.MediaRecorder;
  window.MediaRecorder = function (...a) {
    window.__recording.MediaRecorder++;
    return new Real(...a);
  };
}
const canvas = HTMLCanvasElement.prototype, offscreen = window.OffscreenCanvas?.prototype;
for (const [proto, name] of [[canvas, "toBlob"], [canvas, "toDataURL"],
                             [offscreen, "convertToBlob"]]) {
  if (!proto || !proto[name]) continue;
  const real = proto[name];
  proto[name] = function (...a) { window.__recording[name]++; return real.apply(this, a); };
}
"""


def test_the_game_never_records(chromium, camera, plain_server):
    from playwright.sync_api import sync_playwright

    srv = plain_server
    requests: list[tuple[str, str, int]] = []
    with sync_playwright() as pw:
        browser = _browser(pw, chromium, camera)
        try:
            ctx = browser.new_context(viewport=LAPTOP, locale="en-US")
            ctx.set_default_timeout(60_000)
            ctx.add_init_script(RECORDING_PROBE)
            ctx.on("request", lambda r: requests.append(
                (r.method, r.url, len(r.post_data_buffer or b""))))
            page = ctx.new_page()
            page.goto(srv.base + "/")
            page.click("#camera")  # the landing page's camera check runs the detector
            page.wait_for_selector("#face.ok", timeout=90_000)
            page.fill("#nickname", "Quiet")
            page.click("#create")
            page.wait_for_selector("#created:not([hidden])")
            page.click("#enter")
            page.wait_for_selector(".tile.me")
            page.wait_for_timeout(4000)  # the room's detector streams scores meanwhile
            probe = page.evaluate("window.__recording")
        finally:
            browser.close()
    assert probe == {"MediaRecorder": 0, "toBlob": 0, "toDataURL": 0, "convertToBlob": 0}
    assert not [u for _, u, _ in requests if "/api/collect" in u or "/capture" in u]
    assert max(n for _, _, n in requests) < 16 * 1024  # nothing the size of a frame went out
    # and without --collect the upload routes say so
    code, answer = _post(srv.base, b"PK", TOKEN)
    assert code == 404 and "--collect" in answer["detail"]["message"]


# --- screenshots ----------------------------------------------------------------------------------


def test_capture_screenshots(chromium, dark_camera, collecting, shots):
    """Consent, a recording prompt with its countdown and a quality warning, and the upload
    receipt, at 390x844 and 1280x800, in English and Korean."""
    from playwright.sync_api import sync_playwright

    srv = collecting
    taken = []
    with sync_playwright() as pw:
        browser = _browser(pw, chromium, dark_camera)
        try:
            for lang, locale in (("en", "en-US"), ("ko", "ko-KR")):
                ctx = browser.new_context(viewport=LAPTOP, locale=locale)
                ctx.set_default_timeout(60_000)
                page = ctx.new_page()

                def shot(name: str, full: bool, page=page, lang=lang) -> None:
                    for size in (LAPTOP, PHONE):
                        page.set_viewport_size(size)
                        path = shots / f"capture-{lang}-{name}-{size['width']}x{size['height']}.png"
                        page.screenshot(path=str(path), full_page=full)
                        taken.append(path)
                    page.set_viewport_size(LAPTOP)

                page.goto(with_scale(srv.link, 0.3))
                page.wait_for_selector('body[data-step="consent"]')
                page.fill("#participant", f"p-shots-{lang}")
                shot("1-consent", full=True)
                consent(page, f"p-shots-{lang}", "dim")
                page.click("#start")
                page.wait_for_selector('body[data-prompt="talking"][data-phase="record"]')
                page.wait_for_selector('.q-chip.warn[data-warning="dark"]')
                assert page.is_visible("#prompt-say")
                shot("2-prompt", full=False)
                wait_done(page)
                page.click("#upload")
                page.wait_for_selector("#receipt:not([hidden])", timeout=60_000)
                shot("3-done", full=True)
                text = page.text_content("body")
                if lang == "ko":
                    assert "업로드했습니다" in text and "삭제 토큰" in text
                else:
                    assert "Uploaded 13 clips" in text
                ctx.close()
        finally:
            browser.close()
    assert len(taken) == 12 and all(p.stat().st_size > 10_000 for p in taken)
