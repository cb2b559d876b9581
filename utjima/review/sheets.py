"""Contact sheets: one PNG per clip with frames picked evenly in time, each with its time,
label and score, and the clip's timeline (label spans, score curve, threshold) under them.
Drawn with OpenCV, ASCII text only (clip ids and labels), so any machine renders it the same.
"""

from __future__ import annotations

import cv2
import numpy as np

from utjima import EMOTIONS

WIDTH = 1240  # px
MARGIN, GAP, COLS = 20, 8, 6
MAX_THUMBS = 12
# BGR, the review page's colours
INK = (54, 16, 27)
CARD = (236, 248, 255)
SMILE = (121, 79, 255)  # pink: smiling
NON_SMILE = (151, 220, 61)  # mint: not smiling
UNKNOWN = (181, 144, 154)  # grey-violet: unknown / masked
CURVE = (255, 200, 94)  # sky
MUTED = (143, 92, 107)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def pick(times_ms: np.ndarray, k: int = MAX_THUMBS) -> list[int]:
    """Up to `k` frame indices spread evenly over the clip's time, first and last included."""
    t = np.asarray(times_ms, np.float64)
    if len(t) <= k:
        return list(range(len(t)))
    targets = np.linspace(t[0], t[-1], k)
    return sorted({int(np.argmin(np.abs(t - x))) for x in targets})


def _colour(v: int) -> tuple[int, int, int]:
    return SMILE if v == 1 else NON_SMILE if v == 0 else UNKNOWN


def _text(img, s: str, xy, scale=0.5, colour=INK, thick=1) -> None:
    s = s.encode("ascii", "replace").decode()
    cv2.putText(img, s, (int(xy[0]), int(xy[1])), FONT, scale, colour, thick, cv2.LINE_AA)


def _timeline(img, x0: int, y0: int, w: int, h: int, t: np.ndarray, smile: np.ndarray,
              probs: np.ndarray | None, threshold: float, marks: list[int]) -> None:
    span = max(float(t[-1] - t[0]), 1.0)
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0

    def x(ms: float) -> int:
        return x0 + int(round((ms - t[0]) / (span + step) * w))

    band = 16
    for i in range(len(t)):
        end = t[i + 1] if i + 1 < len(t) else t[i] + step
        cv2.rectangle(img, (x(t[i]), y0), (max(x(end) - 1, x(t[i])), y0 + band), _colour(smile[i]),
                      -1)
    top, bottom = y0 + band + 6, y0 + h
    cv2.rectangle(img, (x0, top), (x0 + w, bottom), (255, 255, 255), -1)
    cv2.rectangle(img, (x0, top), (x0 + w, bottom), INK, 1)
    ty = int(bottom - threshold * (bottom - top))
    for xx in range(x0, x0 + w, 12):
        cv2.line(img, (xx, ty), (min(xx + 6, x0 + w), ty), INK, 1)
    _text(img, f"threshold {threshold:.2f}", (x0 + w - 130, ty - 4), 0.4, MUTED)
    if probs is not None:
        pts = []
        for i, p in enumerate(probs):
            if np.isfinite(p):
                pts.append((x(t[i] + step / 2), int(bottom - p * (bottom - top))))
            elif pts:
                cv2.polylines(img, [np.array(pts, np.int32)], False, CURVE, 2, cv2.LINE_AA)
                pts = []
        if pts:
            cv2.polylines(img, [np.array(pts, np.int32)], False, CURVE, 2, cv2.LINE_AA)
    for i in marks:
        cv2.line(img, (x(t[i] + step / 2), top), (x(t[i] + step / 2), top + 6), INK, 1)


def contact_sheet(frames: np.ndarray, indices: list[int], times_ms: np.ndarray,
                  smile: np.ndarray, emotion: np.ndarray, probs: np.ndarray | None,
                  threshold: float, *, title: str, clip_smile: int = -1,
                  excluded: bool = False, flagged: bool = False) -> np.ndarray:
    """(H, WIDTH, 3) uint8 RGB: `frames` are the clip's frames at `indices` (from `pick`)."""
    t = np.asarray(times_ms, np.float64)
    tw = (WIDTH - 2 * MARGIN - (COLS - 1) * GAP) // COLS
    fh, fw = frames.shape[1:3]
    th = int(round(tw * fh / fw))
    cell_h = th + 40
    rows = (len(indices) + COLS - 1) // COLS
    head, tl_h = 66, 110
    height = head + MARGIN + rows * (cell_h + GAP) + tl_h + MARGIN
    img = np.full((height, WIDTH, 3), CARD, np.uint8)  # drawn in BGR, returned as RGB
    cv2.rectangle(img, (0, 0), (WIDTH, head), INK, -1)
    _text(img, title, (MARGIN, 28), 0.75, (255, 255, 255), 2)
    label = {1: "laughed", 0: "did not laugh"}.get(clip_smile, "unknown")
    dur = (t[-1] - t[0]) / 1000 if len(t) else 0.0
    info = f"{len(t)} frames, {dur:.1f} s, clip label: {label}"
    info += "   EXCLUDED" if excluded else ""
    info += "   FLAGGED" if flagged else ""
    _text(img, info, (MARGIN, 54), 0.5, (200, 210, 230))
    for k, (i, frame) in enumerate(zip(indices, frames, strict=True)):
        r, c = divmod(k, COLS)
        x, y = MARGIN + c * (tw + GAP), head + MARGIN + r * (cell_h + GAP)
        thumb = cv2.resize(np.ascontiguousarray(frame[:, :, ::-1]), (tw, th),
                           interpolation=cv2.INTER_AREA)  # RGB -> BGR
        img[y : y + th, x : x + tw] = thumb
        cv2.rectangle(img, (x, y + th), (x + tw, y + th + 7), _colour(int(smile[i])), -1)
        p = None if probs is None or not np.isfinite(probs[i]) else float(probs[i])
        score = "no face" if probs is not None and p is None else ("" if p is None else f"{p:.2f}")
        _text(img, f"{t[i] / 1000:.1f} s", (x + 2, y + th + 24), 0.45)
        _text(img, score, (x + tw - 62, y + th + 24), 0.45,
              SMILE if p is not None and p >= threshold else INK)
        emo = EMOTIONS[emotion[i]] if emotion[i] >= 0 else ""
        _text(img, f"#{i} {emo}", (x + 2, y + th + 38), 0.38, MUTED)
    y0 = head + MARGIN + rows * (cell_h + GAP)
    _timeline(img, MARGIN, y0, WIDTH - 2 * MARGIN, tl_h - 10, t, smile, probs, threshold,
              indices)
    return np.ascontiguousarray(img[:, :, ::-1])


def png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 images
        raise RuntimeError("OpenCV could not encode the contact sheet")
    return buf.tobytes()
