"""Per-frame latency of the exported model on onnxruntime CPU (native, not the browser).

Measures, at 1 and 2 threads:
- streaming: encoder (fp32, int8) once + step over the window = the cost of one camera frame
- seed:      the seed-spec full pass on (1, 5, 3, 224, 224): our smile_detector.onnx (same
             contract, our trunk inside) and the seed design's own graph (MobileNetV3-Small on
             five 224x224 RGB frames, utjima.export.seed_reference; needs the train extra)
- face detector (BlazeFace short, 128x128) for reference
Prints a table and, last, one JSON line.

    .venv/bin/python benchmarks/bench_model.py [--model DIR] [--runs 300]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from functools import partial

import numpy as np

from utjima.contract import load_contract
from utjima.export import seed_reference
from utjima.utils import ort_session


def timeit(fn, runs: int, warmup: int = 20) -> dict:
    for _ in range(warmup):
        fn()
    ts = np.empty(runs)
    for i in range(runs):
        t = time.perf_counter()
        fn()
        ts[i] = time.perf_counter() - t
    return {"p50_ms": float(np.median(ts) * 1e3), "p90_ms": float(np.quantile(ts, 0.9) * 1e3)}


def camera_frame(enc, step, crop, window) -> None:
    """One streaming frame: encode the new crop, slide it into the window, run the step."""
    feat = enc.run(None, {"crop": crop})[0]
    window[0, -1] = feat[0]
    step.run(None, {"window": window})


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    ap.add_argument("--runs", type=int, default=300)
    args = ap.parse_args(argv)
    c = load_contract(args.model)
    s, ch = c.size, 1 if c.channels == "gray" else 3
    t, f = int(c.streaming["n_frames"]), int(c.streaming["feature_dim"])
    rng = np.random.default_rng(0)
    crop = rng.random((1, ch, s, s), dtype=np.float32)
    window = rng.standard_normal((1, t, f)).astype(np.float32)
    frames = rng.random((1, 5, 3, 224, 224), dtype=np.float32)
    det_in = rng.random((1, 3, 128, 128), dtype=np.float32) * 2 - 1
    rows = {}
    for threads in (1, 2):
        step = ort_session(c.path("step"), threads)
        rows[f"step_{threads}t"] = timeit(partial(step.run, None, {"window": window}), args.runs)
        for role in ("encoder", "encoder_int8"):
            if not c.has(role):
                continue
            enc = ort_session(c.path(role), threads)
            rows[f"{role}_{threads}t"] = timeit(partial(enc.run, None, {"crop": crop}), args.runs)
            rows[f"{role}+step_{threads}t"] = timeit(
                partial(camera_frame, enc, step, crop, window), args.runs)
        for name, path in (("seed_contract_ours", c.path("seed")),
                           ("seed_spec_full", seed_reference())):
            sess = ort_session(path, threads)
            rows[f"{name}_{threads}t"] = timeit(partial(sess.run, None, {"frames": frames}),
                                                max(20, args.runs // 10), 3)
        det = ort_session(c.path("face_detector"), threads)
        rows[f"face_detector_{threads}t"] = timeit(partial(det.run, None, {"input": det_in}),
                                                   args.runs)

    sizes = {role: e["bytes"] for role, e in c.data["files"].items()}
    print(f"model {c.dir} ({c.data['name']}), {s}x{s} {c.channels}, T={t}, F={f}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          "onnxruntime CPU")
    print(f"{'measurement':28s} {'p50 ms':>8s} {'p90 ms':>8s}")
    for k, v in rows.items():
        print(f"{k:28s} {v['p50_ms']:8.3f} {v['p90_ms']:8.3f}")
    print("file sizes: " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items()))
    speedup = rows["seed_spec_full_1t"]["p50_ms"] / rows["encoder+step_1t"]["p50_ms"]
    print(f"one streaming frame (encoder+step, 1 thread) costs 1/{speedup:.0f} of the seed "
          "design's full pass")
    out = {k.replace("+", "_plus_") + "_p50_ms": round(v["p50_ms"], 4) for k, v in rows.items()}
    out.update({"speedup_vs_seed_1t": round(speedup, 1), "bytes": sizes, "model": c.data["name"]})
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
