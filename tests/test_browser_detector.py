"""utjima/web/detector/detector.js in headless Chromium: the /demo page on a fake camera (camera
rate, faces, smile meter, a free main thread), the same on a dim camera with a player sitting
back (faces found and judged), parity with Python's `Stream` on the same frames, and that no
request leaves the page but same-origin GETs of static files.

Two Chromiums for the module (a fake camera each: a neutral -> smiling clip written from
SMILEsmileD's test split, or the astronaut fixture without the research archives; and the
same faces 88 px wide in a dim room at 30 % brightness with sensor noise, harness/scenes.py),
one server (`utjima serve`, else harness/server.py's stand-in). About 30-60 s on 2 cores.
UTJIMA_TEST_MODEL=DIR runs it all against another model folder.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import time
from urllib.parse import urlsplit

import numpy as np
import pytest

from harness import chromium, fakecam, scenes
from harness.server import running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

CAMERA_FPS = 30
WARMUP_S = 1.0  # results before this are not judged (model warm-up, JIT)
WINDOW_S = 4.0  # judged camera time (the clip loops every 3 s)
MIN_FPS = 24.0  # frames processed per second on a 30 fps camera
MIN_FACE_RATE = 0.9
DARK_FACE_PX = 88  # the dim camera's face: 40 % of the clean clip's 220 px
DARK_SPLIT_X = 320.0  # its neutral face sits left of this, the smiling one right
# The main thread stays free: the page's total blocking time (sum over main-thread tasks of
# their time beyond 50 ms) stays small and animation frames keep their 60 Hz median. On a
# shared 2-core machine a 5 ms task preempted by other processes can still read 50+ ms.
MAX_BLOCKING_MS = 100.0
MAX_RAF_P50_MS = 20.0
SEGMENT_SETTLE_MS = 700.0  # after the face switches, the 5-frame/400 ms window still mixes both
SMILE_MARGIN = 0.1  # trained model: mean smile_prob, smiling minus neutral
PARITY_TOL = 1e-3  # smile_prob and emotion probabilities, browser vs Python
BOX_TOL = 0.05 + 1e-3  # px: Python's Stream rounds boxes to 0.1 px
ALLOWED_PATHS = ("/demo", "/static/", "/models/default/", "/vendor/ort/", "/vendor/fonts/",
                 "/favicon.ico")
# another model folder (e.g. a fresh export); default: the bundled model
MODEL_DIR = os.environ.get("UTJIMA_TEST_MODEL")


@pytest.fixture(scope="module")
def sync_api():
    return pytest.importorskip("playwright.sync_api",
                               reason="playwright is a dev dependency (make setup)")


@pytest.fixture(scope="module")
def faces(request) -> fakecam.Faces:
    try:
        root = request.getfixturevalue("dataset_cache")("smilesmiled")
    except pytest.skip.Exception:
        return fakecam.astronaut_faces()
    return fakecam.pick_smilesmiled(root)


@pytest.fixture(scope="module")
def clip(faces, tmp_path_factory):
    path = tmp_path_factory.mktemp("fakecam") / "neutral_then_smiling.y4m"
    frames = fakecam.smile_clip(faces, seconds_each=1.5, fps=CAMERA_FPS)
    return fakecam.write_y4m(path, frames, fps=CAMERA_FPS)


@pytest.fixture(scope="module")
def dark_clip(faces, tmp_path_factory):
    """The same two faces, small, in a dim room through a noisy sensor (CAMERAS["dark+small"])."""
    path = tmp_path_factory.mktemp("fakecam") / "dark_small.y4m"
    frames = scenes.fake_camera_clip(faces.neutral, faces.smiling, scenes.CAMERAS["dark+small"],
                                     seconds_each=2.0, fps=CAMERA_FPS, face_px=DARK_FACE_PX,
                                     centres=(DARK_SPLIT_X - 20, DARK_SPLIT_X + 20))
    return fakecam.write_y4m(path, frames, fps=CAMERA_FPS)


@pytest.fixture(scope="module")
def server():
    with running_server(MODEL_DIR) as srv:
        yield srv


@pytest.fixture(scope="module")
def playwright(sync_api):
    """One Playwright for the module (its sync API runs one at a time)."""
    try:
        chromium.ensure_chromium()
    except chromium.ChromiumMissing as e:
        pytest.skip(str(e))
    with sync_api.sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright, clip):
    b = chromium.launch(playwright, fake_video=clip)
    yield b
    b.close()


class Traffic:
    """Every request and websocket any page or worker of the context opens."""

    def __init__(self, context):
        self.requests: list[tuple[str, str, bool]] = []  # method, url, has a body
        self.websockets: list[str] = []
        context.on("request", lambda r: self.requests.append(
            (r.method, r.url, r.post_data_buffer is not None)))
        context.on("page", lambda p: p.on("websocket", lambda ws: self.websockets.append(ws.url)))


@pytest.fixture(scope="module")
def context(browser):
    ctx = browser.new_context(locale="ko-KR")
    traffic = Traffic(ctx)
    yield ctx, traffic
    ctx.close()


@pytest.fixture(scope="module")
def contract():
    from utjima.contract import load_contract

    return load_contract(MODEL_DIR)


def open_page(ctx, url: str, state: str):
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function(f"() => ['{state}', 'failed'].includes(document.body.dataset.state)",
                           timeout=60_000)
    assert page.evaluate("document.body.dataset.state") == state, page.inner_text("#status")
    assert not errors, errors
    return page


# --- the demo page on the fake camera --------------------------------------------------------


@pytest.fixture(scope="module")
def camera_run(context, server):
    """/demo with the fake camera: results over WARMUP_S + WINDOW_S, long tasks, the DOM."""
    ctx, _ = context
    return run_demo(ctx, server)


def run_demo(ctx, server) -> dict:
    """/demo on the context's camera for WARMUP_S + WINDOW_S: results, long tasks, the DOM;
    `judged` = the results after the warm-up."""
    page = open_page(ctx, server.url + "/demo", "running")
    page.evaluate("""() => {
      window.longTasks = [];
      new PerformanceObserver((l) => window.longTasks.push(
        ...l.getEntries().map((e) => e.duration))).observe({ type: "longtask" });
      window.rafTimes = [];
      const tick = (t) => { window.rafTimes.push(t); requestAnimationFrame(tick); };
      requestAnimationFrame(tick);
    }""")
    time.sleep(WARMUP_S + WINDOW_S + 0.3)
    out = page.evaluate("""() => ({
      results: window.utjimaDemo.results, longTasks: window.longTasks, rafTimes: window.rafTimes,
      source: window.utjimaDemo.detector.frameSource, info: window.utjimaDemo.detector.info,
      isolated: crossOriginIsolated,
      fpsText: document.getElementById("fps").textContent,
      backendText: document.getElementById("backend").textContent,
      emotions: [...document.querySelectorAll("#emotions li .name")].map((e) => e.textContent),
      threshold: document.getElementById("meter-threshold").style.left,
      video: [document.getElementById("video").videoWidth,
              document.getElementById("video").videoHeight],
    })""")
    page.close()
    res = out["results"]
    t0 = res[0]["t_ms"] + WARMUP_S * 1000
    out["judged"] = [r for r in res if t0 <= r["t_ms"] < t0 + WINDOW_S * 1000]
    return out


def test_camera_frames_processed_at_camera_rate(camera_run):
    judged = camera_run["judged"]
    assert camera_run["source"] == "MediaStreamTrackProcessor"
    assert camera_run["video"] == [fakecam.FRAME_W, fakecam.FRAME_H]
    fps = len(judged) / WINDOW_S
    ms = np.median([r["ms"]["total"] for r in judged])
    print(f"camera: {fps:.1f} fps processed, pipeline p50 {ms:.1f} ms, "
          f"backend {camera_run['info']}")
    assert fps >= MIN_FPS, f"{fps:.1f} frames/s processed from a {CAMERA_FPS} fps camera"
    assert judged[-1]["fps"] >= MIN_FPS
    assert ms < 1000 / CAMERA_FPS
    ts = [r["t_ms"] for r in judged]
    assert all(b > a for a, b in zip(ts, ts[1:], strict=False)), "t_ms must increase"


def test_camera_main_thread_stays_free(camera_run):
    assert camera_run["source"] == "MediaStreamTrackProcessor", \
        "frames go to the worker, not through the page"
    blocking = sum(max(0.0, d - 50.0) for d in camera_run["longTasks"])
    raf_p50 = float(np.median(np.diff(camera_run["rafTimes"])))
    print(f"main thread: long tasks {camera_run['longTasks']}, blocking {blocking:.0f} ms, "
          f"rAF p50 {raf_p50:.1f} ms")
    assert blocking <= MAX_BLOCKING_MS, f"main-thread tasks over 50 ms: {camera_run['longTasks']}"
    assert raf_p50 <= MAX_RAF_P50_MS


def test_camera_face_found_and_scored(camera_run, contract):
    judged = camera_run["judged"]
    rate = np.mean([r["face"] for r in judged])
    assert rate >= MIN_FACE_RATE, f"face in {rate:.0%} of frames"
    for r in judged:
        if r["face"]:
            assert 0.0 <= r["smile_prob"] <= 1.0
            assert list(r["emotion"]) == contract.classes
            assert abs(sum(r["emotion"].values()) - 1) < 1e-4
            x1, y1, x2, y2 = r["box"]
            assert 0 < x2 - x1 < fakecam.FRAME_W and 0 < y2 - y1 < fakecam.FRAME_H
            assert set(r["ms"]) >= {"detect", "crop", "encode", "step", "total"}


def test_demo_page_shows_results(camera_run, contract):
    assert float(camera_run["fpsText"]) >= MIN_FPS
    assert "wasm" in camera_run["backendText"] or "webgpu" in camera_run["backendText"]
    assert camera_run["isolated"] and camera_run["info"]["crossOriginIsolated"]
    encoder = contract.data.get("browser", {}).get("encoder", "encoder")
    assert camera_run["info"]["encoder"] == encoder
    assert camera_run["emotions"][3] == "행복"  # ko-KR locale: Korean labels
    threshold_pct = float(camera_run["threshold"].rstrip("%"))
    assert threshold_pct == pytest.approx(100 * contract.smile_threshold, abs=0.05)


def _segments(results: list[dict], **split) -> dict[str, list[float]]:
    """smile_prob by clip segment, leaving out the frames right after the face switched;
    `split`: fakecam.segment_of's split_x for a clip of its own."""
    out: dict[str, list[float]] = {"neutral": [], "smiling": []}
    last_seg, since = None, -np.inf
    for r in results:
        if not r["face"]:
            last_seg = None
            continue
        seg = fakecam.segment_of(r["box"], **split)
        if seg != last_seg:
            last_seg, since = seg, r["t_ms"]
        if r["t_ms"] - since >= SEGMENT_SETTLE_MS:
            out[seg].append(r["smile_prob"])
    return out


def _neutral_and_smiling(judged: list[dict], contract, faces, what: str,
                         **split) -> tuple[float, float]:
    """Mean smile_prob of each segment (both must be seen); skips the test where the clip or
    the model cannot tell them apart (the astronaut fixture, an untrained placeholder)."""
    seg = _segments(judged, **split)
    assert seg["neutral"] and seg["smiling"], "both segments of the clip were seen"
    neutral, smiling = np.mean(seg["neutral"]), np.mean(seg["smiling"])
    print(f"{what}: neutral {neutral:.3f} (n={len(seg['neutral'])}), smiling {smiling:.3f} "
          f"(n={len(seg['smiling'])}); faces {faces.source} {faces.ids}")
    if faces.source == "astronaut":
        pytest.skip("no SMILEsmileD archive: the clip has no neutral/smiling pair")
    training = str(contract.data.get("provenance", {}).get("training", ""))
    if training.startswith("none"):
        pytest.skip(f"untrained placeholder model (provenance.training = {training!r}): "
                    f"neutral {neutral:.3f} vs smiling {smiling:.3f} not asserted")
    return neutral, smiling


def test_camera_smile_prob_follows_the_face(camera_run, contract, faces):
    neutral, smiling = _neutral_and_smiling(camera_run["judged"], contract, faces, "smile_prob")
    assert smiling - neutral >= SMILE_MARGIN, f"smiling {smiling:.3f} vs neutral {neutral:.3f}"


# --- a dim camera, the player sitting back -------------------------------------------------


@pytest.fixture(scope="module")
def dark_run(playwright, dark_clip, server):
    """/demo in a second Chromium whose camera is the dim, small clip."""
    b = chromium.launch(playwright, fake_video=dark_clip)
    ctx = b.new_context()
    try:
        yield run_demo(ctx, server)
    finally:
        ctx.close()
        b.close()


def test_dark_small_camera_faces_found_and_judged(dark_run, contract, faces):
    """The face a whole-frame pass at 128 px misses (88 px in 640, 30 % brightness, noise) is
    found in the frames and followed around its box; smile_prob follows the expression."""
    judged = dark_run["judged"]
    assert len(judged) / WINDOW_S >= MIN_FPS
    rate = np.mean([r["face"] for r in judged])
    searches = {r["search"] for r in judged}
    print(f"dim camera: face in {rate:.1%} of {len(judged)} frames; searches {sorted(searches)}")
    assert rate >= MIN_FACE_RATE, f"face in {rate:.0%} of frames ({sorted(searches)})"
    assert "roi" in searches, "the face is followed in a square around it"
    for r in judged:  # on the face: near one of its two places, about its size
        if r["face"]:
            x1, y1, x2, y2 = r["box"]
            cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1)
            assert 0.3 * DARK_FACE_PX <= side <= 1.5 * DARK_FACE_PX, f"box {r['box']}"
            assert abs(cy - fakecam.FRAME_H / 2) < DARK_FACE_PX / 4, f"box {r['box']}"
            assert DARK_SPLIT_X - 20 - DARK_FACE_PX / 4 < cx < DARK_SPLIT_X + 20 + DARK_FACE_PX / 4
    neutral, smiling = _neutral_and_smiling(judged, contract, faces, "dim camera smile_prob",
                                            split_x=DARK_SPLIT_X)
    threshold = contract.smile_threshold
    assert smiling - neutral >= SMILE_MARGIN, f"smiling {smiling:.3f} vs neutral {neutral:.3f}"
    assert neutral < threshold <= smiling, (f"judged wrong at the threshold {threshold:.3f}: "
                                            f"neutral {neutral:.3f}, smiling {smiling:.3f}")


# --- parity with Python on the same frames -------------------------------------------------


def parity_frames(faces: fakecam.Faces) -> list[tuple[float, np.ndarray]]:
    """(t_ms, RGB frame): moving and tilted faces, a colour photo, a frame with no face
    (the window resets), other frame sizes, and time gaps longer than the window."""
    astro = fakecam.astronaut_face()
    frames = []
    t = 1000.0
    for i in range(4):
        frames.append((t, fakecam.compose(faces.neutral, 250 + 7 * i, 230 - 3 * i)))
        t += 33.4
    frames.append((t, fakecam.compose(faces.smiling, 300, 250, angle_deg=14.0)))
    t += 120.0
    frames.append((t, fakecam.compose(astro, 330, 240, face_px=260, angle_deg=-9.0)))
    t += 33.3
    frames.append((t, np.full((480, 640, 3), 90, np.uint8)))  # no face: reset
    t += 33.3
    frames.append((t, fakecam.compose(faces.smiling, 160, 120, face_px=120, size=(320, 240))))
    t += 700.0
    frames.append((t, fakecam.compose(faces.neutral, 400, 260, face_px=180, angle_deg=5.0)))
    t += 16.7
    frames.append((t, fakecam.compose(astro, 320, 240, face_px=90)))
    # a dim room, the player sitting back: found by the tile scan, followed around its box,
    # carried between detections; then gone from the room: held, then reported gone
    cam = scenes.CAMERAS["dark+small"]
    clip = scenes.Clip(faces.smiling, cam, seed=11)
    empty = scenes.Clip(faces.smiling, dataclasses.replace(cam, person=False), seed=11)
    t += 700.0
    for i in range(20):
        frames.append((t, (clip if i < 8 else empty).frame(i)[0]))
        t += 33.3
    return frames


def test_parity_with_python_stream(context, server, contract, faces):
    from utjima.runtime import SmileModel

    role = contract.data.get("browser", {}).get("encoder", "encoder")
    assert role in ("encoder", "encoder_int8"), \
        f"browser.encoder {role!r}: SmileModel cannot load it"
    stream = SmileModel(MODEL_DIR, threads=1, int8=role == "encoder_int8").stream()

    ctx, _ = context
    page = open_page(ctx, server.url + "/demo?camera=off", "ready")
    page.evaluate("""async () => {
      const { createDetector } = await import("/static/detector/detector.js");
      window.parityDetector = await createDetector({ threads: 1 });
    }""")
    worst = {"smile_prob": 0.0, "emotion": 0.0, "box": 0.0}
    for t_ms, rgb in parity_frames(faces):
        want = stream.process(t_ms, rgb)
        h, w = rgb.shape[:2]
        rgba = np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], axis=2)
        got = page.evaluate("""async ([b64, w, h, t]) => {
          const bin = atob(b64), px = new Uint8ClampedArray(bin.length);
          for (let i = 0; i < bin.length; i++) px[i] = bin.charCodeAt(i);
          return window.parityDetector.processFrame(new ImageData(px, w, h), t);
        }""", [base64.b64encode(rgba.tobytes()).decode(), w, h, t_ms])
        assert got["face"] == want["face"], \
            f"t={t_ms}: browser face={got['face']}, Python {want['face']}"
        if not want["face"]:
            assert got["smile_prob"] is None and got["box"] is None
            continue
        worst["box"] = max(worst["box"], float(np.abs(np.subtract(got["box"], want["box"])).max()))
        worst["smile_prob"] = max(worst["smile_prob"], abs(got["smile_prob"] - want["smile_prob"]))
        emotion = max(abs(got["emotion"][k] - v) for k, v in want["emotion"].items())
        worst["emotion"] = max(worst["emotion"], emotion)
    page.evaluate("window.parityDetector.dispose()")
    page.close()
    print("parity, max |browser - python|:", json.dumps(worst))
    assert worst["smile_prob"] <= PARITY_TOL
    assert worst["emotion"] <= PARITY_TOL
    assert worst["box"] <= BOX_TOL


# --- privacy: nothing but same-origin GETs of static files -----------------------------------


def test_no_request_leaves_the_page(context, server, camera_run):
    """Runs after the camera and parity tests (file order), over everything they loaded."""
    _, traffic = context
    origin = urlsplit(server.url)
    assert traffic.requests, "the recorder saw the page load"
    assert any("/models/default/" in u for _, u, _ in traffic.requests), \
        "worker requests are recorded too"
    for method, url, has_body in traffic.requests:
        u = urlsplit(url)
        assert (u.scheme, u.netloc) == (origin.scheme, origin.netloc), \
            f"cross-origin request {method} {url}"
        assert method == "GET" and not has_body, f"{method} {url} (body: {has_body})"
        assert u.path.startswith(ALLOWED_PATHS), f"unexpected path {u.path}"
    assert traffic.websockets == [], f"websockets opened: {traffic.websockets}"
