"""`utjima predict`: faces and smiles in images, laughs in videos.

Images: every face (full-range BlazeFace, tiled for small faces), its smile_prob, the
decision at the model's threshold, and emotion probabilities.
Videos: one tracked face per frame (streaming, time stamps from the file), and the laughs
found by the same judge rules the game uses (utjima.judge).
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from utjima.utils import UtjimaError

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
VIDEO_EXT = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".y4m",
             ".mjpeg", ".mjpg"}
# Pictures larger than this are refused from their header, before any pixel is decoded:
# above every common camera (48-61 MP), while a 20000 x 20000 PNG (400 MP, 431 KB on disk)
# would take 2.4 GB and over a minute to decode.
MAX_IMAGE_PIXELS = 100_000_000


class MediaError(UtjimaError):
    """This input cannot be read as an image or a video."""


def media_kind(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in IMAGE_EXT:
        return "image"
    if ext in VIDEO_EXT:
        return "video"
    raise MediaError(f"unknown media type {ext or '(no extension)'!r}; "
                     f"images: {sorted(IMAGE_EXT)}, videos: {sorted(VIDEO_EXT)}")


def expand_paths(args: list[str], stdin=None) -> Iterator[Path]:
    """Files as given; directories walked (sorted, media files only); '-' = paths from stdin."""
    for a in args:
        if a == "-":
            for line in (stdin or sys.stdin):
                if line.strip():
                    yield from expand_paths([line.strip()])
            continue
        p = Path(a)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in sorted(files):
                    if Path(f).suffix.lower() in IMAGE_EXT | VIDEO_EXT:
                        yield Path(root) / f
        else:
            yield p


def read_image(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """(H, W, 3) uint8 RGB, EXIF orientation applied. The size comes from the header first,
    so an oversized picture is refused before decoding; a truncated or corrupt file is an
    error, never a partly grey picture."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:  # reads the header only
                w, h = im.size
                if w * h > max_pixels:
                    raise MediaError(_too_large(f"{w}x{h} pixels ({w * h / 1e6:.0f} MP)",
                                                max_pixels))
                im.load()  # decodes; raises on a truncated file
                return _rgb(ImageOps.exif_transpose(im))
    except Image.DecompressionBombError as e:  # Pillow's own limit, above ours
        n = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(n.group(1)) / 1e6:.0f} MP" if n else "too many pixels"
        raise MediaError(_too_large(size, max_pixels)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise MediaError(f"cannot decode image ({e})") from None


def _too_large(size: str, max_pixels: int) -> str:
    return (f"image is {size}; utjima reads at most {max_pixels / 1e6:.0f} MP "
            "(downscale it first)")


def _rgb(im) -> np.ndarray:
    """A decoded Pillow image -> (H, W, 3) uint8 RGB (16-bit grey scaled as OpenCV does)."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        grey = np.clip(np.asarray(im, np.float64) / 256, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    return np.ascontiguousarray(np.asarray(im.convert("RGB")))


def iter_video(path: Path) -> tuple[float, Iterator[tuple[int, float, np.ndarray]]]:
    """(fps, iterator of (i, t_ms, rgb)). t_ms is the frame's time stamp in the file when the
    container gives increasing ones, else i * 1000 / fps."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise MediaError("cannot open video (corrupt or unsupported codec)")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    ok, first = cap.read()
    if not ok:
        cap.release()
        raise MediaError("video has no decodable frames")
    if not 1.0 <= fps <= 480.0:
        fps = 30.0  # some containers do not state a rate; say so in the output
    fps_known = True

    def frames():
        nonlocal fps_known
        i, frame, last_t = 0, first, -1.0
        try:
            while frame is not None:
                t = cap.get(cv2.CAP_PROP_POS_MSEC)
                t_ms = t if (t > last_t and i > 0) else i * 1000.0 / fps
                if i > 0 and t <= last_t:
                    t_ms = last_t + 1000.0 / fps
                last_t = t_ms
                yield i, t_ms, np.ascontiguousarray(frame[:, :, ::-1])
                ok, frame = cap.read()
                frame = frame if ok else None
                i += 1
        finally:
            cap.release()

    return fps, frames()


def num(v: float, digits: int) -> float:
    """Rounded for output, never -0.0 (a box edge at -0.04 px prints as 0.0)."""
    return round(float(v), digits) + 0.0


def predict_image(model, path: Path, threshold: float, max_faces: int, kind: str) -> dict:
    rgb = read_image(path)
    faces = model.score_image(rgb, kind="photo" if kind == "auto" else kind, max_faces=max_faces)
    return {
        "path": str(path), "kind": "image", "width": rgb.shape[1], "height": rgb.shape[0],
        "faces": [{
            "box": [num(v, 1) for v in fs.face.box],
            "score": num(fs.face.score, 4),
            "smile_prob": num(fs.smile_prob, 4),
            "smiling": fs.smile_prob >= threshold,
            "emotion": {k: num(v, 4) for k, v in fs.emotion.items()},
        } for fs in faces],
    }


def predict_video(model, path: Path, judge_cfg, kind: str) -> dict:
    from utjima.judge import segments

    fps, frames = iter_video(path)
    stream = model.stream(kind="short" if kind == "auto" else kind)
    rows, samples = [], []
    for i, t_ms, rgb in frames:
        r = stream.process(t_ms, rgb)
        # unrounded: the judge needs increasing t_ms
        samples.append((t_ms, r["smile_prob"], r["face"]))
        rows.append({"i": i, "t_ms": num(t_ms, 1), "face": r["face"],
                     "box": None if r["box"] is None else [num(v, 1) for v in r["box"]],
                     "smile_prob": None if r["smile_prob"] is None else num(r["smile_prob"], 4)})
    laughs = segments(samples, judge_cfg)
    rounded = [{k: (num(v, 4) if isinstance(v, float) else v) for k, v in seg.items()}
               for seg in laughs]
    return {"path": str(path), "kind": "video", "fps": round(fps, 3), "n_frames": len(rows),
            "frames": rows, "laughs": rounded}


def describe(result: dict, threshold: float) -> str:
    p = result["path"]
    if result["kind"] == "image":
        faces = result["faces"]
        if not faces:
            return f"{p}: no face found"
        lines = [f"{p}: {len(faces)} face{'s' if len(faces) > 1 else ''}"]
        for k, f in enumerate(faces, 1):
            top = max(f["emotion"], key=f["emotion"].get)
            verdict = "SMILING" if f["smiling"] else "not smiling"
            box = ",".join(f"{num(v, 0):.0f}" for v in f["box"])
            lines.append(f"  #{k} [{box}] {verdict:11s} smile_prob {f['smile_prob']:.2f} "
                         f"(threshold {threshold:.2f}); emotion {top} {f['emotion'][top]:.0%}")
        return "\n".join(lines)
    n = result["n_frames"]
    with_face = sum(r["face"] for r in result["frames"])
    head = f"{p}: {n} frames at {result['fps']:g} fps, face in {with_face}"
    laughs = result["laughs"]
    if not laughs:
        return head + "; no laugh"
    parts = [f"{seg['start_ms'] / 1000:.2f}-{seg['end_ms'] / 1000:.2f} s "
             f"(peak {seg['peak_prob']:.2f})" for seg in laughs]
    return head + f"; {len(laughs)} laugh{'s' if len(laughs) > 1 else ''}: " + ", ".join(parts)


def find_media(args: list[str], stdin=None) -> list[Path]:
    """`expand_paths`, refusing paths that do not exist and an empty result."""
    paths = list(expand_paths(args, stdin))
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise MediaError(f"no such file: {', '.join(missing)}")
    if not paths:
        raise MediaError("no image or video files found in " + ", ".join(args))
    return paths


class PredictError(UtjimaError):
    """Settings `predict` cannot work with (a threshold the judge rules refuse)."""


def judge_config(model, threshold: float):
    """The judge rules for videos: model.json's `judge`, at `threshold`."""
    try:
        return model.contract.judge_config(threshold)
    except (TypeError, ValueError) as e:
        raise PredictError(f"threshold {threshold:g} does not fit the judge rules in "
                           f"model.json: {str(e).split('; got')[0]}") from None


def predict_file(model, path: Path, *, threshold: float, max_faces: int = 20,
                 detector: str = "auto") -> dict:
    """One image (every face) or video (per frame, and its laughs) -> a JSON-ready dict.
    `model` is a utjima.runtime.SmileModel; the judge rules come from its model.json."""
    if max_faces < 1:
        raise PredictError(f"max_faces must be >= 1, got {max_faces}")
    if media_kind(path) == "image":
        return predict_image(model, path, threshold, max_faces, detector)
    return predict_video(model, path, judge_config(model, threshold), detector)
