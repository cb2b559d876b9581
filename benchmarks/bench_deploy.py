"""The seed's deployment table (SEED_SPEC.md, "Deployment choices"), measured side by side in
one run on this machine, each row doing what it does per camera frame as shipped:

1. server API: `utjima serve --predict` over loopback. A 640x480 camera frame is JPEG-encoded
   by the client, POSTed to /api/predict and answered with its faces: encode + HTTP +
   decode + detect + model, timed by the client (p50/p90), with the server's own split.
   Stateless, so the face detector runs on every frame.
2. onnxruntime-web WASM, 1 and 2 threads: the browser detector's per-frame pipeline on a
   30 fps fake camera in headless Chromium (benchmarks/bench_browser.py's camera run):
   detect (every model.json streaming.detect_interval_ms) + crop + encode + step.
3. native onnxruntime: the same streaming pipeline in Python (utjima.runtime.Stream, the
   encoder the browser uses), 1 thread.
4. the game, end to end: two Chromium processes play a match against `utjima serve`.
   Player B's camera is a canvas stream showing a neutral face that turns into a smiling
   one at a moment the script picks; the latency runs until player A's page shows the
   verdict. Split: B's camera -> B's first score over B's threshold (detector and its
   window), that score -> A's page receiving the verdict (network + the judge, which
   confirms a laugh only after judge.min_laugh_ms), receipt -> A's page showing it.

The seed quoted: server API ~100 ms+, ONNX Runtime Web WASM 60-80 ms, WebGL 30-50 ms.
WebGL/WebGPU are not measured: headless Chromium here has no GPU.
Prints a table; the last line is one JSON object.

    .venv/bin/python -m benchmarks.bench_deploy                  # ~2-3 minutes
    .venv/bin/python -m benchmarks.bench_deploy --frames 100 --laughs 3
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.bench_browser import camera_faces, camera_run, pct
from harness import chromium, fakecam
from harness.server import free_port

ROOT = Path(__file__).resolve().parents[1]
SEED = {"server": "~100 ms+", "wasm": "60-80 ms", "webgl": "30-50 ms"}
# two browsers share the cores: keep background pages at full speed, play without a click
GAME_ARGS = [*chromium.ARGS, "--autoplay-policy=no-user-gesture-required",
             "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
             "--disable-backgrounding-occluded-windows"]
GAME_ENV = {"UTJIMA_CALIB_MS": "4000", "UTJIMA_COUNTDOWN_MS": "1000",
            "UTJIMA_VERDICT_MS": "1500", "UTJIMA_ROUNDS_TO_WIN": "9", "UTJIMA_MAX_ROUNDS": "9",
            "UTJIMA_ROUND_MS": "30000",
            # one client sends every frame here, as fast as answers come back
            "UTJIMA_PREDICT_RATE_PER_S": "1000", "UTJIMA_PREDICT_BURST": "1000"}

# A camera whose picture the script switches: `window.__laugh()` turns the neutral face into
# the smiling one and returns the wall-clock time it did (performance.timeOrigin + now).
# Sent scores and received room views are recorded with their times too.
CANVAS_CAMERA = """(() => {
  const now = () => performance.timeOrigin + performance.now();
  const frames = %s;  // {neutral, smile}: JPEG data URLs, 640x480
  let show = "neutral";
  window.__sent = []; window.__rooms = [];
  window.__laugh = () => { show = "smile"; return now(); };
  window.__calm = () => { show = "neutral"; };
  navigator.mediaDevices.getUserMedia = async () => {
    const canvas = document.createElement("canvas");
    canvas.width = 640; canvas.height = 480;
    const g = canvas.getContext("2d");
    const img = {};
    for (const k of ["neutral", "smile"]) {
      img[k] = new Image(); img[k].src = frames[k]; await img[k].decode();
    }
    const draw = () => g.drawImage(img[show], 0, 0);
    draw();
    setInterval(draw, 1000 / 30);
    return canvas.captureStream(30);
  };
  const Socket = window.WebSocket;
  window.WebSocket = class extends Socket {
    constructor(...a) {
      super(...a);
      this.addEventListener("message", (ev) => {
        const m = JSON.parse(ev.data);
        if (m.type === "room") window.__rooms.push([now(), m.room.phase, m.room]);
      });
    }
    send(data) {
      const m = JSON.parse(data);
      if (m.type === "score") window.__sent.push([now(), m.smile_prob]);
      super.send(data);
    }
  };
  new MutationObserver(() => {
    const p = document.body?.dataset.phase;
    if (p === "verdict") (window.__shown ||= []).push(now());
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-phase"] });
})();"""


def jpeg(rgb: np.ndarray, quality: int = 80) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def stats(xs) -> dict:
    return {"p50": round(pct(xs, 50), 2), "p90": round(pct(xs, 90), 2), "n": len(xs)}


# --- the server ---------------------------------------------------------------------------


class Serve:
    """`utjima serve --predict` on a free port, in a subprocess."""

    def __init__(self, data_dir: Path, model: str | None) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-m", "utjima", "serve", "--predict", "--port", str(self.port),
               "--data-dir", str(data_dir)] + (["--model", model] if model else [])
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **GAME_ENV},
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        if "serving on" not in line:
            self.proc.kill()
            raise RuntimeError(f"utjima serve did not start: {line}{self.proc.stdout.read()}")
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def post(self, path: str, body: dict | None = None) -> dict:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("POST", path, json.dumps(body or {}), {"content-type": "application/json"})
        r = c.getresponse()
        data = json.loads(r.read())
        c.close()
        if r.status >= 300:
            raise RuntimeError(f"POST {path}: {r.status} {data}")
        return data


def server_api(srv: Serve, frames: list[np.ndarray], warmup: int) -> dict:
    """Client-timed: JPEG encode + POST /api/predict + answer, one frame at a time, over one
    kept-alive connection (as a page's fetch would)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    total, encode, server = [], [], {"decode": [], "model": [], "total": []}
    faces = 0
    for i, rgb in enumerate(frames):
        t0 = time.perf_counter()
        body = jpeg(rgb)
        t1 = time.perf_counter()
        conn.request("POST", "/api/predict", body, {"content-type": "image/jpeg"})
        r = conn.getresponse()
        out = json.loads(r.read())
        t2 = time.perf_counter()
        if r.status != 200:
            raise RuntimeError(f"/api/predict: {r.status} {out}")
        if i < warmup:
            continue
        total.append((t2 - t0) * 1000)
        encode.append((t1 - t0) * 1000)
        faces += bool(out["frames"][0]["faces"])
        for k in server:
            server[k].append(out["ms"][k])
    conn.close()
    return {**stats(total), "encode_p50": round(pct(encode, 50), 2),
            "server_p50": {k: round(pct(v, 50), 2) for k, v in server.items()},
            "face_rate": round(faces / max(1, len(total)), 3), "jpeg_bytes": len(jpeg(frames[0]))}


# --- native onnxruntime -----------------------------------------------------------------------


def native(frames: list[np.ndarray], model: str | None, warmup: int) -> dict:
    from utjima.contract import load_contract
    from utjima.runtime import SmileModel

    enc = load_contract(model).data.get("browser", {}).get("encoder", "encoder")
    stream = SmileModel(model, threads=1, int8=enc == "encoder_int8").stream()
    times = []
    for i, rgb in enumerate(frames):
        t0 = time.perf_counter()
        stream.process(i * 1000 / 30, rgb)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    return {**stats(times), "encoder": enc}


# --- onnxruntime-web --------------------------------------------------------------------------


def wasm(pw, srv: Serve, clip: Path, seconds: float, warmup_s: float) -> dict:
    from utjima.contract import load_contract

    interval = float(load_contract().streaming.get("detect_interval_ms", 0.0))
    browser = chromium.launch(pw, fake_video=clip)
    try:
        page = browser.new_page()
        page.goto(srv.url + "/demo?camera=off")
        page.wait_for_function("() => ['ready', 'failed'].includes(document.body.dataset.state)",
                               timeout=120_000)
        isolated = page.evaluate("crossOriginIsolated")
        page.evaluate("window.utjimaDemo.detector.dispose()")
        out = {}
        for threads in (1, 2):
            if threads == 2 and not isolated:
                break
            r = camera_run(page, threads, interval, seconds, warmup_s)
            page.evaluate("window.det.dispose()")
            out[threads] = {"p50": round(r["p50"], 2), "p90": round(r["p90"], 2), "n": r["n"],
                            "fps": round(r["fps"], 1), "backend": r["info"]["backend"]}
    finally:
        browser.close()
    return {"threads": out, "detect_interval_ms": interval, "isolated": isolated}


# --- the game ---------------------------------------------------------------------------------


def game(pw, srv: Serve, faces, laughs: int) -> dict:
    """Two browsers, a room, a match: B laughs `laughs` times at a moment chosen within
    each round; each time, from B's camera to A's verdict."""
    data = {k: "data:image/jpeg;base64," + base64.b64encode(jpeg(fakecam.compose(
        f, fakecam.FRAME_W / 2, fakecam.FRAME_H / 2), 90)).decode()
        for k, f in (("neutral", faces.neutral), ("smile", faces.smiling))}
    code = srv.post("/api/rooms")["code"]
    rng = random.Random(0)
    rows = []
    with ExitStack() as stack:
        pages = {}
        for who, nick in (("a", "Ana"), ("b", "Bo")):
            browser = pw.chromium.launch(executable_path=str(chromium.ensure_chromium()),
                                         args=GAME_ARGS)
            stack.callback(browser.close)
            ctx = browser.new_context(viewport={"width": 1000, "height": 760})
            ctx.add_init_script(CANVAS_CAMERA % json.dumps(data))
            page = ctx.new_page()
            page.goto(f"{srv.url}/r/{code}")
            page.fill("#nickname", nick)
            page.click("#join-player")
            pages[who] = page
        a, b = pages["a"], pages["b"]
        for p in (a, b):
            p.wait_for_selector("#ready:not([disabled])", timeout=180_000)
        me_b = b.get_attribute(".tile.me", "data-id")
        a.click("#ready")
        b.click("#ready")
        for k in range(laughs):
            a.wait_for_selector('body[data-phase="round"]', timeout=60_000)
            time.sleep(rng.uniform(1.0, 2.0))  # a moment into the round
            seen = len(a.evaluate("window.__shown || []"))
            t_laugh = b.evaluate("window.__laugh()")
            try:
                a.wait_for_function("(n) => (window.__shown || []).length > n", arg=seen,
                                    timeout=30_000)
            except Exception as e:
                sent = b.evaluate("window.__sent.slice(-10)")
                phases = [p for _, p, _ in a.evaluate("window.__rooms")][-10:]
                raise RuntimeError(f"no verdict on A's page 30 s after B laughed: A saw phases "
                                   f"{phases}; B's last scores {sent}") from e
            t_shown = a.evaluate("window.__shown")[-1]
            verdict = a.text_content("#big")
            b.evaluate("window.__calm()")
            rooms = a.evaluate("window.__rooms")
            t_msg = next(t for t, phase, _ in rooms if phase == "verdict" and t >= t_laugh)
            threshold = next(m["threshold"] for _, _, r in reversed(rooms)
                             for m in r["members"] if m["id"] == me_b)
            sent = b.evaluate("window.__sent")
            t_hot = next((t for t, p in sent
                          if t >= t_laugh and p is not None and p >= threshold), float("nan"))
            rows.append({"laugh_to_shown_ms": t_shown - t_laugh,
                         "laugh_to_hot_ms": t_hot - t_laugh, "hot_to_received_ms": t_msg - t_hot,
                         "received_to_shown_ms": t_shown - t_msg, "verdict": verdict,
                         "threshold": threshold})
            if "Bo" not in verdict:
                raise RuntimeError(f"round {k + 1}: the verdict was {verdict!r}, not Bo's laugh")
    return {"laughs": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=200, help="camera frames per timed row")
    ap.add_argument("--warmup", type=int, default=10, help="frames discarded first")
    ap.add_argument("--seconds", type=float, default=6.0, help="browser camera time per run")
    ap.add_argument("--laughs", type=int, default=5, help="laughs timed in the game")
    ap.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    ap.add_argument("--rows", default="native,server,wasm,game",
                    help="which rows to measure (comma-separated; default all)")
    a = ap.parse_args(argv)
    rows = set(a.rows.split(","))
    if not rows <= {"native", "server", "wasm", "game"} or not rows:
        ap.error("--rows takes native, server, wasm, game")
    for name in ("frames", "laughs"):
        if getattr(a, name) < 1:
            ap.error(f"--{name} must be >= 1")

    from playwright.sync_api import sync_playwright

    from utjima.contract import load_contract

    faces = camera_faces()
    clip_frames = list(fakecam.smile_clip(faces, seconds_each=1.0, fps=30))
    frames = [clip_frames[i % len(clip_frames)] for i in range(a.frames + a.warmup)]
    load0 = os.getloadavg()[0]
    nat = api = web = play = None
    with tempfile.TemporaryDirectory(prefix="utjima-deploy-") as tmp:
        tmp = Path(tmp)
        if "native" in rows:
            nat = native(frames, a.model, a.warmup)
        srv = Serve(tmp / "data", a.model)
        try:
            if "server" in rows:
                api = server_api(srv, frames, a.warmup)
            with sync_playwright() as pw:
                if "wasm" in rows:
                    clip = fakecam.write_y4m(tmp / "cam.y4m", iter(clip_frames), fps=30)
                    web = wasm(pw, srv, clip, a.seconds, 1.5)
                if "game" in rows:
                    play = game(pw, srv, faces, a.laughs)
        finally:
            srv.close()
    load1 = os.getloadavg()[0]

    summary: dict = {"frames": a.frames, "faces": faces.source, "cores": os.cpu_count(),
                     "loadavg_1m": [round(load0, 2), round(load1, 2)]}
    print(f"deployment, measured on this machine ({os.cpu_count()} cores, load average "
          f"{load0:.1f} -> {load1:.1f}), camera frames 640x480 ({faces.source}); ms per frame")
    print(f"{'way':<52}{'p50':>8}{'p90':>8}   seed quoted")
    if api:
        way = "server API, loopback (encode+HTTP+detect+model)"
        print(f"{way:<52}{api['p50']:>8.1f}{api['p90']:>8.1f}   {SEED['server']}")
        summary.update(server_api_ms_p50=api["p50"], server_api_ms_p90=api["p90"],
                       server_api_server_ms_p50=api["server_p50"],
                       server_api_encode_ms_p50=api["encode_p50"],
                       server_api_face_rate=api["face_rate"])
    if web:
        for t, w in web["threads"].items():
            way = f"onnxruntime-web WASM, {t} thread{'s' if t > 1 else ''} (browser pipeline)"
            seed = SEED["wasm"] if t == 1 else ""
            print(f"{way:<52}{w['p50']:>8.1f}{w['p90']:>8.1f}   {seed}")
            summary.update({f"wasm_{t}t_ms_p50": w["p50"], f"wasm_{t}t_ms_p90": w["p90"]})
        summary["detect_interval_ms"] = web["detect_interval_ms"]
    if nat:
        way = "native onnxruntime, 1 thread (same pipeline)"
        print(f"{way:<52}{nat['p50']:>8.1f}{nat['p90']:>8.1f}")
        summary.update(native_ms_p50=nat["p50"], native_ms_p90=nat["p90"],
                       encoder=nat["encoder"])
    print(f"{'WebGL / WebGPU':<52}{'-':>8}{'-':>8}   {SEED['webgl']} (no GPU here)")
    if api:
        sp = api["server_p50"]
        print(f"\nserver API split (server side, p50): decode {sp['decode']} ms, detect+model "
              f"{sp['model']} ms, handler {sp['total']} ms; client JPEG encode "
              f"{api['encode_p50']} ms ({api['jpeg_bytes']} bytes); the server detects on "
              "every frame (stateless)")
    if web:
        print(f"browser pipeline: re-detects every {web['detect_interval_ms']:g} ms "
              "(model.json), as the game runs it")
    if play:
        e2e = [r["laugh_to_shown_ms"] for r in play["laughs"]]
        split = {k: round(pct([r[k] for r in play["laughs"]], 50), 1)
                 for k in ("laugh_to_hot_ms", "hot_to_received_ms", "received_to_shown_ms")}
        min_laugh = load_contract(a.model).data.get("judge", {}).get("min_laugh_ms", 400.0)
        print(f"\nthe game, laugh in front of B's camera -> verdict on A's screen "
              f"({len(e2e)} laughs): p50 {pct(e2e, 50):.0f} ms, p90 {pct(e2e, 90):.0f} ms; "
              f"each {', '.join(f'{x:.0f}' for x in e2e)}")
        print(f"  split p50: camera -> B's first score over its threshold "
              f"{split['laugh_to_hot_ms']} ms; -> A has the verdict {split['hot_to_received_ms']}"
              f" ms (the judge confirms a laugh {min_laugh:g} ms after it starts); -> shown "
              f"{split['received_to_shown_ms']} ms")
        summary.update(game_laugh_to_verdict_ms_p50=round(pct(e2e, 50), 1),
                       game_laugh_to_verdict_ms_p90=round(pct(e2e, 90), 1),
                       game_laugh_to_verdict_ms=[round(x, 1) for x in e2e],
                       game_split_ms_p50=split, judge_min_laugh_ms=min_laugh)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
