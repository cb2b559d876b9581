"""Fake cameras for headless Chromium: y4m files and the frames that go in them.

Chromium plays a `.y4m` file as the webcam with
`--use-fake-device-for-media-stream --use-fake-ui-for-media-stream
--use-file-for-fake-video-capture=FILE.y4m`, at the file's frame rate, looping. This module
writes such files (`write_y4m`) and builds test scenes: a face upscaled onto a plain
640x480 background with slight motion (`compose`), and the neutral-then-smiling clip the
browser tests use (`smile_clip`), with faces picked by label from SMILEsmileD's test split
(or the astronaut fixture when the research archives are absent).

    from harness.fakecam import write_y4m, compose, smile_clip

The CLI is `python -m tools.make_fake_camera`. Frames are RGB uint8 (H, W, 3); the file is 4:2:0,
BT.601 limited range, which is what Chromium assumes for I420, so colours survive the trip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO_ROOT / "tests" / "fixtures" / "astronaut.jpg"
FRAME_W, FRAME_H = 640, 480
BACKGROUND = 150  # plain grey background, 0..255
FACE_PX = 220  # side of the upscaled face crop in the frame, px
MOTION_PX = 6.0  # amplitude of the slow drift, px
MOTION_HZ = 0.7  # drift frequency
# Segment centres: the neutral face sits left of centre, the smiling face right of it, so a
# result's box tells which segment it came from even though Chromium loops the file.
NEUTRAL_CX, SMILE_CX = 230.0, 410.0


# BT.601 limited range ("studio swing"), as Chromium converts I420 back to RGB.
_RGB_TO_YUV = np.array([[65.481, 128.553, 24.966],
                        [-37.797, -74.203, 112.0],
                        [112.0, -93.786, -18.214]]) / 255.0


def rgb_to_i420(frame: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB, H and W even -> I420 bytes (Y plane, then U, then V)."""
    h, w = frame.shape[:2]
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"need uint8 RGB (H, W, 3), got {frame.dtype} {frame.shape}")
    if h % 2 or w % 2:
        raise ValueError(f"4:2:0 needs an even width and height, got {w}x{h}")
    yuv = frame.astype(np.float32) @ _RGB_TO_YUV.T.astype(np.float32)  # (H, W, 3)
    y = np.clip(np.round(yuv[..., 0] + 16), 0, 255).astype(np.uint8)
    # chroma: mean over each 2x2 block  (H, W) -> (H/2, 2, W/2, 2) -> (H/2, W/2)
    uv = yuv[..., 1:].reshape(h // 2, 2, w // 2, 2, 2).mean(axis=(1, 3)) + 128
    uv = np.clip(np.round(uv), 0, 255).astype(np.uint8)
    return y.tobytes() + uv[..., 0].tobytes() + uv[..., 1].tobytes()


def write_y4m(path: str | Path, frames_rgb, fps: int = 30) -> Path:
    """Write RGB uint8 frames (an iterable of (H, W, 3), all one size) as a 4:2:0 y4m file
    that Chromium's fake camera plays at `fps`. Returns the path."""
    if not (isinstance(fps, int) and 1 <= fps <= 120):
        raise ValueError(f"fps must be an int in 1..120, got {fps!r}")
    path = Path(path)
    n = 0
    with open(path, "wb") as f:
        for frame in frames_rgb:
            frame = np.asarray(frame)
            if n == 0:
                h, w = frame.shape[:2]
                f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
            elif frame.shape[:2] != (h, w):
                raise ValueError(f"frame {n} is {frame.shape[1]}x{frame.shape[0]}, "
                                 f"the file is {w}x{h}")
            f.write(b"FRAME\n")
            f.write(rgb_to_i420(frame))
            n += 1
    if n == 0:
        path.unlink()
        raise ValueError("write_y4m needs at least one frame")
    return path


def read_y4m_header(path: str | Path) -> dict[str, str]:
    """The header tags of a y4m file, e.g. {"W": "640", "H": "480", "F": "30:1", ...}."""
    with open(path, "rb") as f:
        line = f.readline().decode().split()
    if not line or line[0] != "YUV4MPEG2":
        raise ValueError(f"{path} is not a y4m file")
    return {t[0]: t[1:] for t in line[1:]}


def _as_rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[:, :, None]
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[:, :, :3]


def compose(face: np.ndarray, cx: float, cy: float, face_px: int = FACE_PX, angle_deg: float = 0.0,
            size: tuple[int, int] = (FRAME_W, FRAME_H), background: int = BACKGROUND) -> np.ndarray:
    """A (H, W, 3) uint8 frame: `face` (a square crop, grey or RGB) scaled to `face_px`,
    rotated by `angle_deg` (counter-clockwise on screen) and centred at (cx, cy) on a plain
    background."""
    import cv2

    w, h = size
    src = _as_rgb(face).astype(np.uint8)
    s = face_px / src.shape[1]
    m = cv2.getRotationMatrix2D((src.shape[1] / 2, src.shape[0] / 2), angle_deg, s)
    m[:, 2] += (cx - src.shape[1] / 2, cy - src.shape[0] / 2)
    frame = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=(background,) * 3)
    return frame


def drift(i: int, fps: float, amplitude: float = MOTION_PX,
          hz: float = MOTION_HZ) -> tuple[float, float]:
    """Slight head motion: a slow Lissajous drift, px."""
    t = i / fps
    dx = amplitude * math.sin(2 * math.pi * hz * t)
    dy = 0.6 * amplitude * math.sin(2 * math.pi * hz * 1.3 * t + 1.0)
    return dx, dy


@dataclass(frozen=True)
class Faces:
    """One neutral and one smiling face crop, and where they came from."""

    neutral: np.ndarray
    smiling: np.ndarray
    source: str  # "smilesmiled:test" or "astronaut"
    ids: tuple[str, str]  # neutral, smiling file names


def astronaut_face() -> np.ndarray:
    """The fixture's face as a square crop (public-domain NASA photo, one frontal face)."""
    from PIL import Image

    img = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    return img[17:157, 94:234]  # 140 px square around the face of the 384x384 fixture


def pick_smilesmiled(root: Path, detector=None, min_score: float = 0.75) -> Faces:
    """The first neutral and the first smiling face of SMILEsmileD's test split (the split
    utjima.data.smilesmiled makes; name-hash order) that the live face detector finds with
    score >= min_score when composed into a frame."""
    from PIL import Image

    from utjima.data.smilesmiled import _files, split_of
    from utjima.faces import default_detector

    detector = detector or default_detector("short")
    rel, labels = _files(root)
    split = split_of(rel, labels)
    picked = {}
    for label in (0, 1):
        for i in np.flatnonzero((labels == label) & (split == "test")):
            img = np.asarray(Image.open(root / rel[i]).convert("L"))
            found = detector.detect(compose(img, FRAME_W / 2, FRAME_H / 2))
            if found and found[0].score >= min_score:
                picked[label] = (img, rel[i])
                break
        else:
            raise RuntimeError(f"no face with label {label} found at score >= {min_score} "
                               f"in {root}")
    return Faces(picked[0][0], picked[1][0], "smilesmiled:test", (picked[0][1], picked[1][1]))


def astronaut_faces() -> Faces:
    """No research archive: the fixture's face twice (a smile-free clip cannot test smiles)."""
    face = astronaut_face()
    return Faces(face, face, "astronaut", ("astronaut.jpg", "astronaut.jpg"))


def smile_clip(faces: Faces, seconds_each: float = 1.5, fps: int = 30, face_px: int = FACE_PX):
    """Frames of a neutral face (left of centre) then the smiling face (right of centre),
    each with slight motion. Yields (H, W, 3) uint8."""
    n = round(seconds_each * fps)
    for k, (face, cx) in enumerate(((faces.neutral, NEUTRAL_CX), (faces.smiling, SMILE_CX))):
        for i in range(n):
            dx, dy = drift(k * n + i, fps)
            yield compose(face, cx + dx, FRAME_H / 2 + dy, face_px=face_px)


def segment_of(box, split_x: float = (NEUTRAL_CX + SMILE_CX) / 2) -> str:
    """Which segment of `smile_clip` a result's face box comes from."""
    return "neutral" if (box[0] + box[2]) / 2 < split_x else "smiling"
