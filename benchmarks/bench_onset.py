"""How fast a smile becomes a laugh: the streaming window's span against CK+ onsets.

The model reads "the last `n_frames` frames sampled every `frame_interval_ms`" (model.json
`streaming`). The wider that window, the smoother the score and the later a quick smile
crosses the threshold: an 11-frame CK+ smile (neutral to apex in 333 ms) must cross it before
its apex shows. This script measures that trade on data we may choose on:

- CK+ **training** subjects only (`ckplus:train`; the held-out subjects are never read here
  unless `--split test` asks for the final report), each sequence rendered as a webcam clip
  (`ckplus.webcam_video`: 1 s neutral, the sequence at 30 fps, 1 s apex) and also played 2x
  and 3x faster (every 2nd / 3rd frame, the apex kept): fast smiles like the shortest
  held-out ones, made from training subjects;
- for each candidate interval: happy sequences with a laugh starting before the apex (and
  the lead), non-happy sequences with any laugh (false laughs), through the live path
  (FaceTracker, crop, encoder once per frame; the window and step per interval) and the
  judge (`judge.segments`, model.json's judge with the model's threshold).

Interval 0 fills every slot with the latest frame, the way a still is scored: the per-frame
evidence without the LSTM's memory, so its lead over the shipped interval is the lag the
temporal model adds, which no window span removes.

Prints a table, then one JSON line.
    python -m benchmarks.bench_onset [--intervals 100,67,33,0] [--speeds 1,2,3] [--int8]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def played_faster(raw: np.ndarray, speed: int) -> np.ndarray:
    """Every `speed`-th frame of a neutral -> apex sequence, the apex kept as the last."""
    idx = list(range(0, len(raw), speed))
    if idx[-1] != len(raw) - 1:
        idx.append(len(raw) - 1)
    return raw[idx]


def features(model, video: np.ndarray, fps: float) -> tuple[list[float], list]:
    """Per frame: (t_ms, feature or None when no face), by the live path (Stream.feature)."""
    stream = model.stream("short")
    times = [i * 1000.0 / fps for i in range(len(video))]
    return times, [stream.feature(t, rgb)[1] for t, rgb in zip(times, video, strict=True)]


def laughs(model, times, feats, interval: float, judge_cfg) -> list[dict]:
    """The judge's laughs when the window samples every `interval` ms (FeatureWindow rule)."""
    from utjima.judge import segments
    from utjima.streaming import FeatureWindow

    win = FeatureWindow(model.n_frames, interval)
    samples = []
    for t, f in zip(times, feats, strict=True):
        if f is None:
            win.reset()
            samples.append((t, None, False))
            continue
        p = float(model.step(win.push(t, f)[None])[0][0])
        samples.append((t, p, True))
    return segments(samples, judge_cfg)


def main(argv=None) -> dict:
    from utjima.data import cache, ckplus
    from utjima.runtime import SmileModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    ap.add_argument("--int8", action="store_true", help="the int8 encoder the browser runs")
    ap.add_argument("--intervals", default="100,67,33,0",
                    help="frame_interval_ms candidates (0: every slot the latest frame, a still)")
    ap.add_argument("--speeds", default="1,2,3", help="play each sequence this many times faster")
    ap.add_argument("--split", default="train", choices=["train", "test"],
                    help="train: the choice; test: the held-out report, after choosing")
    args = ap.parse_args(argv)
    intervals = [float(x) for x in args.intervals.split(",")]
    speeds = [int(x) for x in args.speeds.split(",")]

    model = SmileModel(args.model, int8=args.int8)
    thr = model.contract.smile_threshold
    judge_cfg = model.contract.judge_config()
    root = cache.prepare("ckplus")
    rows = ckplus.read_labels(root)
    subjects = ckplus.split_subjects(rows, args.split)
    t0 = time.perf_counter()
    results = []  # one per (sequence, speed, interval)
    for r in rows:
        if r["subject_id"] not in subjects:
            continue
        raw = ckplus.raw_frames(root, r["sequence_id"])
        for speed in speeds:
            seq = played_faster(raw, speed)
            video, apex_ms = ckplus.webcam_video(seq)
            times, feats = features(model, video, ckplus.FPS)
            for iv in intervals:
                got = laughs(model, times, feats, iv, judge_cfg)
                first = min((s["start_ms"] for s in got), default=None)
                results.append({"sequence": r["sequence_id"], "emotion": r["emotion"],
                                "speed": speed, "frames": len(seq), "interval_ms": iv,
                                "laughs": len(got), "apex_ms": round(apex_ms, 1),
                                "lead_ms": None if first is None else round(apex_ms - first, 1)})
    summary = []
    for iv in intervals:
        for speed in speeds:
            rs = [x for x in results if x["interval_ms"] == iv and x["speed"] == speed]
            happy = [x for x in rs if x["emotion"] == "happy"]
            other = [x for x in rs if x["emotion"] != "happy"]
            leads = [x["lead_ms"] for x in happy if x["lead_ms"] is not None]
            summary.append({
                "interval_ms": iv, "speed": speed, "happy": len(happy),
                "happy_before_apex": sum(x["lead_ms"] is not None and x["lead_ms"] > 0
                                         for x in happy),
                "lead_ms_min": min(leads) if leads else None,
                "lead_ms_median": float(np.median(leads)) if leads else None,
                "non_happy": len(other),
                "non_happy_with_laugh": sum(x["laughs"] > 0 for x in other),
            })
    print(f"CK+ {args.split} subjects {', '.join(subjects)}; threshold {thr:.4f}; "
          f"{time.perf_counter() - t0:.0f} s")
    print(f"{'interval ms':>11} {'speed':>5} {'happy before apex':>18} {'lead min':>9} "
          f"{'lead med':>9} {'non-happy laughs':>17}")
    for s in summary:
        lm = "-" if s["lead_ms_min"] is None else f"{s['lead_ms_min']:.0f}"
        md = "-" if s["lead_ms_median"] is None else f"{s['lead_ms_median']:.0f}"
        iv = f"{s['interval_ms']:.0f}" if s["interval_ms"] else "0 (still)"
        print(f"{iv:>11} {s['speed']:>4}x {s['happy_before_apex']:>10} of "
              f"{s['happy']:<5} {lm:>9} {md:>9} {s['non_happy_with_laugh']:>9} of {s['non_happy']}")
    out = {"split": f"ckplus:{args.split}", "subjects": list(subjects), "threshold": thr,
           "int8_encoder": args.int8, "summary": summary,
           # the happy sequences and any false laugh; the rest had none
           "sequences": [x for x in results if x["emotion"] == "happy" or x["laughs"]]}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
