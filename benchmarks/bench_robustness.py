"""Faces found and smiles judged on webcam-like video: clean, dark, small, dark+small,
blur+JPEG, tilt and noise, through the product's streaming path (`SmileModel.stream()`).

Every clip is rendered from a test face (`harness/scenes.py`): the crop, tinted to skin, sits
as a person (hair, neck, shoulders) in a procedural room, drifting and swaying, and a camera
adds its faults. The same faces and rooms go through every camera, so the variants are
paired. Test data only, never GENKI-4K: SMILEsmileD's test split, FER+ Test and, when the CK+
adapter is installed, CK+'s held-out subjects (`ckplus:test`; each sequence is played
neutral -> apex, the apex held).

Per camera: **face found** = share of frames whose reported box is on the true face (its
centre within a quarter of the face crop's side of the crop's centre, its side 0.3-1.5 times
the crop's: dataset crops hold a face 0.5-1.0 times their side), acquisition included (each
clip starts with a fresh stream); **smile
accuracy** = share of clips whose median smile_prob over the frames after the window has
filled (JUDGE_FROM_MS) is on the right side of model.json's threshold (a clip with no face
there counts as wrong); its paired difference to clean; **false laughs** = share of visible
non-smiling clips where the judge (model.json's rules) calls a laugh anywhere in the clip,
**missed** = share of visible smiling clips where it calls none. 95 % intervals: bootstrap
over clips (1,000 resamples). Targets apply to clips where a person can still see the face
(`harness.scenes.Clip.visibility`: face >= 32 px, its features >= 3 levels of the camera's
8 bits and >= 3x the noise at the scale of a feature); "tiny" and "very dark" are beyond that
line on purpose and are reported, not held to the targets.

    .venv/bin/python -m benchmarks.bench_robustness                 # ~11 min on one core
    .venv/bin/python -m benchmarks.bench_robustness --model runs/x/export --n 60
    .venv/bin/python -m benchmarks.bench_robustness --cameras clean dark+small --frames 45

Prints a table; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib

import numpy as np

from harness import scenes
from utjima.data import SPECS, load
from utjima.data.faceset import FaceSet

FPS = 30
ON_FACE_CENTRE = 0.25  # a box counts as the face when its centre is this close (in crop sides)
ON_FACE_SIDE = (0.3, 1.5)  # ... and its side is in this range (in crop sides)
JUDGE_FROM_MS = 400.0  # the 5-frame / 100 ms window holds only this clip's frames from here
APEX_HOLD_MS = 700.0  # a recorded sequence's last (apex) frame is held this long
TARGET_FOUND = 0.97  # faces found in every variant where a person can still see the face
TARGET_ACC_DROP = 0.02  # smile accuracy within 2 points of clean
BOOT = 1000


def default_data() -> list[str]:
    specs = ["smilesmiled:test", "ferplus:test"]
    if "ckplus" in SPECS:  # the held-out subjects, once the CK+ adapter is installed
        specs.append("ckplus:test")
    return specs


def samples(spec: str, n: int, seed: int) -> list[dict]:
    """Test faces of one source: {"id", "faces": [crop, ...], "smile"}. Stills: n, half
    smiling, half not (seeded); sequences (a ClipSet): every clip with a clip label."""
    if spec.split(":")[0] == "genki4k":  # GENKI-4K stays out of everything that guides work
        raise SystemExit(f"{spec}: GENKI-4K is kept for the final evaluation only; "
                         "pick smilesmiled:test, ferplus:test or ckplus:test")
    ds = load(spec)
    rng = np.random.default_rng(seed)
    out = []
    if isinstance(ds, FaceSet):
        for label in (1, 0):
            idx = np.flatnonzero(ds.smile == label)
            for i in sorted(rng.choice(idx, min(n // 2, len(idx)), replace=False)):
                out.append({"id": f"{spec}/{ds.ids[i]}", "faces": [np.asarray(ds.images[i])],
                            "smile": label})
        return out
    for clip in ds.clips:
        if clip.clip_smile >= 0:
            out.append({"id": f"{spec}/{clip.id}", "faces": list(clip.frames),
                        "smile": int(clip.clip_smile)})
    return out


def on_face(box, truth) -> bool:
    """Is a reported box (x1, y1, x2, y2) on the face whose crop square is `truth`?"""
    side = truth[2] - truth[0]
    dx = (box[0] + box[2] - truth[0] - truth[2]) / 2
    dy = (box[1] + box[3] - truth[1] - truth[3]) / 2
    s = max(box[2] - box[0], box[3] - box[1])
    return (max(abs(dx), abs(dy)) <= ON_FACE_CENTRE * side
            and ON_FACE_SIDE[0] * side <= s <= ON_FACE_SIDE[1] * side)


def run_clip(model, sample: dict, camera: scenes.Camera, seed: int, min_frames: int,
             judge_cfg) -> dict:
    """One clip through a fresh stream: per-frame found flags, the smile decision, the judge's
    laughs over the whole clip (acquisition included), timings."""
    from utjima.judge import segments

    faces = sample["faces"]
    clip = scenes.Clip(faces if len(faces) > 1 else faces[0], camera, seed=seed)
    seq_ms = (len(faces) - 1) * 1000 / FPS
    n = max(min_frames, len(faces) + round(APEX_HOLD_MS * FPS / 1000))
    judge_from = seq_ms + JUDGE_FROM_MS
    stream = model.stream()
    found, probs, ms, samples = [], [], [], []
    for i in range(n):
        rgb, truth = clip.frame(i, FPS)
        t_ms = i * 1000 / FPS
        t0 = time.perf_counter()
        r = stream.process(t_ms, rgb)
        ms.append((time.perf_counter() - t0) * 1e3)
        # found: the face's box; in an empty room, any box (a false face)
        ok = bool(r["face"]) and (truth is None or on_face(r["box"], truth))
        found.append(ok)
        samples.append((t_ms, r["smile_prob"] if ok else None, ok))
        if ok and t_ms >= judge_from:
            probs.append(r["smile_prob"])
    decided = bool(probs)
    smiling = decided and float(np.median(probs)) >= model.contract.smile_threshold
    laughed = bool(segments(samples, judge_cfg))
    return {"found": found, "correct": decided and smiling == bool(sample["smile"]),
            "decided": decided, "smile": bool(sample["smile"]), "laughed": laughed, "ms": ms,
            **clip.visibility(FPS)}


def boot_ci(values: np.ndarray, rng: np.random.Generator, stat=np.mean) -> list[float]:
    """95 % bootstrap interval of stat over the first axis (clips)."""
    if len(values) == 0:
        return [float("nan")] * 2
    idx = rng.integers(0, len(values), (BOOT, len(values)))
    dist = np.array([stat(values[i]) for i in idx])
    return [float(np.percentile(dist, 2.5)), float(np.percentile(dist, 97.5))]


def summarise(rows: list[dict], clean: list[dict] | None, rng, person: bool = True) -> dict:
    """Figures of one camera over its visible clips (all clips for the out-of-sight ones);
    in an empty room, the share of frames with a (false) face."""
    if not person:
        false = np.array([np.mean(r["found"]) for r in rows])
        return {"clips": len(rows), "false_face": float(false.mean()),
                "false_face_ci": boot_ci(false, rng),
                "ms_p50": float(np.median(np.concatenate([r["ms"] for r in rows])))}
    vis = np.array([r["visible"] for r in rows])
    keep = vis if vis.any() else np.ones(len(rows), bool)
    found = np.array([np.mean(r["found"]) for r in rows])[keep]
    correct = np.array([r["correct"] for r in rows], float)[keep]
    out = {"clips": int(len(rows)), "visible": int(vis.sum()),
           "found": float(found.mean()), "found_ci": boot_ci(found, rng),
           "acc": float(correct.mean()), "acc_ci": boot_ci(correct, rng),
           "undecided": int(sum(not r["decided"] for r, k in zip(rows, keep, strict=True) if k)),
           "ms_p50": float(np.median(np.concatenate([r["ms"] for r in rows]))),
           "side_px_median": float(np.median([r["side_px"] for r in rows])),
           "mean_luma_median": float(np.median([r["mean_luma"] for r in rows]))}
    # the game's view: a laugh called on a straight face, none on a smiling one
    kept = [r for r, k in zip(rows, keep, strict=True) if k]
    for key, want in (("false_laugh", False), ("missed_laugh", True)):
        hit = np.array([r["laughed"] != want for r in kept if r["smile"] == want], float)
        out[key] = float(hit.mean()) if len(hit) else float("nan")
        out[key + "_n"] = int(len(hit))
    if clean is not None:  # paired with clean on the same faces and rooms
        base = np.array([r["correct"] for r in clean], float)[keep]
        diff = correct - base
        out["acc_delta"] = float(diff.mean())
        out["acc_delta_ci"] = boot_ci(diff, rng)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    ap.add_argument("--data", action="append", default=None,
                    help=f"test data spec, repeatable (default: {', '.join(default_data())})")
    ap.add_argument("--n", type=int, default=100,
                    help="stills per source, half smiling (default 100)")
    ap.add_argument("--frames", type=int, default=30, help="frames per still's clip (default 30)")
    ap.add_argument("--cameras", nargs="+", default=list(scenes.CAMERAS),
                    help=f"variants (default: all of {', '.join(scenes.CAMERAS)})")
    ap.add_argument("--int8", action="store_true", help="the int8 encoder the browser loads")
    ap.add_argument("--seed", type=int, default=0, help="faces, rooms and motion (default 0)")
    args = ap.parse_args(argv)
    unknown = [c for c in args.cameras if c not in scenes.CAMERAS]
    if unknown:
        ap.error(f"unknown cameras {unknown}; valid: {', '.join(scenes.CAMERAS)}")
    if args.n < 2 or args.frames < 2:
        ap.error("--n and --frames must be >= 2")
    if "clean" not in args.cameras:
        args.cameras.insert(0, "clean")  # the paired baseline

    from utjima.runtime import SmileModel

    model = SmileModel(args.model, threads=1, int8=args.int8)
    judge_cfg = model.contract.judge_config()
    specs = args.data or default_data()
    pool = [s for spec in specs for s in samples(spec, args.n, args.seed)]
    print(f"{len(pool)} test faces from {', '.join(specs)}; {args.frames} frames at {FPS} fps "
          f"per still; model {model.contract.dir}", file=sys.stderr)
    rows: dict[str, list[dict]] = {}
    for name in args.cameras:
        t0 = time.time()
        # one seed per face, the same in every camera: the same room, place and motion
        rows[name] = [run_clip(model, s, scenes.CAMERAS[name],
                               zlib.crc32(f"{args.seed}:{s['id']}".encode()), args.frames,
                               judge_cfg)
                      for s in pool]
        print(f"  {name}: {time.time() - t0:.0f} s", file=sys.stderr)
    rng = np.random.default_rng(args.seed)
    res = {name: summarise(r, None if name == "clean" else rows["clean"], rng,
                           scenes.CAMERAS[name].person)
           for name, r in rows.items()}

    pct = lambda v: f"{100 * v:5.1f}"  # noqa: E731
    ci = lambda c: f"[{100 * c[0]:.1f}, {100 * c[1]:.1f}]"  # noqa: E731
    print(f"\n{'camera':11} {'what':31} {'visible':>9} {'face px':>7} "
          f"{'face found % [95% CI]':>23} "
          f"{'smile acc % [95% CI]':>22} {'vs clean, points':>22} {'ms':>5} "
          f"{'false laughs':>12} {'missed':>7}")
    for name, r in res.items():
        cam = scenes.CAMERAS[name]
        if not cam.person:
            continue
        delta = (f"{100 * r['acc_delta']:+5.1f} {ci(r['acc_delta_ci']):>15}"
                 if "acc_delta" in r else f"{'-':>22}")
        print(f"{name:11} {cam.note:31} {r['visible']:4d}/{r['clips']:<4d} "
              f"{r['side_px_median']:7.0f} {pct(r['found'])} {ci(r['found_ci']):>16} "
              f"{pct(r['acc'])} {ci(r['acc_ci']):>15} {delta:>22} {r['ms_p50']:5.1f} "
              f"{pct(r['false_laugh']):>10} % {pct(r['missed_laugh'])} %")
    for name, r in res.items():
        if "false_face" in r:
            print(f"{name:11} {scenes.CAMERAS[name].note:31} {r['clips']:4d} clips: a (false) "
                  f"face in {pct(r['false_face'])} % of frames {ci(r['false_face_ci'])}, "
                  f"{r['ms_p50']:.1f} ms")
    targets = [n for n in res if n in scenes.TARGET_CAMERAS]
    found_ok = all(res[n]["found"] >= TARGET_FOUND for n in targets)
    acc_ok = all(res[n].get("acc_delta", 0.0) >= -TARGET_ACC_DROP for n in targets)
    print(f"\ntargets on visible clips of {', '.join(targets)}: faces found >= "
          f"{100 * TARGET_FOUND:.0f} %: {'met' if found_ok else 'NOT met'}; smile accuracy "
          f"within {100 * TARGET_ACC_DROP:.0f} points of clean: {'met' if acc_ok else 'NOT met'}")
    out = {"model": str(model.contract.dir), "model_name": model.contract.data.get("name"),
           "data": specs, "n_clips": len(pool), "frames": args.frames, "fps": FPS,
           "encoder": "encoder_int8" if args.int8 else "encoder",
           "threshold": model.contract.smile_threshold, "cameras": res,
           "found_target_met": found_ok, "acc_target_met": acc_ok}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
