"""Fake cameras for the game's end-to-end test, built on the shared `harness.fakecam`
(y4m writing, framing, motion): a video is a list of (face crop, seconds) segments, e.g. a
neutral face then a smiling one, centred in 640x480 with slight motion; Chromium loops it.
The faces are FER+ crops the taggers agree on, checked against the bundled model (below).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from harness import fakecam

FPS = 15


def frames(segments: Sequence[tuple[Image.Image, float]], fps: int = FPS) -> Iterator[np.ndarray]:
    """(H, W, 3) uint8 frames of the segments one after another, the face drifting a little."""
    i = 0
    for img, seconds in segments:
        face = np.asarray(img.convert("L"))
        for _ in range(round(seconds * fps)):
            dx, dy = fakecam.drift(i, fps)
            yield fakecam.compose(face, fakecam.FRAME_W / 2 + dx, fakecam.FRAME_H / 2 + dy)
            i += 1


def write_y4m(path: Path, segments: Sequence[tuple[Image.Image, float]], fps: int = FPS) -> Path:
    """Write the segments (face crop, seconds) as a .y4m video (atomically: tests cache it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fakecam.write_y4m(tmp, frames(segments, fps), fps=fps)
    return tmp.replace(path)


# --- choosing the faces ------------------------------------------------------------------------


def ferplus_candidates(ferplus_dir: Path, label: str, min_votes: int = 9,
                       split: str = "FER2013Train", limit: int = 60) -> list[Path]:
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


def stream_probs(model, img: Image.Image, seconds: float = 1.5,
                 fps: int = FPS) -> list[float | None]:
    """smile_prob per frame of this face as the fake camera shows it, through the same
    streaming pipeline the browser runs (utjima.runtime.Stream)."""
    st = model.stream("short")
    clip = frames([(img, seconds)], fps)
    return [st.process(i * 1000.0 / fps, f)["smile_prob"] for i, f in enumerate(clip)]


def pick_faces(ferplus_dir: Path, model_dir: Path | None = None) -> dict:
    """A clearly neutral and a clearly smiling FER+ face that the bundled model tells apart
    on the fake camera, with margins for the judge: {"neutral", "smile", "ok", "why", ...}.

    neutral: detected in every frame, every smile_prob below thresholds.smile - 0.15 (the
    quiet player never laughs); smile: detected in every frame, every smile_prob above the
    threshold calibration would give the neutral face, plus 0.05."""
    from utjima.judge import calibrate
    from utjima.runtime import SmileModel

    model = SmileModel(model_dir)
    thr = model.contract.smile_threshold
    cfg = model.contract.judge_config()
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
