"""Augmentation throughput: clips/s of `make_clip` (and dataset items/s) on one core.

The training loop needs >= 3,000 clips/s of 5x64x64 on one core (see utjima/data/augment.py).
Warm up, time `--reps` runs of `--n` clips each, keep the best run (the machine is shared),
print a table and one JSON object as the last line.

    .venv/bin/python benchmarks/bench_augment.py
"""

from __future__ import annotations

import argparse
import json
import os
import time

import cv2
import numpy as np

from utjima.data.augment import make_clip

# (name, source image shape, output channels): the grey sources are FER+ (48x48) and
# SMILEsmileD (64x64); RGB 64x64 is GENKI-like crops and our recorded clips.
CASES = [
    ("fer48_grey->1ch", (48, 48), 1),
    ("fer48_grey->3ch", (48, 48), 3),
    ("smile64_grey->3ch", (64, 64), 3),
    ("rgb64->3ch", (64, 64, 3), 3),
    ("rgb64->1ch", (64, 64, 3), 1),
]


def bench(shape: tuple[int, ...], channels: int, n: int, reps: int, n_frames: int, size: int,
          strength: float) -> float:
    img = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(200):  # warm-up: noise bank, cv2 code paths
        make_clip(img, n_frames, size, channels, rng, strength)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            make_clip(img, n_frames, size, channels, rng, strength)
        best = min(best, time.perf_counter() - t0)
    return n / best


def bench_dataset(channels: int, n: int, reps: int, n_frames: int, size: int,
                  strength: float) -> float | None:
    """Items/s of FaceClipDataset.__getitem__ on FER+-like grey 48x48 stills (None without
    torch)."""
    try:
        import torch

        from utjima.data.faceset import FaceSet, no_emotion
        from utjima.data.torchdata import FaceClipDataset
    except ImportError:
        return None
    torch.set_num_threads(1)
    m = 4096
    images = np.random.default_rng(1).integers(0, 256, (m, 48, 48), dtype=np.uint8)
    fs = FaceSet("bench", images, np.ones(m), *no_emotion(m), [str(i) for i in range(m)])
    ds = FaceClipDataset(fs, n_frames=n_frames, size=size, channels=channels, strength=strength)
    for i in range(200):
        ds[i]
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for i in range(n):
            ds[i % m]
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="clips per timed run")
    p.add_argument("--reps", type=int, default=5, help="timed runs per case (best is kept)")
    p.add_argument("--n-frames", type=int, default=5)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--strength", type=float, default=1.0)
    a = p.parse_args()
    cv2.setNumThreads(1)  # one core, as in a DataLoader worker

    rows = {}
    print(f"{'case':20s} {'clips/s':>9s} {'us/clip':>8s}   ({a.n_frames}x{a.size}x{a.size}, "
          f"strength {a.strength})")
    for name, shape, ch in CASES:
        rate = bench(shape, ch, a.n, a.reps, a.n_frames, a.size, a.strength)
        rows[name] = round(rate)
        print(f"{name:20s} {rate:9.0f} {1e6 / rate:8.1f}")
    items = {}
    for ch in (1, 3):
        rate = bench_dataset(ch, a.n, a.reps, a.n_frames, a.size, a.strength)
        if rate is not None:
            items[f"fer48_grey->{ch}ch"] = round(rate)
            print(f"{f'dataset fer48->{ch}ch':20s} {rate:9.0f} {1e6 / rate:8.1f}   "
                  "(FaceClipDataset item)")
    target = 3000
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"target {target} clips/s on one core; load average {load1} on {os.cpu_count()} cpus")
    print(json.dumps({"bench": "augment", "n_frames": a.n_frames, "size": a.size,
                      "strength": a.strength,
                      "clips_per_s": rows, "dataset_items_per_s": items,
                      "target_clips_per_s": target,
                      "min_clips_per_s": min(rows.values()),
                      "meets_target": min(rows.values()) >= target,
                      "load_average": load1, "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
