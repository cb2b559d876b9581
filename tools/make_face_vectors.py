"""Write tests/vectors/faces.json: utjima.faces on tiny inputs, for the JavaScript port.

tests/js/faces.test.mjs holds utjima/web/detector/faces.js to these numbers. Every case's
expectation comes from the Python implementation (the spec is faces.py's module doc):
- `warp`: the sampler on small synthetic images (box filter f = 1, 2, 3 with partial
  blocks, rotation, upscaling, black fill outside the source); JS runs them in order on one
  reused Sampler, so a scratch buffer sized by an earlier call is exercised too;
- `letterbox`: the map and the pixels for a few image shapes;
- `anchors`: the anchor layout of each detector role;
- `decode`: hand-made raw detector outputs (two overlapping clusters, one weak candidate,
  one with a negative size) -> faces after weighted NMS, box_scale and box_shift_y;
- `crop`: crop transforms and crops (grey and RGB, aligned and not) of known faces;
- `detect`: one real image (the astronaut fixture, small), its faces from the short
  BlazeFace ONNX, and the policy's crop of the best face (node runs the same ONNX file);
- `regions`, `exposure`, `crop_exposure`: the live path's search squares (around a followed
  face, the acquisition tiles), the detector input's exposure gain on small images and the
  crop's (`brighten_crop`);
- `live`: `FaceTracker` on a dim 320x240 camera whose face (the astronaut, 34 px) is too
  small for the whole-frame pass: found by the tile scan, followed around its box, carried
  between detections, held when it leaves, then gone, and found again; per frame what
  searched and the face (node runs the same tracker on the same ONNX file).
The crop policy and live config used are stored in the file, so the vectors do not change
with model.json.

    .venv/bin/python -m tools.make_face_vectors          # rewrite the file
    .venv/bin/python -m tools.make_face_vectors --check  # fail if it is out of date
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import math
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from harness import fakecam, scenes
from utjima import faces

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "vectors" / "faces.json"
ASTRONAUT = ROOT / "tests" / "fixtures" / "astronaut.jpg"
CHECK_ATOL = 1e-5  # --check tolerance (the detector runs on this machine's onnxruntime)


def b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()


def rounded(a, nd: int = 7) -> Any:
    return np.round(np.asarray(a, dtype=np.float64), nd).tolist()


def rotation(cx: float, cy: float, deg: float, scale: float = 1.0) -> np.ndarray:
    """(2, 3) output px -> source px: rotate by deg and scale by `scale` about (cx, cy)."""
    t = math.radians(deg)
    c, s = math.cos(t) * scale, math.sin(t) * scale
    return np.array([[c, -s, cx - c * cx + s * cy], [s, c, cy - s * cx - c * cy]])


IMAGES: dict[str, dict] = {}  # name -> {w, h, rgb}: each test image stored once in the file


def image(seed: int, w: int, h: int) -> tuple[str, np.ndarray]:
    """A smooth-plus-noise RGB uint8 test image (edges and gradients both matter), and its
    name in the file's "images"."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / max(w - 1, 1), yy * 255 / max(h - 1, 1),
                     (xx + yy) * 127 / max(w + h - 2, 1)], -1)
    img = np.clip(base + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
    name = f"noise{seed}_{w}x{h}"
    IMAGES[name] = {"w": w, "h": h, "rgb": b64(img)}
    return name, img


def warp_cases() -> list[dict]:
    a, b = image(1, 13, 9), image(2, 20, 17)  # (name, pixels)
    cases = [
        ("identity f=1", a, np.array([[1.0, 0, 0], [0, 1.0, 0]]), 13, 9, 1.0, None),
        ("shift and clamp", a, np.array([[1.0, 0, -2.3], [0, 1.0, 1.7]]), 11, 10, 1.0, None),
        ("downscale f=2, partial last block", a, np.array([[2.0, 0, 0], [0, 2.0, 0]]), 7,
         5, 2.0, None),
        ("downscale f=3 with black fill", b, np.array([[3.1, 0, -4.0], [0, 3.1, -2.0]]), 9,
         8, 3.1, 0.0),
        ("upscale x0.4", a, np.array([[0.4, 0, 1.0], [0, 0.4, 2.0]]), 12, 12, 0.4, None),
        ("rotate 20 deg, f=2", b, rotation(10, 8, 20, 2.2), 8, 8, 2.2, None),
        ("rotate -35 deg, fill", b, rotation(10, 8, -35, 1.3), 12, 11, 1.3, 0.0),
        ("wide region after a small one", b, np.array([[1.0, 0, -1.0], [0, 1.0, 6.0]]), 20,
         3, 1.0, None),
        ("step just under 2 counts as 2", b, np.array([[2.0, 0, 0], [0, 2.0, 0]]), 10, 8,
         1.9999999, None),
    ]
    out = []
    for name, (img_name, img), m, ow, oh, step, fill in cases:
        got = faces._warp(img, m, ow, oh, step, fill)  # (oh, ow, 3) 0..1
        out.append({"name": name, "image": img_name, "m": m.tolist(),
                    "out_w": ow, "out_h": oh, "step": step, "fill": fill,
                    "expect": rounded(got.reshape(-1))})
    return out


def letterbox_cases() -> list[dict]:
    out = []
    for w, h, n in ((20, 12, 8), (9, 15, 8), (33, 21, 16)):
        img_name, img = image(w * 100 + h, w, h)
        x, m = faces.letterbox(img, n)  # (3, n, n)
        out.append({"image": img_name, "n": n, "m": m.tolist(), "step": 1 / min(n / w, n / h),
                    "expect": rounded(x.transpose(1, 2, 0).reshape(-1))})  # (3, n, n) -> (n, n, 3)
    return out


def anchor_cases() -> list[dict]:
    out = []
    for role, spec in faces.DETECTORS.items():
        a = faces.anchors(spec)
        idx = [0, 1, 2, len(a) // 2, len(a) - 2, len(a) - 1]
        out.append({"role": role, "count": len(a), "sum": float(a.astype(np.float64).sum()),
                    "samples": {str(i): a[i].tolist() for i in idx}})
    return out


class _FakeSession:
    """Stands in for onnxruntime: returns fixed raw outputs."""

    def __init__(self, reg: np.ndarray, cls: np.ndarray):
        self.reg, self.cls = reg, cls

    def run(self, names, feeds):
        return [self.reg[None], self.cls[None, :, None]]


def decode_cases() -> list[dict]:
    out = []
    for role in ("short", "full"):
        spec = faces.DETECTORS[role]
        n, anc = spec.input_size, faces.anchors(spec)
        rng = np.random.default_rng(7)
        reg = np.zeros((len(anc), 16), np.float32)
        cls = np.full(len(anc), -10.0, np.float32)
        # two clusters of overlapping candidates around anchor centres, plus distractors
        k1, k2 = len(anc) // 3, 2 * len(anc) // 3
        picks = [k1, k1 + 1, k1 + 2, k2, k2 + 1, 5, 11]
        for j, k in enumerate(picks):
            reg[k, :2] = rng.normal(0, 1.5, 2)
            reg[k, 2:4] = 30 + rng.normal(0, 2, 2)
            reg[k, 4:] = rng.normal(0, 8, 12)
            cls[k] = [2.0, 1.2, 0.7, 3.0, 0.1, 0.05, 4.0][j]
        cls[5] = -0.5  # below min_score
        reg[11, 2] = -1.0  # negative width: never a candidate
        cls[picks[2]] = cls[picks[1]]  # a score tie: the lower anchor index goes first
        det = faces.FaceDetector.__new__(faces.FaceDetector)
        det.spec, det.kind, det.anchors = spec, role, anc
        det.session = _FakeSession(reg, cls)
        _, m = faces.letterbox(np.zeros((480, 640, 3), np.uint8), n)
        d, s = det._candidates(np.zeros((3, n, n), np.float32), m)
        found = [det._face(dd, ss) for dd, ss in faces.weighted_nms(d, s, spec.iou)]
        out.append({"role": role, "image_w": 640, "image_h": 480, "m": m.tolist(),
                    "raw": [{"k": int(k), "reg": reg[k].tolist(), "cls": float(cls[k])}
                            for k in picks],
                    "background_cls": -10.0,
                    "expect": [{"box": list(f.box), "score": f.score,
                                "keypoints": [list(p) for p in f.keypoints]}
                               for f in found]})
    return out


def crop_cases(policy: faces.CropPolicy) -> list[dict]:
    img_name, img = image(9, 40, 30)
    out = []
    small = dataclasses.replace(policy, size=6)
    for name, box, kps, align, channels in (
        ("upright, eyes level", (8.0, 5.0, 30.0, 27.0), ((14, 12), (24, 12)), "eyes", "gray"),
        ("tilted eyes, aligned", (10.5, 4.2, 28.7, 24.9), ((14.1, 13.0), (23.5, 9.4)),
         "eyes", "gray"),
        ("tilted eyes, not aligned", (10.5, 4.2, 28.7, 24.9), ((14.1, 13.0), (23.5, 9.4)),
         "none", "rgb"),
        ("past the edge, rgb", (-6.0, 18.0, 14.0, 40.0), ((0, 25), (8, 26)), "eyes", "rgb"),
    ):
        face = faces.Face(box=box, score=0.9, keypoints=tuple(kps) + ((0, 0),) * 4)
        p = dataclasses.replace(small, align=align)
        m = faces.crop_transform(face, p)
        crop = faces.crop_face(img, face, p, channels)  # (C, 6, 6)
        out.append({"name": name, "image": img_name, "box": list(box),
                    "keypoints": [list(k) for k in face.keypoints], "policy": dataclasses.asdict(p),
                    "channels": channels, "m": m.tolist(), "step": p.scale * face.side / p.size,
                    "expect": rounded(crop.reshape(-1))})
    return out


def detect_case(policy: faces.CropPolicy) -> dict:
    """The astronaut, small, on a grey 4:3 canvas: the real short detector and the crop."""
    photo = Image.open(ASTRONAUT).convert("RGB").resize((72, 72), Image.LANCZOS)
    canvas = np.full((72, 96, 3), 128, np.uint8)
    canvas[:, 12:84] = np.asarray(photo)
    det = faces.FaceDetector(kind=policy.detector)
    found = det.detect(canvas)
    if not found:
        raise RuntimeError("the short detector found no face in the small astronaut; "
                           "pick another size")
    crop = faces.crop_face(canvas, found[0], policy, "gray")  # (1, S, S)
    return {"w": 96, "h": 72, "rgb": b64(canvas), "detector_file": det.spec.file,
            "expect": [{"box": list(f.box), "score": f.score,
                        "keypoints": [list(p) for p in f.keypoints]} for f in found],
            "crop_gray_f32": b64(crop.astype(np.float32))}


def region_cases() -> dict:
    live = faces.LIVE
    face = lambda box: faces.Face(box=box, score=0.9, keypoints=((0, 0),) * 6)  # noqa: E731
    roi = []
    for w, h, box in ((640, 480, (300.0, 200.0, 340.0, 244.0)),  # small: a square around it
                      (640, 480, (-20.0, 400.0, 30.0, 455.0)),  # past the edge
                      (640, 480, (100.0, 50.0, 400.0, 370.0))):  # big: the whole frame
        m = faces.roi_region(face(box), w, h, 128, live)
        roi.append({"w": w, "h": h, "box": list(box), "m": None if m is None else m.tolist()})
    scan = [{"w": w, "h": h, "m": [m.tolist() for m in faces.scan_regions(w, h, 128, live)]}
            for w, h in ((640, 480), (480, 640), (1280, 720), (320, 240), (300, 300))]
    return {"roi": roi, "scan": scan}


def exposure_cases() -> list[dict]:
    """The gain of sampled detector inputs: dark, bright and mid images, through the
    letterbox (bars outside the image) and a square reaching past the image."""
    out = []
    for seed, (w, h), scale, m in (
            (11, (20, 12), 0.15, faces.letterbox_region(20, 12, 8)),
            (12, (20, 12), 1.0, faces.letterbox_region(20, 12, 8)),
            (13, (9, 15), 0.4, faces.search_region(-3.0, 5.5, 12.0, 8)),
            (14, (16, 16), 0.0, faces.search_region(2.0, 2.0, 8.0, 8))):
        name, img = image(seed, w, h)
        img = np.round(img * scale).astype(np.uint8)
        name = f"{name}_x{scale}"
        IMAGES[name] = {"w": w, "h": h, "rgb": b64(img)}
        x = faces._warp(img, m, 8, 8, m[0, 0], fill=0.0)  # (8, 8, 3)
        gain = faces.exposure_gain(x, m, w, h, faces.LIVE)
        net = np.minimum(x * np.float32(gain), np.float32(1)) * 2 - 1
        out.append({"image": name, "m": m.tolist(), "step": m[0, 0], "n": 8, "gain": gain,
                    "net": rounded(net.transpose(2, 0, 1).reshape(-1))})  # (3, 8, 8) planes
    return out


def crop_exposure_cases() -> list[dict]:
    """The live path's crop gain (`brighten_crop`) on small crops: grey and RGB, dim (gained,
    some values capped at 1), lit (unchanged) and black (max_gain)."""
    out = []
    for seed, channels, scale in ((21, "gray", 0.2), (22, "gray", 1.0), (23, "rgb", 0.15),
                                  (24, "gray", 0.0), (25, "rgb", 0.9)):
        name, img = image(seed, 6, 6)
        IMAGES.pop(name)  # the crop itself is stored
        crop = (img.astype(np.float32) / 255 * np.float32(scale)).transpose(2, 0, 1)
        if channels == "gray":
            crop = crop[:1] * np.float32(0.5) + crop[1:2] * np.float32(0.5)
        if scale:
            crop[0, 0, 0] = 0.5 if scale < 0.5 else 1.0  # a bright pixel: capped when gained
        out.append({"channels": channels, "size": 6, "crop": rounded(crop.reshape(-1), 8),
                    "out": rounded(faces.brighten_crop(crop, faces.LIVE).reshape(-1), 8)})
    return out


LIVE_W, LIVE_H = 320, 240  # the live case's camera
LIVE_DETECT_MS = 100.0  # its detect_interval_ms


def live_case() -> dict:
    """A dim room 560 px wide with the astronaut's face (34 px) at x ~ 100; the camera sees
    a 320x240 window of it, panning slowly, then away (the face leaves), then back."""
    cam = dataclasses.replace(scenes.CAMERAS["dark+small"], face_px=(34.0 * 640 / 560,) * 2,
                              read_noise=1.0, shot_noise=0.05)
    clip = scenes.Clip(fakecam.astronaut_face(), cam, seed=3, size=(560, LIVE_H))
    clip.params.update(cx=100.0, cy=120.0, tilt_deg=0.0, sway_deg=0.0, drift_px=0.0)
    canvas, truth = clip.frame(0)
    grey = np.round(canvas.astype(np.float32) @ np.array(faces.GRAY_WEIGHTS, np.float32))
    grey = grey.astype(np.uint8)  # (H, 560): one channel keeps the file small
    steps = [(i * 33.4, 2 * i, 0) for i in range(12)]  # the face found, followed, carried
    steps += [(400 + 33.4 * i, 240, 0) for i in range(14)]  # away: held, then gone
    steps += [(900 + 33.4 * i, 20, 0) for i in range(10)]  # back: found again
    det = faces.FaceDetector(kind="short")
    tracker = faces.FaceTracker(det, faces.LIVE, detect_interval_ms=LIVE_DETECT_MS)
    frames = []
    for t_ms, x0, y0 in steps:
        rgb = np.repeat(grey[y0:y0 + LIVE_H, x0:x0 + LIVE_W, None], 3, axis=2)
        f = tracker.update(t_ms, rgb)
        frames.append({"t_ms": t_ms, "x0": x0, "y0": y0, "search": tracker.search,
                       "face": None if f is None else {
                           "box": list(f.box), "score": f.score,
                           "keypoints": [list(p) for p in f.keypoints]}})
    searches = {f["search"] for f in frames}
    want = {"scan", "roi", "carried", "held", "gone", "none"}
    if not want <= searches:
        raise RuntimeError(f"the live case shows {sorted(searches)}, not all of {sorted(want)}")
    return {"w": LIVE_W, "h": LIVE_H, "canvas_w": grey.shape[1], "canvas_h": grey.shape[0],
            "canvas_gray_zlib": base64.b64encode(zlib.compress(grey.tobytes(), 9)).decode(),
            "truth_box": list(truth), "detect_interval_ms": LIVE_DETECT_MS,
            "detector_file": det.spec.file, "frames": frames}


def build() -> dict:
    policy = faces.CropPolicy.default()
    IMAGES.clear()
    cases = {
        "warp": warp_cases(),
        "letterbox": letterbox_cases(),
        "anchors": anchor_cases(),
        "decode": decode_cases(),
        "crop_cases": crop_cases(policy),
        "detect": detect_case(policy),
        "regions": region_cases(),
        "exposure": exposure_cases(),
        "crop_exposure": crop_exposure_cases(),
        "live": live_case(),
    }
    return {"about": "utjima.faces on tiny inputs; written by tools/make_face_vectors.py, "
                     "checked by tests/js/faces.test.mjs", "crop": policy.to_json(),
            "live_config": faces.LIVE.to_json(), "images": dict(IMAGES), **cases}


def _close(a: Any, b: Any, path: str = "$") -> str | None:
    """The path of the first difference beyond CHECK_ATOL, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{path}: keys {sorted(a)} != {sorted(b)}"
        return next((d for k in a if (d := _close(a[k], b[k], f"{path}.{k}"))), None)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        return next((d for i, (x, y) in enumerate(zip(a, b, strict=True))
                     if (d := _close(x, y, f"{path}[{i}]"))), None)
    if isinstance(a, float) or isinstance(b, float):
        ok = a is not None and b is not None and abs(a - b) <= CHECK_ATOL
        return None if ok else f"{path}: {a} != {b}"
    if isinstance(a, str) and path.endswith("crop_gray_f32"):
        x, y = (np.frombuffer(base64.b64decode(s), np.float32) for s in (a, b))
        same = x.shape == y.shape and np.abs(x - y).max() <= CHECK_ATOL
        return None if same else f"{path}: crops differ"
    return None if a == b else f"{path}: {a!r} != {b!r}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="compare with the file instead of writing it")
    ap.add_argument("--out", type=Path, default=OUT,
                    help=f"output file (default: {OUT.relative_to(ROOT)})")
    a = ap.parse_args(argv)
    data = build()
    if a.check:
        if not a.out.is_file():
            print(f"{a.out} is missing; run python -m tools.make_face_vectors", file=sys.stderr)
            return 1
        diff = _close(json.loads(a.out.read_text()), json.loads(json.dumps(data)))
        if diff:
            print(f"{a.out} is out of date ({diff}); "
                  "rerun python -m tools.make_face_vectors and review the diff", file=sys.stderr)
            return 1
        print(f"{a.out.relative_to(ROOT)} is up to date")
        return 0
    a.out.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    print(f"wrote {a.out} ({a.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
