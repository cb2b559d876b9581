"""How often `utjima predict` finds the face in a tight face crop, and what the retry costs.

A photo goes through BlazeFace short range merged with full range + tiles; when both find
nothing, the short-range model runs again on the picture centred in a grey canvas
(`faces.detect_in_context`), because BlazeFace misses faces that fill the whole picture.
Measured on validation crops (dataset images are tight crops: the hard case), per source:
faces found by the first pass, by the retry, still missing, and milliseconds per image.

    .venv/bin/python benchmarks/bench_photo_faces.py [--data SPEC ...] [--limit N]
                     (default: --data smilesmiled:val --data ferplus:valid)

Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from utjima.data import load
from utjima.faces import detect_in_context
from utjima.runtime import SmileModel


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", action="append", default=None,
                    help="data spec (default: smilesmiled:val, ferplus:valid)")
    ap.add_argument("--limit", type=int, default=None, help="at most this many images per source")
    args = ap.parse_args(argv)
    model = SmileModel()
    rows = {}
    for spec in args.data or ["smilesmiled:val", "ferplus:valid"]:
        fs = load(spec, limit=args.limit)
        first = retry = 0
        t_first, t_retry = [], []
        for img in fs.images:
            rgb = np.repeat(img[:, :, None], 3, 2) if img.ndim == 2 else img
            t = time.perf_counter()
            found = model.photo_faces(rgb, context=False)
            t_first.append(time.perf_counter() - t)
            if found:
                first += 1
                continue
            t = time.perf_counter()  # the retry photo_faces makes when the first pass is empty
            if detect_in_context(model.detector("short"), rgb):
                retry += 1
            t_retry.append(time.perf_counter() - t)
        n = len(fs.images)
        rows[spec] = {"n": n, "size": list(fs.images.shape[1:3]), "found_first_pass": first / n,
                      "found_with_retry": (first + retry) / n, "missing": (n - first - retry) / n,
                      "first_pass_ms": float(np.mean(t_first) * 1e3),
                      "retry_ms": float(np.mean(t_retry) * 1e3) if t_retry else None}
    print(f"{'source':18} {'n':>6} {'size':>8} {'found (1st pass)':>17} {'found (+retry)':>15} "
          f"{'missing':>8} {'1st ms':>7} {'retry ms':>9}")
    for spec, r in rows.items():
        retry_ms = f"{r['retry_ms']:9.2f}" if r["retry_ms"] is not None else f"{'-':>9}"
        print(f"{spec:18} {r['n']:6d} {'x'.join(map(str, r['size'])):>8} "
              f"{r['found_first_pass'] * 100:16.1f}% "
              f"{r['found_with_retry'] * 100:14.1f}% {r['missing'] * 100:7.1f}% "
              f"{r['first_pass_ms']:7.2f} {retry_ms}")
    print(json.dumps(rows))
    return rows


if __name__ == "__main__":
    main()
