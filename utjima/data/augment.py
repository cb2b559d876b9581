"""Augmentations for face crops, and still image -> 5-frame training clip.

What a face in a webcam meets: head rotation and position, zoom, lighting (brightness,
contrast, gamma), sensor noise, focus blur, a hand or cup in front of the mouth, mirrored
selfie views, grey or washed-out cameras, video compression, a dim room (a dark, noisy
face: low gain on the pixels, then strong sensor noise) and a player sitting far back (a
face only 16-40 px tall in the camera, upscaled to the crop). One random *base*
augmentation is drawn per clip and applied to every frame, then each frame gets a small
*temporal jitter* (shift <= 2 px as a slow drift plus shake, scale +-3 %, brightness
+-5 %, an occasional light blur), so a still becomes a plausible short clip of a face
holding an expression.

Speed is the point (training needs >= 3,000 clips/s of 5x64x64 on one core): all random
numbers for a clip come from two `rng.random` calls; the source is converted, JPEG-degraded
and blurred once; each frame then costs one `warpAffine` (base geometry and jitter composed
into one matrix) and one uint8 `LUT` (gamma, contrast, brightness, jitter gain); the clip
is converted to float once. Grey sources stay one channel until the end. Noise is a slice
of a fixed bank at a random offset. `benchmarks/bench_augment.py` measures it.

Everything is deterministic given the `rng` (a `numpy.random.Generator`); `strength`
scales every magnitude and probability; `strength=0` is the plain resized still repeated
(evaluation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Magnitudes at strength 1 (each is scaled by `strength`)."""

    rotate_deg: float = 15.0  # base in-plane rotation, uniform +-
    scale: float = 0.10  # base zoom, log-uniform in [1/(1+s), 1+s]
    translate: float = 0.06  # base shift, uniform +- fraction of the output side
    flip_p: float = 0.5  # horizontal flip (webcams mirror; faces are near-symmetric)
    brightness: float = 0.20  # additive, uniform +- (0..1 units)
    contrast: float = 0.30  # multiplicative around mid-grey, log-uniform in [1/(1+c), 1+c]
    gamma: float = 0.30  # log-uniform in [1/(1+g), 1+g]
    blur_p: float = 0.25  # chance of a defocus blur
    blur_sigma: float = 1.2  # its sigma, uniform in [0.4, this] (pixels of the output)
    noise_p: float = 0.30  # chance of sensor noise
    noise_sigma: float = 0.05  # its std, uniform in [0, this] (0..1 units)
    occlude_p: float = 0.20  # chance of an occluding patch (hand, cup, hair)
    occlude_size: tuple[float, float] = (0.15, 0.40)  # patch side, fraction of the output side
    grey_p: float = 0.10  # chance of turning an RGB face grey (grey cameras, night mode)
    jpeg_p: float = 0.20  # chance of JPEG re-compression of the source (video codecs)
    jpeg_quality: tuple[int, int] = (20, 70)  # its quality range
    dim_p: float = 0.15  # chance of a dim room: pixels scaled by a gain, then extra noise
    dim_gain: tuple[float, float] = (0.25, 0.6)  # that gain's range (0.3 = a room at 30 % light)
    dim_noise: float = 0.04  # that noise's std at most (0..1 units, after the gain)
    lowres_p: float = 0.15  # chance of a distant face: the source shrunk to a few px, then upscaled
    lowres_px: tuple[int, int] = (16, 40)  # the face's side in camera pixels
    # per-frame temporal jitter
    drift_px: float = 1.5  # slow head motion: a straight drift of up to +- this over the clip
    jitter_shift_px: float = 0.5  # plus independent per-frame shake, uniform +- (total <= 2 px)
    jitter_scale: float = 0.03  # uniform +- fraction
    jitter_brightness: float = 0.05  # multiplicative, uniform +- fraction
    jitter_blur_p: float = 0.30  # chance of a light 3x3 blur on a frame (focus hunting)


DEFAULT = AugmentConfig()
_RAMP = np.arange(256, dtype=np.float64) / 255  # LUT input levels, 0..1
_N_BASE = 27  # random numbers drawn per clip
_N_JITTER = 5  # random numbers drawn per frame

_noise_bank: np.ndarray | None = None


def _noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """n standard-normal floats: a slice of a fixed bank at a random offset (cheap, seeded)."""
    global _noise_bank
    if _noise_bank is None or len(_noise_bank) < 2 * n:
        size = max(1 << 20, 2 * n)
        _noise_bank = np.random.default_rng(20240601).standard_normal(size).astype(np.float32)
    off = int(rng.integers(0, len(_noise_bank) - n))
    return _noise_bank[off:off + n]


_RAMPS: dict[int, np.ndarray] = {}


def _time_ramp(n: int) -> np.ndarray:
    """(n,) evenly spaced -1..1 (cached: np.linspace costs more than a warp's setup)."""
    if n not in _RAMPS:
        _RAMPS[n] = np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1)
    return _RAMPS[n]


def _to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) -> working image: grey stays (H, W) (broadcast at the end)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return image
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W) or (H, W, 3) uint8 image, got shape {image.shape}")
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if channels == 1 else image


def _prefit(frames: list[np.ndarray], size: int) -> list[np.ndarray]:
    """Shrink sources much larger than the output with area averaging (no aliasing in the warp)."""
    h, w = frames[0].shape[:2]
    if max(h, w) <= 1.5 * size:
        return frames
    f = size / max(h, w)
    dsize = (max(1, round(w * f)), max(1, round(h * f)))
    return [cv2.resize(fr, dsize, interpolation=cv2.INTER_AREA) for fr in frames]


def _finish(out: np.ndarray, channels: int) -> np.ndarray:
    """float32 (T, S, S) or (T, S, S, 3) -> (T, C, S, S), contiguous."""
    if out.ndim == 3:  # (T, S, S) -> (T, C, S, S), grey repeated in C channels
        wide = np.empty((out.shape[0], channels) + out.shape[1:], np.float32)
        wide[:] = out[:, None]
        return wide
    # (T, S, S, 3) -> (T, 3, S, S)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def plain_clip(image: np.ndarray, n_frames: int, size: int, channels: int) -> np.ndarray:
    """The still resized to size x size, repeated: (T, C, S, S) float32 in 0..1 (no randomness)."""
    img = _to_channels(np.asarray(image, dtype=np.uint8), channels)
    h, w = img.shape[:2]
    if h != w:  # fit the longer side, mirror-pad the shorter: the framing `_augment` uses
        dy, dx = (max(h, w) - h) / 2, (max(h, w) - w) / 2
        img = cv2.copyMakeBorder(img, int(dy), math.ceil(dy), int(dx), math.ceil(dx),
                                 cv2.BORDER_REFLECT_101)
        h = w = max(h, w)
    interp = cv2.INTER_AREA if max(h, w) > size else cv2.INTER_LINEAR
    img = cv2.resize(img, (size, size), interpolation=interp) if (h, w) != (size, size) else img
    frame = img.astype(np.float32) * np.float32(1 / 255)
    return _finish(np.repeat(frame[None], n_frames, axis=0), channels)


def plain_frames(frames: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Real frames (T, H, W[, 3]) uint8 resized without augmentation: (T, C, S, S) float32."""
    return np.concatenate([plain_clip(f, 1, size, channels) for f in frames])


def augment_frames(
    frames: np.ndarray | list[np.ndarray],
    size: int,
    channels: int,
    rng: np.random.Generator,
    strength: float = 1.0,
    cfg: AugmentConfig = DEFAULT,
) -> np.ndarray:
    """Real frames (T, H, W[, 3]) uint8 -> (T, C, size, size) float32 in 0..1: one base
    augmentation for the whole clip plus per-frame jitter (the same as `make_clip`'s)."""
    if strength <= 0:
        return plain_frames(np.asarray(frames), size, channels)
    return _augment(list(frames), len(frames), size, channels, rng, float(strength), cfg)


def make_clip(
    image: np.ndarray,
    n_frames: int,
    size: int,
    channels: int,
    rng: np.random.Generator,
    strength: float = 1.0,
    cfg: AugmentConfig = DEFAULT,
) -> np.ndarray:
    """One still (H, W[, 3]) uint8 -> (n_frames, channels, size, size) float32 clip in 0..1."""
    if strength <= 0:
        return plain_clip(image, n_frames, size, channels)
    return _augment([image], n_frames, size, channels, rng, float(strength), cfg)


def _augment(
    src: list[np.ndarray], n: int, size: int, channels: int, rng: np.random.Generator,
    s: float, cfg: AugmentConfig,
) -> np.ndarray:
    """`src` holds one still (used for all n frames) or n frames."""
    u = rng.random(_N_BASE).tolist()  # per-clip draws in [0, 1), each used once below
    j = rng.random((n, _N_JITTER)) * 2 - 1  # per-frame draws in [-1, 1)

    src = [_to_channels(np.asarray(f, dtype=np.uint8), channels) for f in src]
    if src[0].ndim == 3 and u[0] < cfg.grey_p * s:
        src = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in src]
    src = _prefit(src, size)
    if u[22] < cfg.lowres_p * s:  # a distant face: few camera pixels (area-averaged), upscaled
        side = int(cfg.lowres_px[0] + u[23] * (cfg.lowres_px[1] - cfg.lowres_px[0]))
        h, w = src[0].shape[:2]
        if side < max(h, w):
            small = (max(1, round(w * side / max(h, w))), max(1, round(h * side / max(h, w))))
            src = [cv2.resize(cv2.resize(f, small, interpolation=cv2.INTER_AREA), (w, h),
                              interpolation=cv2.INTER_LINEAR) for f in src]
    if u[1] < cfg.jpeg_p * s:
        q = int(cfg.jpeg_quality[0] + u[2] * (cfg.jpeg_quality[1] - cfg.jpeg_quality[0]))
        src = [_jpeg(f, q) for f in src]
    h, w = src[0].shape[:2]
    zoom_base = size / max(h, w) * (1 + cfg.scale * s) ** (2 * u[4] - 1)
    if u[11] < cfg.blur_p * s:  # defocus: once on the source, sigma given in output pixels
        sigma = (0.4 + u[12] * (cfg.blur_sigma - 0.4)) / zoom_base
        src = [cv2.GaussianBlur(f, (0, 0), sigma) for f in src]

    # Geometry: dst = c_dst + shift + z * R(angle) * Flip * (p - c_src); one 2x3 matrix a frame.
    angle = math.radians((2 * u[3] - 1) * cfg.rotate_deg * s)
    tx = (2 * u[5] - 1) * cfg.translate * s * size
    ty = (2 * u[6] - 1) * cfg.translate * s * size
    flip = -1.0 if u[7] < cfg.flip_p * min(s, 1.0) else 1.0
    z = zoom_base * (1 + j[:, 0] * (cfg.jitter_scale * s))  # (T,)
    cos, sin = math.cos(angle), math.sin(angle)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    c_dst = (size - 1) / 2
    a00, a01, a10, a11 = z * (cos * flip), z * -sin, z * (sin * flip), z * cos  # (T,) each
    ramp = _time_ramp(n)  # (T,) clip time, -1..1
    dx = ramp * ((2 * u[20] - 1) * cfg.drift_px * s) + j[:, 1] * (cfg.jitter_shift_px * s)  # (T,)
    dy = ramp * ((2 * u[21] - 1) * cfg.drift_px * s) + j[:, 2] * (cfg.jitter_shift_px * s)
    b0 = (c_dst + tx) + dx - a00 * cx - a01 * cy
    b1 = (c_dst + ty) + dy - a10 * cx - a11 * cy
    m = np.stack([a00, a01, b0, a10, a11, b1], axis=1).reshape(n, 2, 3)  # (T, 2, 3)

    # Lighting: one uint8 LUT a frame with gamma, contrast, brightness and the jitter gain.
    gamma = (1 + cfg.gamma * s) ** (2 * u[8] - 1)
    contrast = (1 + cfg.contrast * s) ** (2 * u[9] - 1)
    bright = (2 * u[10] - 1) * cfg.brightness * s
    base_lut = ((_RAMP ** gamma - 0.5) * contrast + (0.5 + bright)) * 255  # (256,)
    dim = u[24] < cfg.dim_p * s
    if dim:  # a dim room: the whole range squeezed towards black (uint8 keeps the coarse levels)
        lo, hi = cfg.dim_gain
        base_lut = np.clip(base_lut, 0, 255) * (lo + u[25] * (hi - lo))
    gains = 1 + j[:, 3] * (cfg.jitter_brightness * s)  # (T,)
    luts = np.clip(np.outer(gains, base_lut) + 0.5, 0, 255).astype(np.uint8)  # (T, 256)
    # Temporal sharpness change: a light 3x3 blur on some frames.
    soft = j[:, 4] * 0.5 + 0.5 < cfg.jitter_blur_p * s  # (T,) bool

    frames = np.empty((n, size, size) + src[0].shape[2:], np.uint8)  # (T, S, S[, 3])
    one = len(src) == 1
    for t in range(n):
        g = cv2.warpAffine(src[0] if one else src[t], m[t], (size, size),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        if soft[t]:
            g = cv2.GaussianBlur(g, (3, 3), 0)
        cv2.LUT(g, luts[t], dst=frames[t])

    if u[13] < cfg.occlude_p * s:  # one flat patch, fixed in the frame
        lo, hi = cfg.occlude_size
        side = max(1, int(size * (lo + (hi - lo) * u[14])))
        y0 = int(u[15] * (size - side + 1))
        x0 = int(u[16] * (size - side + 1))
        frames[:, y0:y0 + side, x0:x0 + side] = int(u[17] * 255)

    if frames.ndim == 4:  # (T, S, S, 3) -> (T, 3, S, S)
        out = frames.transpose(0, 3, 1, 2).astype(np.float32, order="C")
    else:  # (T, S, S) -> (T, 1, S, S); grey is widened to 3 channels last (cheaper)
        out = frames[:, None].astype(np.float32)
    out *= np.float32(1 / 255)
    if u[18] < cfg.noise_p * s or dim:  # sensor noise (luminance only on grey sources)
        sigma_n = np.float32(cfg.noise_sigma * s * u[19] + (cfg.dim_noise * u[26] if dim else 0.0))
        out += _noise(out.size, rng).reshape(out.shape) * sigma_n
        np.clip(out, 0, 1, out=out)
    if out.shape[1] != channels:  # (T, 1, S, S) -> (T, 3, S, S)
        wide = np.empty((n, channels, size, size), np.float32)
        wide[:] = out
        out = wide
    return out


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
