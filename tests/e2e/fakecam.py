"""Fake cameras for the browser tests: YUV4MPEG2 (.y4m) files Chromium plays as a webcam
(`--use-file-for-fake-video-capture`), built from the shared face datasets.

A frame is 640x480 on a plain background with one face crop upscaled to ~200 px in the
middle, drifting a few pixels (a live face is never still). A video is a list of
(crop, seconds) segments, e.g. a neutral face then a smiling one. Chromium loops the file.
Gray crops go into the luma plane in BT.601 limited range (16..235, what Chromium assumes
for I420), so the page sees the crop's own gray levels; chroma is neutral (128).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

W, H = 640, 480
FACE_PX = 200
BACKGROUND = 150


def face_patch(img: Image.Image, size: int = FACE_PX, feather: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """(gray uint8 (size, size), alpha float (size, size)): the crop upscaled, with soft edges
    so the face does not sit in a hard-edged square."""
    g = np.asarray(img.convert("L").resize((size, size), Image.BICUBIC), dtype=np.float32)
    ramp = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32)
    edge = np.clip(ramp / feather, 0.0, 1.0)
    alpha = np.minimum(edge[:, None], edge[None, :])  # (size, size)
    return g, alpha


def frame(patch: tuple[np.ndarray, np.ndarray], dx: int, dy: int) -> np.ndarray:
    """One (H, W) luma frame with the patch centred, shifted by (dx, dy)."""
    g, alpha = patch
    s = g.shape[0]
    y = np.full((H, W), BACKGROUND, dtype=np.float32)
    x0, y0 = (W - s) // 2 + dx, (H - s) // 2 + dy
    region = y[y0:y0 + s, x0:x0 + s]
    y[y0:y0 + s, x0:x0 + s] = region * (1 - alpha) + g * alpha
    return np.clip(y + 0.5, 0, 255).astype(np.uint8)


def limited_range(y: np.ndarray) -> np.ndarray:
    """Full-range gray (0..255) -> BT.601 limited-range luma (16..235)."""
    return (16.0 + y.astype(np.float32) * (219.0 / 255.0) + 0.5).astype(np.uint8)


def write_y4m(path: Path, segments: Sequence[tuple[Image.Image, float]], fps: int = 15) -> Path:
    """Write the segments (face crop, seconds) one after another as a .y4m video."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chroma = np.full((H // 2) * (W // 2), 128, dtype=np.uint8).tobytes()  # (H/2 * W/2,)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(f"YUV4MPEG2 W{W} H{H} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        i = 0
        for img, seconds in segments:
            patch = face_patch(img)
            for _ in range(round(seconds * fps)):
                t = i / fps
                dx, dy = round(6 * math.sin(2 * math.pi * t / 3.0)), round(3 * math.sin(2 * math.pi * t / 2.3))
                f.write(b"FRAME\n")
                f.write(limited_range(frame(patch, dx, dy)).tobytes())
                f.write(chroma)  # U
                f.write(chroma)  # V
                i += 1
    tmp.replace(path)
    return path


# --- choosing the faces ------------------------------------------------------------------------


def ferplus_candidates(ferplus_dir: Path, label: str, min_votes: int = 9, split: str = "FER2013Train",
                       limit: int = 60) -> list[Path]:
    """FER+ crops that at least `min_votes` of the 10 taggers gave `label` ("neutral" or
    "happiness"): clearly neutral, clearly smiling."""
    import csv

    col = {"neutral": 2, "happiness": 3}[label]
    out = []
    with open(ferplus_dir / split / "label.csv", newline="") as f:
        for row in csv.reader(f):
            if int(row[col]) >= min_votes:
                out.append(ferplus_dir / split / row[0])
                if len(out) >= limit:
                    break
    return out


def stream_probs(model, img: Image.Image, seconds: float = 1.5, fps: int = 15) -> list[float | None]:
    """smile_prob per frame of this face as the fake camera shows it, through the same
    streaming pipeline the browser runs (utjima.runtime.Stream)."""
    st = model.stream("short")
    patch = face_patch(img)
    out = []
    for i in range(round(seconds * fps)):
        t = i / fps
        dx, dy = round(6 * math.sin(2 * math.pi * t / 3.0)), round(3 * math.sin(2 * math.pi * t / 2.3))
        y = frame(patch, dx, dy)
        r = st.process(t * 1000.0, np.repeat(y[:, :, None], 3, axis=2))  # (H, W) -> (H, W, 3)
        out.append(r["smile_prob"])
    return out


def pick_faces(ferplus_dir: Path, model_dir: Path | None = None) -> dict:
    """A clearly neutral and a clearly smiling FER+ face that the bundled model tells apart
    on the fake camera, with margins for the judge: {"neutral", "smile", "ok", "why", ...}.

    neutral: detected in every frame, every smile_prob below thresholds.smile - 0.15 (the
    quiet player never laughs); smile: detected in every frame, every smile_prob above the
    threshold calibration would give the neutral face, plus 0.05."""
    from utjima.judge import JudgeConfig, calibrate
    from utjima.runtime import SmileModel

    model = SmileModel(model_dir)
    thr = model.contract.smile_threshold
    cfg = JudgeConfig.from_dict({**model.contract.data.get("judge", {}), "threshold": thr})
    best_n: tuple[float, Path] | None = None
    for p in ferplus_candidates(ferplus_dir, "neutral"):
        probs = stream_probs(model, Image.open(p))
        if any(q is None for q in probs):
            continue
        if best_n is None or max(probs) < best_n[0]:
            best_n = (max(probs), p)
        if max(probs) < thr - 0.15:
            break
    if best_n is None:
        return {"ok": False, "why": "no clearly neutral FER+ face was detected on the fake camera"}
    n_probs = stream_probs(model, Image.open(best_n[1]))
    cal = calibrate([[i * 66.0, q, True] for i, q in enumerate(n_probs * 2)], cfg)
    best_s: tuple[float, Path] | None = None
    for p in ferplus_candidates(ferplus_dir, "happiness"):
        probs = stream_probs(model, Image.open(p))
        if any(q is None for q in probs):
            continue
        if best_s is None or min(probs) > best_s[0]:
            best_s = (min(probs), p)
        if min(probs) > cal + 0.05:
            break
    info = {"neutral": str(best_n[1]), "neutral_max": best_n[0], "threshold": thr,
            "calibrated": cal, "smile": str(best_s[1]) if best_s else None,
            "smile_min": best_s[0] if best_s else None, "model": model.contract.data.get("name")}
    ok = best_n[0] < thr - 0.15 and best_s is not None and best_s[0] > cal + 0.05
    info["ok"] = ok
    info["why"] = "" if ok else (
        f"the bundled model ({info['model']}) does not tell the fake camera's faces apart: best "
        f"neutral max smile_prob {best_n[0]:.3f} (needs < {thr - 0.15:.3f}), best smile min "
        f"{info['smile_min']} (needs > {cal + 0.05:.3f})")
    return info
