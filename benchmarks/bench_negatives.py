"""Laugh-like negatives: does the judge call a laugh on a face that is not laughing?

Two measurements, both at the model's own threshold (model.json, chosen on validation data):
1. FER+ Test (twins removed), faces whose majority vote is sadness, fear, surprise, disgust or
   anger, through the product's photo path (BlazeFace + crop policy + ONNX encoder and step;
   the faces BlazeFace misses keep the whole-crop fallback, as in bench_accuracy.py): the share
   scored as smiling (false-positive rate), per class and pooled, with Wilson 95 % intervals.
   Neutral and happy faces are listed for scale. The open-mouth subset: the laugh-like faces
   found by BlazeFace whose inner lips are at least `mouth.OPEN_GAP` of the face height apart
   by MediaPipe's face mesh (benchmarks/mouth.py: cut-off chosen on CK+ training subjects,
   checked by eye on FER+ Valid), pooled and per class.
2. CK+ sequences of the held-out subjects (`ckplus:test`, never trained on), each rendered as
   a webcam-like video (utjima.data.ckplus.webcam_video: 1 s neutral, the sequence at 30 fps,
   1 s holding the apex, the face on a 640x480 canvas, written as MP4) and run through
   `utjima predict`'s video path (BlazeFace every 100 ms, streaming window, the judge):
   laughs reported on every non-happy sequence (want none), and on every happy one whether a
   laugh starts before the apex frame shows (want all) and by how much.

    .venv/bin/python benchmarks/bench_negatives.py [--model DIR] [--int8]
        [--ckplus test|all|...] [--fer test|valid]

A human table, then one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import numpy as np

from utjima import EMOTIONS

LAUGH_LIKE = ("sad", "fear", "surprise", "disgust", "angry")
MIN_N = 20  # a class's open-mouth row is printed from this many faces (all are in the JSON)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95 % interval of a proportion k/n (sensible at k = 0, unlike k/n +- ...)."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def rate(hit: np.ndarray) -> dict:
    k, n = int(hit.sum()), int(hit.size)
    return {"n": n, "k": k, "rate": k / n if n else math.nan, "ci95": list(wilson(k, n))}


def fer_negatives(model, split: str = "test") -> dict:
    """Smile decisions at the model's threshold per FER+ majority class (product photo path)."""
    from utjima.data import load
    from utjima.data.cache import cache_dir
    from utjima.data.framing import canonical_set

    fs = load(f"ferplus:{split}")
    fs = canonical_set(
        fs,
        model.policy,
        model.contract.channels,
        drop_missing=False,
        cache=cache_dir() / "framing",
        progress=False,
    )
    found = fs.info["framing"]["found_mask"]
    x = fs.images.astype(np.float32)[:, None] / 255  # (N, S, S) -> (N, 1, S, S)
    smile = np.concatenate([model.score_crops(x[i : i + 256])[0] for i in range(0, len(x), 256)])
    yes = smile >= model.contract.smile_threshold
    out: dict = {"split": f"ferplus:{split}", "classes": {}}
    for name in (*LAUGH_LIKE, "neutral", "happy"):
        m = fs.emotion_label == EMOTIONS.index(name)
        out["classes"][name] = rate(yes[m])
    neg = np.isin(fs.emotion_label, [EMOTIONS.index(c) for c in LAUGH_LIKE])
    out["pooled"] = rate(yes[neg])
    out["pooled_face_found"] = rate(yes[neg & found])
    out["open_mouth"] = open_mouth(fs.images, fs.emotion_label, neg & found, yes)
    return out


def open_mouth(
    crops: np.ndarray, labels: np.ndarray, measured: np.ndarray, yes: np.ndarray
) -> dict:
    """Smile decisions on the faces of `measured` whose mouth is open (benchmarks/mouth.py)."""
    try:
        import mouth
    except ModuleNotFoundError:  # imported as benchmarks.bench_negatives
        from benchmarks import mouth

    idx = np.flatnonzero(measured)
    gap, presence = mouth.MouthGauge().gap(crops[idx])
    is_open = np.zeros(len(crops), bool)
    is_open[idx] = (presence >= mouth.MIN_PRESENCE) & (gap >= mouth.OPEN_GAP)
    return {
        "open_gap": mouth.OPEN_GAP,
        "pad": mouth.PAD,
        "measured": int(idx.size),
        "mesh_no_face": int((presence < mouth.MIN_PRESENCE).sum()),
        "classes": {c: rate(yes[is_open & (labels == EMOTIONS.index(c))]) for c in LAUGH_LIKE},
        "pooled": rate(yes[is_open]),
    }


def ckplus_laughs(model, judge_cfg, split: str = "test") -> dict:
    """Render each sequence of `split` as a video and run `utjima predict`'s video path on it."""
    import cv2

    from utjima.data import cache, ckplus
    from utjima.predict import predict_video

    root = cache.prepare("ckplus")
    rows = ckplus.read_labels(root)
    subjects = ckplus.split_subjects(rows, *ckplus.parse_split(split))
    seqs = []
    with tempfile.TemporaryDirectory(prefix="utjima-ckplus-") as tmp:
        for r in rows:
            if r["subject_id"] not in subjects:
                continue
            video, apex_ms = ckplus.webcam_video(ckplus.raw_frames(root, r["sequence_id"]))
            path = Path(tmp) / f"{r['sequence_id']}.mp4"
            h, w = video.shape[1:3]
            vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), ckplus.FPS, (w, h))
            for f in video:
                vw.write(np.ascontiguousarray(f[:, :, ::-1]))
            vw.release()
            res = predict_video(model, path, judge_cfg, "auto")
            probs = [f["smile_prob"] for f in res["frames"] if f["smile_prob"] is not None]
            first = min((s["start_ms"] for s in res["laughs"]), default=None)
            seqs.append(
                {
                    "sequence": r["sequence_id"],
                    "subject": r["subject_id"],
                    "emotion": r["emotion"],
                    "frames": len(res["frames"]),
                    "face_frames": len(probs),
                    "laughs": len(res["laughs"]),
                    "first_laugh_ms": first,
                    "apex_ms": round(apex_ms, 1),
                    "lead_ms": None if first is None else round(apex_ms - first, 1),
                    "max_prob": round(max(probs), 4) if probs else None,
                }
            )
    happy = [s for s in seqs if s["emotion"] == "happy"]
    other = [s for s in seqs if s["emotion"] != "happy"]
    before = [s for s in happy if s["lead_ms"] is not None and s["lead_ms"] > 0]
    leads = [s["lead_ms"] for s in happy if s["lead_ms"] is not None]
    return {
        "split": f"ckplus:{split}",
        "subjects": list(subjects),
        "sequences": seqs,
        "non_happy": len(other),
        "non_happy_with_laugh": sum(s["laughs"] > 0 for s in other),
        "happy": len(happy),
        "happy_laugh_before_apex": len(before),
        "happy_with_laugh": sum(s["laughs"] > 0 for s in happy),
        "lead_ms_median": float(np.median(leads)) if leads else None,
    }


def pct(r: dict) -> str:
    return f"{r['rate'] * 100:.1f} [{r['ci95'][0] * 100:.1f}, {r['ci95'][1] * 100:.1f}]"


def main(argv=None) -> dict:
    from utjima.runtime import SmileModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    ap.add_argument(
        "--int8", action="store_true", help="score with the int8 encoder the browser runs"
    )
    ap.add_argument(
        "--fer", default="test", choices=["test", "valid"], help="FER+ split (valid: for selection)"
    )
    ap.add_argument(
        "--ckplus",
        default="test",
        help="CK+ split: test (held-out subjects), train, all, test=K/N ...",
    )
    args = ap.parse_args(argv)
    model = SmileModel(args.model, int8=args.int8)
    thr = model.contract.smile_threshold
    judge_cfg = model.contract.judge_config()
    fer = fer_negatives(model, args.fer)
    ck = ckplus_laughs(model, judge_cfg, args.ckplus)

    print(
        f"model: {model.contract.dir}{' (int8 encoder)' if args.int8 else ''}   threshold {thr:.4f}"
    )
    print(f"\n{fer['split']}: faces scored as smiling, by majority class (% [Wilson 95 % CI])")
    print("| class | n | smiling | rate % |\n|---|---|---|---|")
    for name, r in fer["classes"].items():
        print(
            f"| {name}{'' if name in LAUGH_LIKE else ' (for scale)'} | {r['n']} | {r['k']} "
            f"| {pct(r)} |"
        )
    p, pf = fer["pooled"], fer["pooled_face_found"]
    print(f"| **laugh-like pooled** | {p['n']} | {p['k']} | {pct(p)} |")
    print(f"| laugh-like, face found by BlazeFace | {pf['n']} | {pf['k']} | {pct(pf)} |")
    om = fer["open_mouth"]
    print(
        f"\nopen mouth (face mesh inner-lip gap >= {om['open_gap']} of the face height) among "
        f"the {om['measured']} laugh-like faces BlazeFace found ({om['mesh_no_face']} left out: "
        f"no face for the mesh); classes with n < {MIN_N} only in the JSON"
    )
    print("| class | n | smiling | rate % |\n|---|---|---|---|")
    for name, r in om["classes"].items():
        if r["n"] >= MIN_N:
            print(f"| {name}, open mouth | {r['n']} | {r['k']} | {pct(r)} |")
    po = om["pooled"]
    print(f"| **laugh-like, open mouth, pooled** | {po['n']} | {po['k']} | {pct(po)} |")
    print(
        f"\n{ck['split']} ({', '.join(ck['subjects'])}): rendered videos through `utjima predict`"
    )
    print(
        "| sequence | emotion | frames (face) | laughs | first laugh ms | apex ms | lead ms "
        "| max smile_prob |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for s in ck["sequences"]:
        print(
            f"| {s['sequence']} | {s['emotion']} | {s['frames']} ({s['face_frames']}) "
            f"| {s['laughs']} | "
            f"{s['first_laugh_ms'] if s['first_laugh_ms'] is not None else '-'} | {s['apex_ms']} | "
            f"{s['lead_ms'] if s['lead_ms'] is not None else '-'} | {s['max_prob']} |"
        )
    print(
        f"non-happy sequences with a laugh: {ck['non_happy_with_laugh']} of {ck['non_happy']} "
        f"(want 0); "
        f"happy sequences with a laugh starting before the apex: "
        f"{ck['happy_laugh_before_apex']} of "
        f"{ck['happy']} (want all); median lead {ck['lead_ms_median']} ms"
    )
    result = {
        "model": str(model.contract.dir),
        "int8_encoder": args.int8,
        "threshold": thr,
        "ferplus": fer,
        "ckplus": ck,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
