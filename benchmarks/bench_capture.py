"""Benchmark the capture page: one participant runs the filming protocol in headless
Chromium (Debian's) on a 640x480 15 fps fake camera (the astronaut fixture on a plain grey
background, slight motion), then downloads the zip and uploads it to `utjima serve
--collect`. Reports what a session costs:

- frames per clip, the rate reached (target: protocol.json fps) and the frame intervals;
- bytes per frame and of the whole zip (a plain fake scene compresses better than a room:
  real sessions are larger);
- the page's time from "Download" to the file (zip made in the browser), and from "Upload"
  to the receipt (send + the server's checks + storing);
- the server's check alone (`collect.check_upload` on that zip, in this process);
- the share of frames where the live detector found the face.
Prints a table; the last line is one JSON object.

    .venv/bin/python -m benchmarks.bench_capture               # the real protocol, ~2.5 min
    .venv/bin/python -m benchmarks.bench_capture --scale 0.15  # the test run, ~30 s
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from harness import chromium
from harness.capture import consent, serving, wait_done, with_scale, write_face_camera

TOKEN = "bench-collect-token-0123456789"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0,
                    help="protocol time scale, 0.05..1 (default 1: the real protocol)")
    ap.add_argument("--checks", type=int, default=3, help="times to time the server's check")
    a = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from utjima.data import clips as clipfmt
    from utjima.server import collect

    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        tmp = Path(tmp)
        cam = write_face_camera(tmp / "face.y4m")
        with serving(tmp, TOKEN) as srv, sync_playwright() as pw:
            browser = chromium.launch(pw, fake_video=cam)
            try:
                ctx = browser.new_context(viewport={"width": 1280, "height": 800},
                                          accept_downloads=True)
                ctx.set_default_timeout(60_000)
                page = ctx.new_page()
                page.goto(with_scale(srv.link, a.scale))
                consent(page, "p-bench")
                page.wait_for_selector(".q-chip.ok", timeout=120_000)
                t0 = time.perf_counter()
                page.click("#start")
                wait_done(page, timeout_s=600)
                session_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                with page.expect_download() as dl:
                    page.click("#download")
                zpath = tmp / "session.zip"
                dl.value.save_as(zpath)
                download_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                page.click("#upload")
                page.wait_for_selector("#receipt:not([hidden])", timeout=120_000)
                upload_s = time.perf_counter() - t0
            finally:
                browser.close()
            cs = clipfmt.load(srv.collect_dir)
            manifest = json.loads((srv.collect_dir / "manifest.json").read_text())
        data = zpath.read_bytes()
        checks = []
        for _ in range(a.checks):
            t0 = time.perf_counter()
            collect.check_upload(data, collect.Limits())
            checks.append(time.perf_counter() - t0)
        with zipfile.ZipFile(zpath) as z:
            frame_bytes = [i.file_size for i in z.infolist() if i.filename.endswith(".jpg")]

    protocol = json.loads((Path(__file__).resolve().parents[1] / "utjima" / "web" / "capture"
                           / "protocol.json").read_text())
    rows, rates, gaps = [], [], []
    for clip, entry in zip(cs.clips, manifest["clips"], strict=True):
        dur_s = next(p["duration_ms"] for p in protocol["prompts"]
                     if p["id"] == entry["prompt"]) * a.scale / 1000
        rates.append(len(clip) / dur_s)
        gaps += np.diff(clip.times_ms).tolist()
        rows.append((entry["prompt"], len(clip), len(clip) / dur_s))
    faces = [f for e in manifest["clips"] for f in e["quality"]["face"] if f is not None]
    n_frames = sum(len(c) for c in cs.clips)
    summary = {
        "scale": a.scale, "clips": len(cs.clips), "frames": n_frames,
        "session_s": round(session_s, 1),
        "fps_target": protocol["fps"], "fps_median": round(statistics.median(rates), 2),
        "fps_min": round(min(rates), 2),
        "interval_ms_p50": round(float(np.percentile(gaps, 50)), 1),
        "interval_ms_p95": round(float(np.percentile(gaps, 95)), 1),
        "frame_kb_mean": round(statistics.mean(frame_bytes) / 1024, 1),
        "frame_size": list(cs.clips[0].frames.shape[2:0:-1]),
        "zip_mb": round(len(data) / 1e6, 2),
        "download_s": round(download_s, 2), "upload_s": round(upload_s, 2),
        "server_check_s": round(min(checks), 2),
        "face_found_share": round(float(np.mean(faces)), 3) if faces else None,
    }
    print(f"{'prompt':14s} {'frames':>6s} {'fps':>6s}")
    for name, n, r in rows:
        print(f"{name:14s} {n:6d} {r:6.2f}")
    print()
    for k, v in summary.items():
        print(f"{k:18s} {v}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
