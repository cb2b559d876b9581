"""Measure where BlazeFace's box and keypoints fall inside each training dataset's face crops.

The smile model is trained on dataset crops (FER+ 48 px, SMILEsmileD 64 px) but runs on
crops that `utjima.faces.crop_face` cuts around a detector box. For the two to look alike,
`CropPolicy.scale` and `shift_y` should reproduce the datasets' framing. This script embeds
each crop in a larger canvas (`faces.embed`), runs the detector, and prints per dataset:

  det      fraction of crops where a face is found
  scale    crop side / box side (box side = max(w, h)), median [p10, p90]
  shift_y  (crop centre - box centre) / box side, vertical, + = crop centre lower (chin side)
  shift_x  the same, horizontal
  roll     eye-line angle, degrees (0 = level), mean and std
  eyes_y, mouth_y  keypoint heights as fractions of the crop side

GENKI-4K is a test set: it is measured for information only, never used to pick the policy.
Prints a table; the last line is one JSON object with every figure.

    .venv/bin/python benchmarks/bench_crop_framing.py [--n 300] [--kind short] [--fill edge]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from PIL import Image

from utjima import faces
from utjima.data import cache

# dataset -> (globs under its unpacked folder, role)
DATASETS = {
    "ferplus": (["FER2013Train/*.png"], "train"),
    "smilesmiled": (["positives/positives7/*.jpg", "negatives/negatives7/*.jpg"], "train"),
    "genki4k": (["train_folder/*/*.jpg", "test_folder/*/*.jpg"], "test only: information"),
}


def sample_paths(root: Path, patterns: list[str], n: int, seed: int) -> list[Path]:
    paths = sorted(p for pat in patterns for p in root.glob(pat))
    idx = np.random.default_rng(seed).choice(len(paths), size=min(n, len(paths)), replace=False)
    return [paths[i] for i in sorted(idx)]


def measure_one(crop: np.ndarray, det: faces.FaceDetector, fill: float | None) -> dict | None:
    canvas, off = faces.embed(crop, fill=fill)
    found = det.detect(canvas)
    if not found:
        return None
    f = found[0]
    c = crop.shape[0]
    side = f.side
    cx, cy = f.center[0] - off, f.center[1] - off
    (rx, ry), (lx, ly) = f.keypoints[0], f.keypoints[1]
    mouth_y = f.keypoints[3][1] - off
    return {
        "scale": c / side,
        "shift_x": (c / 2 - cx) / side,
        "shift_y": (c / 2 - cy) / side,
        "roll": math.degrees(math.atan2(ly - ry, lx - rx)),
        "eyes_y": ((ry + ly) / 2 - off) / c,
        "mouth_y": mouth_y / c,
        "aspect": (f.box[3] - f.box[1]) / (f.box[2] - f.box[0]),
        "score": f.score,
    }


def summarise(rows: list[dict], n: int) -> dict:
    out = {"n": n, "det": len(rows) / max(n, 1)}
    for k in ("scale", "shift_y", "shift_x", "roll", "eyes_y", "mouth_y", "aspect", "score"):
        v = np.array([r[k] for r in rows])
        if v.size:
            out[k] = {"mean": float(v.mean()), "std": float(v.std()), "median": float(np.median(v)),
                      "p10": float(np.percentile(v, 10)), "p90": float(np.percentile(v, 90))}
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=300, help="crops sampled per dataset")
    p.add_argument("--kind", choices=tuple(faces.DETECTORS), default="short", help="which detector")
    p.add_argument("--fill", default=str(int(faces.RECROP_FILL)),
                   help="canvas around the crop: 'edge' (replicate) or a grey 0..255 (default: "
                        "what recrop uses)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--datasets", nargs="+", choices=tuple(DATASETS), default=list(DATASETS))
    p.add_argument("--cache", default=None,
                   help="cache root (default $UTJIMA_CACHE or ~/.cache/utjima)")
    args = p.parse_args(argv)
    fill = None if args.fill == "edge" else float(args.fill)
    det = faces.FaceDetector(kind=args.kind)
    report = {"kind": args.kind, "fill": args.fill, "datasets": {}}
    print(f"detector {args.kind}, canvas 3x crop, fill {args.fill}, {args.n} crops per dataset")
    print(f"{'dataset':<12} {'role':<10} {'det':>5}  {'scale med [p10,p90]':<20} {'shift_y':>14} "
          f"{'shift_x':>14} {'roll deg':>12} {'eyes_y':>7} {'mouth_y':>7}")
    rows_by = {}
    for name in args.datasets:
        patterns, role = DATASETS[name]
        root = cache.prepare(name, cache=args.cache)
        paths = sample_paths(root, patterns, args.n, args.seed)
        t = time.perf_counter()
        crops = (np.asarray(Image.open(path).convert("RGB")) for path in paths)
        rows = [r for crop in crops if (r := measure_one(crop, det, fill)) is not None]
        rows_by[name] = rows
        s = summarise(rows, len(paths))
        s["ms_per_crop"] = (time.perf_counter() - t) / max(len(paths), 1) * 1000
        report["datasets"][name] = s
        ms = lambda k, s=s: f"{s[k]['mean']:+.3f}±{s[k]['std']:.3f}"  # noqa: E731
        print(f"{name:<12} {role.split(':')[0]:<10} {s['det']:5.1%}  "
              f"{s['scale']['median']:.3f} [{s['scale']['p10']:.2f},{s['scale']['p90']:.2f}]   "
              f"{ms('shift_y'):>14} {ms('shift_x'):>14} "
              f"{s['roll']['mean']:+5.1f}±{s['roll']['std']:4.1f} "
              f"{s['eyes_y']['median']:7.3f} {s['mouth_y']['median']:7.3f}")
    # A policy square (side S, centre shift sy, in box sides) is "inside" a dataset crop when
    # recropping needs no pixel from beyond the crop's edge (ignoring rotation).
    if "ferplus" in rows_by and "smilesmiled" in rows_by:
        sm, fe = report["datasets"]["smilesmiled"], report["datasets"]["ferplus"]
        candidates = {
            "smilesmiled median": (sm["scale"]["median"], sm["shift_y"]["median"]),
            "ferplus median": (fe["scale"]["median"], fe["shift_y"]["median"]),
            "default CropPolicy": (faces.CropPolicy().scale, faces.CropPolicy().shift_y),
        }
        print("\ncandidate policy (scale, shift_y): share of crops that contain it / mean share of "
              "its area inside")
        report["candidates"] = {}
        for label, (S, sy) in candidates.items():
            cells = {}
            for name, rows in rows_by.items():
                inside = [inside_share(r, S, sy) for r in rows]
                cells[name] = (float(np.mean([v >= 0.999 for v in inside])), float(np.mean(inside)))
            report["candidates"][label] = {"scale": S, "shift_y": sy, **cells}
            print(f"  {label:<20} ({S:.3f}, {sy:+.3f})  " + "  ".join(
                f"{n}: {a:5.1%} / {b:5.1%}" for n, (a, b) in cells.items()))
    print(json.dumps(report))


def inside_share(r: dict, S: float, sy: float) -> float:
    """Fraction of the policy square's area that lies inside the dataset crop (box-side units)."""
    half, crop_half = S / 2, r["scale"] / 2
    ox = max(0.0, min(half, crop_half + r["shift_x"]) - max(-half, -crop_half + r["shift_x"]))
    top, bottom = max(sy - half, r["shift_y"] - crop_half), min(sy + half, r["shift_y"] + crop_half)
    oy = max(0.0, bottom - top)
    return ox * oy / (S * S)


if __name__ == "__main__":
    main()
