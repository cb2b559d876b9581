"""Benchmark the browser detector in headless Chromium (Playwright + Debian's Chromium).

In one run, on a 640x480 30 fps fake camera (a face from SMILEsmileD's test split, else the
astronaut fixture), with the page cross-origin isolated (`utjima serve`):
- the whole per-frame pipeline (detect + crop + encode + step, as measured in the worker;
  pixel read-out reported apart) at 1 and 2 WASM threads, detecting on every frame, and
  with re-detection every --track-ms (the alternative we measured against);
- frames per second sustained from the camera, and the main thread's state meanwhile;
- each model alone: face detector, encoder (model.json browser.encoder), step;
- the seed-spec full pass: smile_detector.onnx, frames (1, 5, 3, 224, 224), and, when
  torch is installed, the seed *architecture* (MobileNetV3-Small on 224x224 RGB frames x 5
  + LSTM, random weights: what the seed's ~61 ms figure measured);
- the bytes of model files the detector downloads.
Prints a table; the last line is one JSON object.

    .venv/bin/python -m benchmarks.bench_browser              # ~1-2 minutes
    .venv/bin/python -m benchmarks.bench_browser --seconds 4 --runs 50
    .venv/bin/python -m benchmarks.bench_browser --model runs/x/export   # another exported model
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from harness import chromium, fakecam
from harness.server import running_server

SEED_ARCH_FILE = "seed_arch.onnx"


def pct(xs, q: float) -> float:
    return float(np.percentile(xs, q)) if len(xs) else float("nan")


def camera_faces() -> fakecam.Faces:
    from utjima.data import cache

    # the dataset cache training and the tests use ($UTJIMA_CACHE, else ~/.cache/utjima),
    # unpacked from $UTJIMA_DATASETS or ../shared/datasets on first use
    try:
        return fakecam.pick_smilesmiled(cache.prepare("smilesmiled"))
    except (cache.DatasetError, OSError, RuntimeError) as e:
        print(f"(no SMILEsmileD faces: {e}; using the astronaut)", file=sys.stderr)
    return fakecam.astronaut_faces()


def export_seed_arch(path: Path) -> bool:
    """The seed's architecture as ONNX (random weights): MobileNetV3-Small on five 224x224
    RGB frames + LSTM, via utjima.model's "seed" preset and utjima.export.SeedCompat."""
    try:
        import torch

        from utjima.export import SeedCompat, _onnx_export
        from utjima.model import DualHeadSmileDetector, get_config
    except ImportError as e:
        print(f"(seed architecture not measured: {e})", file=sys.stderr)
        return False
    torch.manual_seed(0)
    model = DualHeadSmileDetector(get_config("seed")).eval()
    _onnx_export(SeedCompat(model), (torch.rand(1, 5, 3, 224, 224),), path, ["frames"],
                 ["smile_prob", "emotion_logits"], None, 17)
    return True


CREATE = """async ([threads, interval]) => {
  const { createDetector } = await import("/static/detector/detector.js");
  const opts = { threads, backend: "wasm" };
  if (interval !== null) opts.detectIntervalMs = interval;
  window.det = await createDetector(opts);
  return window.det.info;
}"""

CAMERA = """async (seconds) => {
  const stream = await navigator.mediaDevices.getUserMedia(
    { video: { width: 640, height: 480, frameRate: 30 } });
  const results = [], longTasks = [], raf = [];
  const obs = new PerformanceObserver(
    (l) => longTasks.push(...l.getEntries().map((e) => e.duration)));
  obs.observe({ type: "longtask" });
  let on = true;
  const tick = (t) => { raf.push(t); if (on) requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  window.det.onresult = (r) => results.push(r);
  await window.det.start(stream);
  await new Promise((ok) => setTimeout(ok, seconds * 1000));
  window.det.stop();
  on = false;
  obs.disconnect();
  stream.getTracks().forEach((t) => t.stop());
  return { results, longTasks, raf };
}"""


def camera_run(page, threads: int, interval, seconds: float, warmup_s: float) -> dict:
    info = page.evaluate(CREATE, [threads, interval])
    out = page.evaluate(CAMERA, seconds + warmup_s)
    res = out["results"]
    t0 = res[0]["t_ms"] + warmup_s * 1000 if res else 0
    judged = [r for r in res if r["t_ms"] >= t0]
    span_s = (judged[-1]["t_ms"] - judged[0]["t_ms"]) / 1000 if len(judged) > 1 else float("nan")
    total = [r["ms"]["total"] for r in judged if r["face"]]
    detect_frames = [r["ms"]["total"] for r in judged if r["face"] and r.get("detected", True)]
    raf = np.diff(out["raf"]) if len(out["raf"]) > 1 else np.array([np.nan])
    return {
        "info": info, "n": len(judged),
        "face_rate": float(np.mean([r["face"] for r in judged])) if judged else 0.0,
        "fps": (len(judged) - 1) / span_s if len(judged) > 1 else 0.0,
        "p50": pct(total, 50), "p90": pct(total, 90),
        "mean": float(np.mean(total)) if total else float("nan"),
        "detect_frame_p50": pct(detect_frames, 50),
        "stages": {k: pct([r["ms"][k] for r in judged if r["face"] and k in r["ms"]], 50)
                   for k in ("grab", "detect", "crop", "encode", "step")},
        "blocking_ms": sum(max(0.0, d - 50) for d in out["longTasks"]),
        "raf_p50": float(np.median(raf)),
    }


# Model files alone run in their own worker (bench_browser.worker.js, started from a blob:
# URL on the measured page), with onnxruntime-web set up as the detector's worker sets it up.
MODEL_WORKER = Path(__file__).with_name("bench_browser.worker.js").read_text()
START_MODEL_WORKER = """(src) => {
  const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module", name: "utjima-bench" });
  const pending = new Map();
  let next = 1;
  worker.onmessage = (ev) => {
    const { id, value, error } = ev.data;
    const p = pending.get(id);
    pending.delete(id);
    if (error !== undefined) p.reject(new Error(error));
    else p.resolve(value);
  };
  window.modelTimer = {
    time: (msg) => new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, origin: location.origin, ...msg });
    }),
    dispose: () => { worker.terminate(); URL.revokeObjectURL(url); },
  };
}"""


def model_runs(page, info: dict, specs: dict, runs: int, warmup: int) -> dict:
    """Each model file alone, with the backend and WASM threads the detector reported."""
    page.evaluate(START_MODEL_WORKER, MODEL_WORKER)
    base = {"model": "/models/default/", "ortBase": "/vendor/ort/", "backend": info["backend"],
            "threads": info["threads"], "options": {}}
    out = {}
    for name, (spec, n) in specs.items():
        msg = {**base, "role": spec, "n": n or runs, "warmup": warmup}
        r = page.evaluate("(msg) => window.modelTimer.time(msg)", msg)
        out[name] = {"p50": pct(r["times"], 50), "p90": pct(r["times"], 90)}
    page.evaluate("window.modelTimer.dispose()")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=6.0,
                    help="camera time measured per configuration")
    ap.add_argument("--warmup", type=float, default=1.5, help="camera seconds discarded first")
    ap.add_argument("--runs", type=int, default=100, help="timed runs per model file")
    ap.add_argument("--seed-runs", type=int, default=20, help="timed runs of the 5x224 seed passes")
    ap.add_argument("--track-ms", type=float, default=None,
                    help="re-detect interval of the tracking variant (default: model.json "
                         "streaming.detect_interval_ms when set, else 100)")
    ap.add_argument("--server", choices=("auto", "real", "fixture"), default="auto")
    ap.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    a = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from utjima.contract import load_contract

    contract = load_contract(a.model)
    enc_role = contract.data.get("browser", {}).get("encoder", "encoder")
    configured = float(contract.streaming.get("detect_interval_ms", 0.0))  # what ships
    track_ms = a.track_ms or configured or 100.0
    shipped = "every" if configured == 0 else "track"
    with tempfile.TemporaryDirectory(prefix="utjima-bench-") as tmp:
        tmp = Path(tmp)
        model_dir = tmp / "model"
        shutil.copytree(contract.dir, model_dir)  # + the seed-architecture file beside it
        seed_arch = export_seed_arch(model_dir / SEED_ARCH_FILE)
        faces = camera_faces()
        frames = fakecam.smile_clip(faces, seconds_each=1.0)
        clip = fakecam.write_y4m(tmp / "cam.y4m", frames, fps=30)
        with running_server(model_dir, prefer=a.server) as srv, sync_playwright() as pw:
            browser = chromium.launch(pw, fake_video=clip)
            page = browser.new_page()
            sizes: dict[str, int] = {}

            def on_response(resp):
                if "/models/default/" in resp.url and resp.request.method == "GET":
                    sizes[resp.url.rsplit("/", 1)[-1]] = int(resp.headers.get("content-length", 0))

            page.on("response", on_response)
            page.goto(srv.url + "/demo?camera=off")
            page.wait_for_function(
                "() => ['ready', 'failed'].includes(document.body.dataset.state)", timeout=60_000)
            loaded = dict(sizes)  # what the detector itself fetched
            model_bytes = sum(v for k, v in loaded.items() if k.endswith(".onnx"))
            isolated = page.evaluate("crossOriginIsolated")
            page.evaluate("window.utjimaDemo.detector.dispose()")

            cams, models = {}, {}
            for threads in (1, 2):
                if threads == 2 and not isolated:
                    break
                for mode, interval in (("every", 0.0), ("track", track_ms)):
                    cams[(threads, mode)] = camera_run(page, threads, interval, a.seconds, a.warmup)
                    page.evaluate("window.det.dispose()")
                    if mode == "every":
                        specs = {"face_detector": ("face_detector", 0),
                                 "encoder": (enc_role, 0), "step": ("step", 0)}
                        if threads == 1:
                            specs["seed_full"] = ("seed", a.seed_runs)
                            if seed_arch:
                                arch = {"path": SEED_ARCH_FILE,
                                        "inputs": {"frames": [1, 5, 3, 224, 224]}}
                                specs["seed_arch"] = (arch, a.seed_runs)
                        models[threads] = model_runs(page, cams[(threads, mode)]["info"], specs,
                                                     a.runs, 5)
            browser.close()
            server_kind = srv.kind
            load = os.getloadavg()[0]

    c1 = cams[(1, shipped)]
    c2 = cams.get((2, shipped))
    backend = c1["info"]["backend"]
    print(f"browser detector, headless Chromium, {backend}, server: {server_kind}, "
          f"cross-origin isolated: {isolated}")
    print(f"camera 640x480 @ 30 fps ({faces.source}), {a.seconds:.0f} s per row after "
          f"{a.warmup} s warm-up; ms per frame; load average {load:.1f} on {os.cpu_count()} cores")
    how = ("detects on every frame" if shipped == "every"
           else f"re-detects every {configured:g} ms")
    print(f"model.json streaming.detect_interval_ms = {configured:g}: the shipped pipeline {how}")
    print(f"{'configuration':<34}{'p50':>7}{'p90':>7}{'mean':>7}{'fps':>7}{'face':>6}  "
          "stages p50 (grab detect crop encode step)")
    for (threads, mode), c in cams.items():
        name = f"{threads} thread{'s' if threads > 1 else ''}, " + (
            "detect every frame" if mode == "every" else f"re-detect every {track_ms:.0f} ms")
        st = " ".join(f"{c['stages'][k]:.2f}" for k in ("grab", "detect", "crop", "encode", "step"))
        print(f"{name:<34}{c['p50']:>7.2f}{c['p90']:>7.2f}{c['mean']:>7.2f}{c['fps']:>7.1f}"
              f"{c['face_rate']:>6.0%}  {st}")
    print(f"\n{'model alone (constant input)':<34}{'p50':>7}{'p90':>7}")
    for threads, ms in models.items():
        for name, r in ms.items():
            print(f"{name + f' ({threads}t)':<34}{r['p50']:>7.2f}{r['p90']:>7.2f}")
    seed = models[1]["seed_full"]["p50"]
    files = ", ".join(f"{k} {v / 1e6:.2f}" for k, v in sorted(loaded.items()))
    print(f"\nmodel files downloaded: {model_bytes / 1e6:.2f} MB ({files})")
    print(f"main thread during the 1-thread camera run: blocking {c1['blocking_ms']:.0f} ms, "
          f"rAF p50 {c1['raf_p50']:.1f} ms")
    speedup = seed / c1["p50"]
    arch = models[1]["seed_arch"]["p50"] if "seed_arch" in models[1] else None
    summary = {
        "pipeline_ms_p50_1t": round(c1["p50"], 3),
        "pipeline_ms_p50_2t": round(c2["p50"], 3) if c2 else None,
        "pipeline_ms_p90_1t": round(c1["p90"], 3),
        "pipeline_ms_mean_1t": round(c1["mean"], 3),
        "detect_interval_ms": configured,
        "every_frame_ms_p50_1t": round(cams[(1, "every")]["p50"], 3),
        "track_ms_p50_1t": round(cams[(1, "track")]["p50"], 3),
        "track_ms_mean_1t": round(cams[(1, "track")]["mean"], 3),
        "track_interval_ms": track_ms,
        "grab_ms_p50_1t": round(c1["stages"]["grab"], 3),
        "detector_ms_p50_1t": round(models[1]["face_detector"]["p50"], 3),
        "encoder_ms_p50_1t": round(models[1]["encoder"]["p50"], 3),
        "step_ms_p50_1t": round(models[1]["step"]["p50"], 3),
        "seed_full_ms_p50_1t": round(seed, 3),
        "seed_arch_ms_p50_1t": round(arch, 3) if arch is not None else None,
        "speedup_vs_seed_full": round(speedup, 2),
        "speedup_vs_seed_arch": round(arch / c1["p50"], 2) if arch is not None else None,
        # the threads `threads: 0` picks: 2 only when isolated on 4+ logical cores
        "fps_sustained": round((c2 if c2 and (os.cpu_count() or 2) >= 4 else c1)["fps"], 2),
        "fps_sustained_2t": round(c2["fps"], 2) if c2 else None,
        "fps_sustained_1t": round(c1["fps"], 2),
        "main_thread_blocking_ms": round(c1["blocking_ms"], 1),
        "model_bytes": model_bytes,
        "backend": backend,
        "encoder": enc_role,
        "server": server_kind,
        "loadavg_1m": round(load, 2),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
