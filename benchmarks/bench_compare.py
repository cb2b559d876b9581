"""Compare trained models: validation score, test accuracy and per-frame latency side by side.

Each RUN is a training folder as `tools/train_default.sh` leaves it: `metrics.jsonl` (per
epoch, with the validation score that picked `best.pt`), `eval/report.json` (`utjima
evaluate --checkpoint RUN/best.pt --select-threshold ... --out RUN/eval`) and `export/`
(`utjima export RUN/best.pt --out RUN/export`). Selection uses validation only; the test
columns are reported, never used to choose.

    .venv/bin/python benchmarks/bench_compare.py runs/teacher runs/student runs/scratch

Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from bench_model import camera_frame, timeit

from utjima.contract import load_contract
from utjima.utils import ort_session


def read_run(run: Path, runs: int) -> dict:
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
              if line.strip()]
    report = json.loads((run / "eval" / "report.json").read_text())
    src = report["sources"]
    c = load_contract(run / "export")
    ch = 1 if c.channels == "gray" else 3
    t, f = int(c.streaming["n_frames"]), int(c.streaming["feature_dim"])
    enc_path, step_path = c.path("encoder"), c.path("step")
    enc, step = ort_session(enc_path, threads=1), ort_session(step_path, threads=1)
    rng = np.random.default_rng(0)
    crop = rng.random((1, ch, c.size, c.size), dtype=np.float32)
    window = rng.standard_normal((1, t, f)).astype(np.float32)
    lat = timeit(lambda: camera_frame(enc, step, crop, window), runs)

    def smile(name: str) -> dict:
        s = src[name]["smile"]
        return {"acc": s["accuracy"], "acc_ci": s["ci95"].get("accuracy"), "auc": s["auc"]}

    return {
        "run": str(run),
        "model": c.data.get("name", ""),
        "input": f"{c.size}px {c.channels}",
        "epochs": len(epochs),
        "train_min": round(epochs[-1]["elapsed_s"] / 60, 1),
        "val_score": max(e["val"]["score"] for e in epochs),
        "threshold": report["thresholds"]["selected"],
        "genki": smile("genki4k"),
        "ferplus": smile("ferplus:test"),
        "ferplus_7class": src["ferplus:test"]["emotion"]["accuracy"],
        "smilesmiled": smile("smilesmiled:test"),
        "encoder_mb": round(enc_path.stat().st_size / 1e6, 2),
        "frame_ms_p50_1t": round(lat["p50_ms"], 3),
    }


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--runs-per-model", type=int, default=300, help="timed frames per model")
    args = ap.parse_args(argv)
    rows = [read_run(r, args.runs_per_model) for r in args.runs]
    print("val score = mean of smilesmiled:val AUC, ferplus:valid AUC and 7-class accuracy "
          "(selection);")
    print("test figures at each model's validation-chosen threshold; latency = encoder + step, "
          "onnxruntime CPU, 1 thread")
    head = (f"{'run':28} {'input':10} {'ep':>3} {'min':>5} {'val':>6} {'thr':>5} "
            f"{'GENKI acc/AUC':>14} {'FER+ acc/AUC':>13} {'FER7':>5} {'SMILE acc/AUC':>14} "
            f"{'MB':>5} {'ms':>6}")
    print(head)
    for r in rows:
        g, fp, s = r["genki"], r["ferplus"], r["smilesmiled"]
        print(f"{r['run'][-28:]:28} {r['input']:10} {r['epochs']:>3} {r['train_min']:>5} "
              f"{r['val_score']:.4f} {r['threshold']:.2f}"
              f" {g['acc'] * 100:6.1f}/{g['auc']:.3f} {fp['acc'] * 100:5.1f}/{fp['auc']:.3f} "
              f"{r['ferplus_7class'] * 100:5.1f}"
              f" {s['acc'] * 100:6.1f}/{s['auc']:.3f} {r['encoder_mb']:5.2f} "
              f"{r['frame_ms_p50_1t']:6.3f}")
    print(json.dumps(rows))
    return rows


if __name__ == "__main__":
    main()
