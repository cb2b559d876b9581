"""Face detection (MediaPipe BlazeFace as ONNX) and the one face-crop policy every path shares.

Python (training-data canonicalisation, `utjima predict`, the server) and the browser
(web/detector/) must produce the same face crops, so this docstring is the spec the
JavaScript port follows line by line. Every constant is also written into
`model.json["crop"]` by `CropPolicy.to_json()`; the browser reads them from there.

Coordinates
    Continuous pixel coordinates: an image covers [0, W] x [0, H]; pixel (col i, row j) has
    its centre at (i + 0.5, j + 0.5). Boxes and keypoints are in these units. Images are
    RGB, uint8, row-major (H, W, 3); a grey image counts as R = G = B.

Sampler `_warp(img, m, out_w, out_h, step, fill)`: the only resampling there is
    m (2x3) maps output coordinates to source coordinates; step = source px per output px,
    given by the caller (formulas below, never derived from m).
    1. Box prefilter: f = max(1, floor(step + 1e-6)). R = the image reduced by f:
       R[j][i] = mean over a, b in 0..f-1 of P[clampY(j*f + b)][clampX(i*f + a)], R is
       ceil(W/f) x ceil(H/f) (a partial last block repeats the edge pixel). f = 1: R = P.
    2. For output pixel (u, v): (sx, sy) = m @ (u + 0.5, v + 0.5, 1);
       x = sx/f - 0.5, y = sy/f - 0.5; x0 = floor(x), y0 = floor(y); fx = x - x0, fy = y - y0;
       value = (1-fy) * ((1-fx) * R[y0][x0] + fx * R[y0][x0+1])
             +    fy  * ((1-fx) * R[y0+1][x0] + fx * R[y0+1][x0+1])
       with every index clamped to R (clamp to edge), each channel separately.
    3. If fill is set (detector inputs only) and (sx, sy) is outside [0, W) x [0, H): value = fill.
    4. Output = value / 255: floats in 0..1, never rounded to bytes.
    Grey (crop channels "gray") is taken after sampling: 0.299 R + 0.587 G + 0.114 B.

Detector input (`letterbox`; `FaceDetector.detect`)
    s = min(N/W, N/H) for network side N; pad_x = (N - W*s)/2; pad_y = (N - H*s)/2;
    m = [[1/s, 0, -pad_x/s], [0, 1/s, -pad_y/s]]; step = 1/s; fill = 0 (black bars).
    Network input = 2 * value - 1 (range -1..1), shape (1, 3, N, N), RGB planes.

Decoding (MediaPipe's TensorsToDetections: one class, anchors of fixed size 1)
    Anchors: for each (stride, n) in anchor_layers, in order: g = N / stride; for row y in
    0..g-1, for col x in 0..g-1: n copies of ((x + 0.5) / g, (y + 0.5) / g).
    Anchor k, raw regressors r[0..15], raw score c:
      score = 1 / (1 + exp(-clip(c, -80, 80))); a candidate needs score >= min_score, r2 > 0, r3 > 0
      cx = r0/N + ax, cy = r1/N + ay, w = r2/N, h = r3/N   (fractions of the network input)
      keypoint i (0..5) = (r[4+2i]/N + ax, r[5+2i]/N + ay)
    Box (cx - w/2, cy - h/2, cx + w/2, cy + h/2); box and keypoints times N are network
    pixels; image px = (m00 * x + m02, m11 * y + m12) with the input's m (axis-aligned).
    Weighted NMS (MediaPipe's WEIGHTED, IoU): sort candidates by score, descending (ties:
    lower anchor index first). Take the first; its group = every remaining candidate
    (itself included) with IoU > iou; output the score-weighted mean of the group's 16
    coordinates with the first one's score; remove the group; repeat until none is left.
    Face.box: that box scaled about its centre by box_scale, then moved down by
    box_shift_y * its new height (identity for "short"; makes "full" frame like "short").
    Keypoints, in order: right eye, left eye, nose tip, mouth centre, right ear tragion, left
    ear tragion; "right" is the subject's: keypoint 0 is the eye on the image's left of an
    upright face (the network sees only pixels, so the same holds in mirrored selfie frames).

Crop (`crop_face` with a CropPolicy)
    side = max(w, h) of Face.box; S = scale * side; (cx, cy) = box centre;
    theta = atan2(le_y - re_y, le_x - re_x) (re, le = keypoints 0, 1) if align == "eyes",
    else 0; c = cos(theta), s = sin(theta);
    centre = (cx - s * shift_y * side, cy + c * shift_y * side)  (along the face's "down");
    k = S / size; m = [[c*k, -s*k, centre_x - (c - s) * S/2], [s*k, c*k, centre_y - (s + c) * S/2]];
    step = scale * side / size (in that order); no fill (clamp to edge).

Photos (`detect(image, tiles="auto")`, Python only): the whole letterboxed image plus
    overlapping square tiles at sizes t, 2t, ... (`_tile_grid`); each tile keeps the
    detections whose centre lies in its share of the image and whose score >= the tiling
    min_score; all of them then go through the weighted NMS together.

Live path (`FaceTracker`; web/detector/faces.js `FaceTracker`): one face followed through a
    camera's frames, constants in model.json["streaming"]["live"] (`LiveConfig`) and
    streaming.detect_interval_ms. A search region is an axis-aligned square, m =
    [[R/N, 0, x0], [0, R/N, y0]] (`search_region`), or the whole frame (the letterbox's m),
    sampled at the short detector's N with fill 0, step = m00. Exposure (`exposure_gain`):
    L = mean of 0.299 R + 0.587 G + 0.114 B over the pixels whose source centre (sx, sy)
    lies in [0, W) x [0, H); gain = min(max_gain, max(1, exposure_target / L)) (max_gain
    when L is 0); network input = 2 * min(1, value * gain) - 1 (value * gain in float32).
    The candidates of one search's regions go through one weighted NMS, in region order
    (score ties: the earlier region, then the lower anchor index). At t_ms (increasing),
    with F the followed face (none at first):
    1. F and t_ms - last_detect < detect_interval_ms: crop from F ("carried"). Else
       last_detect = t_ms, and:
    2. F: search the square of side R = roi_scale * F.side centred on F's box centre, or
       the whole frame when R >= max(W, H) ("roi"); the largest face found becomes F.
    3. Nothing, and the whole frame not searched yet: the whole frame ("frame"); the
       largest face with score >= acquire_min_score becomes F.
    4. Nothing, F and t_ms - last_seen <= hold_ms: keep F ("held"), last_detect = -inf
       (search again on the next frame).
    5. Nothing, and t_ms - last_scan >= scan_interval_ms: last_scan = t_ms; the tiles
       (`scan_regions`): squares of side T = tile_frac * max(W, H) at origins spread evenly
       from 0 to W - T (k = ceil((W - T) / (T / 2)) + 1 of them; one centred when T >= W),
       the same along y, row by row ("scan"); the largest face with score >=
       acquire_min_score becomes F.
    6. Nothing: F = none ("gone" when there was one, else "none"); the window resets.
    Whenever a face becomes F, last_seen = t_ms.
    The crop from F is brightened the same way (`brighten_crop`): L = its mean luma (a grey
    crop's mean), gain as above, crop = min(1, value * gain) in float32. A dim crop costs
    the smile model accuracy the detector input's gain does not give back.

Training crops (`recrop`): a dataset crop is put at the centre of a grey canvas 3x its side
    (`embed`), the short detector finds the face there, and the crop is cut from the
    original crop (clamp to edge) with the same policy, so training and live crops match.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from utjima.utils import ort_session

MODELS_DIR = Path(__file__).parent / "models"
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")
GRAY_WEIGHTS = (0.299, 0.587, 0.114)
ALIGN_CHOICES = ("none", "eyes")
CHANNEL_CHOICES = ("gray", "rgb")
# box-filter factor f = floor(step + STEP_EPS): 2.0 computed as 1.9999999 is still 2
STEP_EPS = 1e-6
# recrop: a training crop goes at the centre of a grey canvas RECROP_PAD times its side. With
# grey BlazeFace finds 98-100 % of FER+/SMILEsmileD faces, with replicated edges 86-87 %
# (benchmarks/bench_crop_framing.py --fill edge).
RECROP_PAD = 3.0
RECROP_FILL = 128.0


@dataclass(frozen=True)
class DetectorSpec:
    """One BlazeFace ONNX file and every constant needed to decode it."""

    file: str                                 # ONNX file name in utjima/models (beside model.json)
    input_size: int                           # N: square network input side, px
    anchor_layers: tuple[tuple[int, int], ...]  # (stride px, anchors per cell), in output order
    min_score: float = 0.5                    # keep a candidate when sigmoid(score) >= this
    iou: float = 0.3                          # weighted-NMS grouping threshold (IoU >)
    raw_score_clip: float = 80.0              # raw logit clipped to +-this before the sigmoid
    anchor_offset: float = 0.5                # anchor centre within its cell, in cells
    # Face.box = the network's box scaled about its centre by box_scale, then moved down by
    # box_shift_y * its (scaled) height: makes "full" boxes frame faces like "short" ones, so
    # one CropPolicy fits both (measured on FER+ and SMILEsmileD crops both models find:
    # full/short side 1.03, full centre 0.06 sides higher; benchmarks/bench_crop_framing.py).
    box_scale: float = 1.0                    # Face.box side = network box side * this
    box_shift_y: float = 0.0                  # Face.box centre moved down by this * its height


DETECTORS = {
    # selfie/webcam (faces within ~2 m); the browser runs it on every frame
    "short": DetectorSpec("face_detector_short.onnx", 128, ((8, 2), (16, 6))),
    # full range (faces within ~5 m); photos, with tiling for small faces
    "full": DetectorSpec("face_detector_full.onnx", 192, ((4, 1),), box_scale=0.97,
                         box_shift_y=0.06),
}


@dataclass(frozen=True)
class TilingConfig:
    """`detect(image, tiles="auto")`: overlapping square tiles so small faces reach the
    size the network sees well."""

    min_face_px: float = 32.0     # smallest face (box side, image px) the tiles are sized for
    net_face_px: float = 24.0     # face size (network px) the full model finds reliably
                                  # (95 % of 24 px GENKI crops)
    overlap: float = 0.35         # tile overlap fraction; faces up to overlap*tile fit whole
    # (levels double in size, so overlap must be >= 2 * net_face_px / input_size = 0.25 for full)
    min_score: float = 0.6        # tile detections need more: ~75 looks at a photo, not 1


TILING = TilingConfig()


@dataclass(frozen=True)
class LiveConfig:
    """How the live path (a camera, a video) finds and follows one face (`FaceTracker`; the
    module doc's "Live path"). Measured on webcam-like renders of validation faces: the short
    model finds >= 99 % of faces of 23+ network px, in dim frames too, but a 640x480 frame
    letterboxed to 128 px shrinks a face sitting back (60-90 px) to 12-18 px, where it finds
    a quarter to a third of them (benchmarks/bench_robustness.py)."""

    roi_scale: float = 3.0            # follow: search a square this many face sides wide
                                      # around the followed face (its face: ~43 network px),
                                      # the scale `recrop` detects training faces at (median
                                      # face side / detector input: SMILEsmileD train 0.38,
                                      # FER+ train 0.29), so live boxes frame faces as
                                      # training crops do (2.5 drew tighter, jittering boxes)
    tile_frac: float = 0.5            # acquire: tiles of this fraction of the frame's longer
                                      # side, half-overlapping (640x480: 6 tiles of 320 px)
    scan_interval_ms: float = 500.0   # acquire: the tile scan runs at most this often
    acquire_min_score: float = 0.75   # acquire: a new face (whole frame or tiles) needs this
                                      # score; a followed one is re-found in its square at
                                      # the detector's min_score. Rendered empty rooms give
                                      # false faces up to 0.75; real faces found in the whole
                                      # frame or the tiles score >= 0.8 (5th percentile)
    hold_ms: float = 300.0            # a followed face missing from detections is kept this
                                      # long (re-detecting every frame), then reported gone
    exposure_target: float = 0.35     # detector input, and the face crop (`brighten_crop`):
                                      # gained so its mean luma reaches this
    max_gain: float = 4.0             # ... by at most this factor; never darkened

    def to_json(self) -> dict[str, float]:
        """model.json["streaming"]["live"]: the browser follows the same rules."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LiveConfig:
        """Read model.json["streaming"]["live"]; refuse missing, unknown or bad values."""
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(d, dict) or set(d) != set(names):
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"streaming.live must have exactly the keys {names}, got {got}")
        bad = [k for k in names if not isinstance(d[k], (int, float)) or not d[k] > 0]
        if bad or d["max_gain"] < 1 or d["acquire_min_score"] > 1:
            raise ValueError(f"streaming.live values must be positive numbers (max_gain >= 1, "
                             f"acquire_min_score <= 1), got { {k: d[k] for k in names} }")
        return cls(**{k: float(d[k]) for k in names})


LIVE = LiveConfig()


@dataclass(frozen=True)
class Face:
    """One detected face, in image pixels (continuous coordinates, see the module doc)."""

    box: tuple[float, float, float, float]          # x1, y1, x2, y2; may extend past the image
    score: float                                    # detector confidence, 0..1
    keypoints: tuple[tuple[float, float], ...]      # 6 (x, y), in KEYPOINTS order

    @property
    def side(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])

    @property
    def center(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2


@dataclass(frozen=True)
class CropPolicy:
    """How a detected face becomes the smile model's input; stored in model.json["crop"]."""

    size: int = 64                # output side, px (square)
    scale: float = 0.86           # crop side = scale * max(box w, box h) of the detector box
    shift_y: float = -0.02        # crop centre = box centre + shift_y * box side along the
                                  # face's down (+ = chin)
    align: str = "eyes"           # "none": upright crop; "eyes": rotate so the eyes are level
    detector: str = "short"       # DETECTORS role that finds faces for live (webcam) crops

    def __post_init__(self) -> None:
        if self.align not in ALIGN_CHOICES:
            raise ValueError(f"align must be one of {ALIGN_CHOICES}, got {self.align!r}")
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {tuple(DETECTORS)}, got {self.detector!r}")
        if self.size < 1 or self.scale <= 0:
            raise ValueError(f"need size >= 1 and scale > 0, got {self}")

    @classmethod
    def default(cls, size: int = 64) -> CropPolicy:
        """The measured default framing (benchmarks/bench_crop_framing.py) at output side `size`."""
        return cls(size=size)

    def detector_kwargs(self) -> dict[str, float]:
        """FaceDetector thresholds as model.json pins them (the same for both roles)."""
        d = DETECTORS[self.detector]
        return {"min_score": d.min_score, "iou": d.iou}

    def to_json(self) -> dict[str, Any]:
        """Everything the browser needs to detect and crop exactly as Python does."""
        return {
            **dataclasses.asdict(self),
            "box_side": "max(w, h)",
            "keypoints": list(KEYPOINTS),
            "sampler": {"interpolation": "bilinear", "pixel_center": 0.5, "border": "clamp",
                        "box_filter": "f = max(1, floor(step + step_eps))", "step_eps": STEP_EPS,
                        "value_scale": "1/255", "gray_weights": list(GRAY_WEIGHTS),
                        "gray": "after sampling"},
            "detector_input": {"fit": "letterbox, centred", "fill": 0.0, "range": [-1.0, 1.0],
                               "layout": "NCHW", "channels": "rgb"},
            "detectors": {role: {**dataclasses.asdict(d),
                                 "anchor_layers": [list(a) for a in d.anchor_layers],
                                 "inputs": {"input": [1, 3, d.input_size, d.input_size]},
                                 "outputs": {"regressors": [1, n_anchors(d), 16],
                                             "classificators": [1, n_anchors(d), 1]}}
                          for role, d in DETECTORS.items()},
            "tiling": dataclasses.asdict(TILING),
            "recrop": {"pad": RECROP_PAD, "fill": RECROP_FILL, "detector": "short"},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CropPolicy:
        """Read model.json["crop"]; refuse constants this code would not honour."""
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in d]
        if missing:
            raise ValueError(f"crop policy lacks {missing}; expected keys {names}")
        policy = cls(**{n: d[n] for n in names})
        expected = policy.to_json()
        wrong = [k for k in expected if k in d and d[k] != expected[k]]
        if wrong:
            raise ValueError(f"crop policy constants {wrong} differ from utjima.faces: "
                             f"{ {k: expected[k] for k in wrong} }")
        return policy


# ---------------------------------------------------------------------------------------
# the sampler


def _warp(img: np.ndarray, m: np.ndarray, out_w: int, out_h: int, step: float,
          fill: float | None = None) -> np.ndarray:
    """Affine resampling exactly as the module doc says. img (H, W, C) or (H, W), uint8 or
    float in 0..255; m (2, 3) output px -> source px; step = source px per output px (sets the
    box-filter factor f). Returns float32 (out_h, out_w, C) in 0..1."""
    if img.ndim == 2:
        img = img[:, :, None]
    h, w, c = img.shape
    f = max(1, math.floor(step + STEP_EPS))
    rw, rh = -(-w // f), -(-h // f)  # the f-reduced image R is ceil(W/f) x ceil(H/f)
    x0 = y0 = 0
    if f == 1:
        src = img
    else:
        # reduce only the blocks the bilinear taps can reach (an affine map's extremes are at
        # the corner pixels); clamping to this region is then the same as clamping to R
        cx = np.array([0.5, out_w - 0.5, 0.5, out_w - 0.5])
        cy = np.array([0.5, 0.5, out_h - 0.5, out_h - 0.5])
        xs = (m[0, 0] * cx + m[0, 1] * cy + m[0, 2]) / f - 0.5
        ys = (m[1, 0] * cx + m[1, 1] * cy + m[1, 2]) / f - 0.5
        x0, x1 = (min(max(math.floor(v), 0), rw - 1) for v in (xs.min(), xs.max() + 1))
        y0, y1 = (min(max(math.floor(v), 0), rh - 1) for v in (ys.min(), ys.max() + 1))
        src = _box_reduce(img, f, x0, x1, y0, y1)  # (y1-y0+1, x1-x0+1, C) float32
    sh, sw = src.shape[:2]
    flat = src.reshape(-1)  # (sh, sw, C) -> (sh*sw*C,), channels interleaved
    chan = np.arange(c)[:, None]
    out = np.empty((c, out_h * out_w), np.float32)
    ox = np.arange(out_w)[None, :] + 0.5  # (1, out_w) output pixel centres
    rows = max(1, 8192 // out_w)  # chunks keep temporaries small (glibc returns big ones to the OS)
    for v0 in range(0, out_h, rows):
        oy = np.arange(v0, min(v0 + rows, out_h))[:, None] + 0.5  # (r, 1)
        sx = (m[0, 0] * ox + m[0, 1] * oy + m[0, 2]).ravel()  # (r*out_w,) source, continuous
        sy = (m[1, 0] * ox + m[1, 1] * oy + m[1, 2]).ravel()
        x, y = sx / f - 0.5 - x0, sy / f - 0.5 - y0  # index space of (the region of) R
        xf, yf = np.floor(x), np.floor(y)
        fx, fy = (x - xf).astype(np.float32), (y - yf).astype(np.float32)
        xa, xb = np.clip(xf, 0, sw - 1).astype(np.intp), np.clip(xf + 1, 0, sw - 1).astype(np.intp)
        ya = np.clip(yf, 0, sh - 1).astype(np.intp) * sw
        yb = np.clip(yf + 1, 0, sh - 1).astype(np.intp) * sw
        tap = lambda i: np.take(flat, i * c + chan)  # noqa: E731  (C, n) in channel planes
        val = ((tap(ya + xa) * (1 - fx) + tap(ya + xb) * fx) * (1 - fy)
               + (tap(yb + xa) * (1 - fx) + tap(yb + xb) * fx) * fy)
        if fill is not None:
            val[:, (sx < 0) | (sx >= w) | (sy < 0) | (sy >= h)] = fill
        out[:, v0 * out_w:v0 * out_w + sx.size] = val
    out *= np.float32(1 / 255)
    return out.reshape(c, out_h, out_w).transpose(1, 2, 0)  # (C, H*W) -> (H, W, C)


def _box_reduce(img: np.ndarray, f: int, x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
    """R[j, i] = mean of the f x f pixels (j*f + b, i*f + a), indices clamped to the image, for
    blocks x0..x1, y0..y1 (inclusive). uint8 sums are exact in float32, so order is free."""
    h, w, c = img.shape
    cols = img[:, x0 * f:(x1 + 1) * f]  # view; narrower than (x1-x0+1)*f where the image ends
    rows = np.zeros((y1 - y0 + 1, cols.shape[1], c), np.float32)
    for b in range(f):  # strided sums are much faster in numpy than a reshape-sum over blocks
        rows += cols[np.minimum(np.arange(y0 * f + b, (y1 + 1) * f, f), h - 1)]
    short = (x1 - x0 + 1) * f - cols.shape[1]
    if short:  # clamp to edge: repeat the last column
        rows = np.concatenate([rows, np.repeat(rows[:, -1:], short, axis=1)], axis=1)
    out = rows[:, 0::f].copy()
    for a in range(1, f):
        out += rows[:, a::f]
    return out / (f * f)


def _to_gray(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H, W, 1), applied to sampled 0..1 values."""
    r, g, b = GRAY_WEIGHTS
    return (r * rgb[..., 0:1] + g * rgb[..., 1:2] + b * rgb[..., 2:3]).astype(np.float32)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"image must be (H, W), (H, W, 1) or (H, W, 3) RGB, "
                         f"got shape {image.shape}")
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def letterbox_region(w: int, h: int, n: int) -> np.ndarray:
    """The letterbox's map, network px -> image px: s = min(n/w, n/h), centred."""
    s = min(n / w, n / h)
    pad_x, pad_y = (n - w * s) / 2, (n - h * s) / 2
    return np.array([[1 / s, 0, -pad_x / s], [0, 1 / s, -pad_y / s]])


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit the whole image into a size x size square, aspect kept, centred, black bars.
    Returns (float32 (3, size, size) RGB in 0..1, m (2, 3) mapping network px -> image px)."""
    h, w = image.shape[:2]
    m = letterbox_region(w, h, size)
    out = _warp(_as_rgb(image), m, size, size, step=m[0, 0], fill=0.0)
    return out.transpose(2, 0, 1), m  # (size, size, 3) -> (3, size, size)


def crop_transform(face: Face, policy: CropPolicy) -> np.ndarray:
    """The (2, 3) affine from crop px to image px that `crop_face` samples with."""
    side = face.side
    S = policy.scale * side
    cx, cy = face.center
    theta = 0.0
    if policy.align == "eyes":
        (rx, ry), (lx, ly) = face.keypoints[0], face.keypoints[1]
        theta = math.atan2(ly - ry, lx - rx)
    c, s = math.cos(theta), math.sin(theta)
    cx, cy = cx - s * policy.shift_y * side, cy + c * policy.shift_y * side
    k = S / policy.size
    return np.array([[c * k, -s * k, cx - (c - s) * S / 2], [s * k, c * k, cy - (s + c) * S / 2]])


def crop_face(image: np.ndarray, face: Face, policy: CropPolicy,
              channels: str = "gray") -> np.ndarray:
    """The face as the smile model sees it: float32 (C, size, size) in 0..1, C = 1 or 3."""
    if channels not in CHANNEL_CHOICES:
        raise ValueError(f"channels must be one of {CHANNEL_CHOICES}, got {channels!r}")
    step = policy.scale * face.side / policy.size  # source px per crop px
    out = _warp(_as_rgb(image), crop_transform(face, policy), policy.size, policy.size, step)
    if channels == "gray":
        out = _to_gray(out)
    return out.transpose(2, 0, 1)  # (size, size, C) -> (C, size, size)


# ---------------------------------------------------------------------------------------
# the detector


def n_anchors(spec: DetectorSpec) -> int:
    return sum((spec.input_size // st) ** 2 * n for st, n in spec.anchor_layers)


def anchors(spec: DetectorSpec) -> np.ndarray:
    """(N_anchors, 2) anchor centres as fractions of the network input, in output order."""
    out = []
    for stride, n in spec.anchor_layers:
        g = spec.input_size // stride
        c = (np.arange(g) + spec.anchor_offset) / g
        # (g, g, 2) rows then cols -> (g*g, 2)
        xy = np.stack(np.meshgrid(c, c), axis=-1).reshape(-1, 2)
        out.append(np.repeat(xy, n, axis=0))
    return np.concatenate(out).astype(np.float32)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-12)


def weighted_nms(data: np.ndarray, scores: np.ndarray,
                 iou: float) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted NMS. data (K, 16): box x1 y1 x2 y2 then 6 keypoints (x, y);
    returns [(merged (16,), score)] best first."""
    order = np.argsort(-scores, kind="stable")
    out = []
    while order.size:
        group = _iou(data[order[0], :4], data[order, :4]) > iou
        group[0] = True  # the first always belongs to its own group
        g = order[group]
        wts = scores[g].astype(np.float64)
        out.append(((data[g] * wts[:, None]).sum(0) / wts.sum(), float(scores[order[0]])))
        order = order[~group]
    return out


class FaceDetector:
    """BlazeFace on onnxruntime's CPU provider: `detect(rgb uint8 (H, W, 3)) -> list[Face]`."""

    def __init__(self, model_path: str | Path | None = None, kind: str = "short",
                 min_score: float | None = None, iou: float | None = None, threads: int = 1):
        if kind not in DETECTORS:
            raise ValueError(f"kind must be one of {tuple(DETECTORS)}, got {kind!r}")
        spec = DETECTORS[kind]
        self.spec = dataclasses.replace(
            spec, min_score=spec.min_score if min_score is None else min_score,
            iou=spec.iou if iou is None else iou)
        self.kind = kind
        path = Path(model_path) if model_path is not None else MODELS_DIR / spec.file
        if not path.is_file():
            raise FileNotFoundError(f"no face detector at {path}; run tools/convert_blazeface.py")
        self.session = ort_session(path, threads)
        n = spec.input_size
        if self.session.get_inputs()[0].shape != [1, 3, n, n]:
            raise ValueError(f"{path} takes {self.session.get_inputs()[0].shape}, "
                             f"expected [1, 3, {n}, {n}] for kind={kind!r}")
        self.anchors = anchors(spec)

    def _candidates(self, net_input: np.ndarray, m: np.ndarray,
                    gain: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Run the network on (3, N, N) 0..1 RGB (times `gain`, capped at 1); decode,
        threshold and map through m. Returns data (K, 16) in image px and scores (K,)."""
        sp = self.spec
        n = sp.input_size
        if gain != 1.0:
            net_input = np.minimum(net_input * np.float32(gain), np.float32(1))
        reg, cls = self.session.run(["regressors", "classificators"],
                                    {"input": (net_input * 2 - 1)[None]})
        reg, cls = reg[0], cls[0, :, 0]  # (1, A, 16) -> (A, 16); (1, A, 1) -> (A,)
        score = 1 / (1 + np.exp(-np.clip(cls, -sp.raw_score_clip, sp.raw_score_clip)))
        keep = (score >= sp.min_score) & (reg[:, 2] > 0) & (reg[:, 3] > 0)
        reg, score, anc = reg[keep] / n, score[keep], self.anchors[keep]
        cx, cy = reg[:, 0] + anc[:, 0], reg[:, 1] + anc[:, 1]
        half_w, half_h = reg[:, 2] / 2, reg[:, 3] / 2
        boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
        kps = reg[:, 4:].reshape(-1, 6, 2) + anc[:, None, :]  # (K, 12) -> (K, 6, 2)
        xy = np.concatenate([boxes.reshape(-1, 2, 2), kps], axis=1) * n  # (K, 8, 2) in network px
        assert m[0, 1] == 0 and m[1, 0] == 0, "letterbox and tiles are axis-aligned"
        xy = xy * (m[0, 0], m[1, 1]) + (m[0, 2], m[1, 2])
        return xy.reshape(-1, 16), score

    def detect(self, image: np.ndarray, tiles: str | None = None) -> list[Face]:
        """Faces in an RGB uint8 (H, W, 3) image, best first; [] when there is none.
        tiles="auto" adds overlapping tiles (full-range photos with small faces)."""
        if tiles not in (None, "none", "auto"):
            raise ValueError(f"tiles must be None, 'none' or 'auto', got {tiles!r}")
        image = np.asarray(image)
        if image.dtype != np.uint8:
            raise ValueError(f"detect takes uint8 RGB (H, W, 3), got dtype {image.dtype}")
        image = _as_rgb(image)
        n = self.spec.input_size
        x, m = letterbox(image, n)
        d, s = self._candidates(x, m)
        data, scores = [d], [s]
        if tiles == "auto":
            for m_tile, core in _tile_grid(image.shape[1], image.shape[0], n, TILING):
                tile = _warp(image, m_tile, n, n, step=m_tile[0, 0], fill=0.0)  # step = t / n
                d, s = self._candidates(tile.transpose(2, 0, 1), m_tile)  # (N, N, 3) -> (3, N, N)
                cx, cy = (d[:, 0] + d[:, 2]) / 2, (d[:, 1] + d[:, 3]) / 2
                inside = ((cx >= core[0]) & (cx < core[2]) & (cy >= core[1]) & (cy < core[3])
                          & (s >= max(TILING.min_score, self.spec.min_score)))
                data.append(d[inside])
                scores.append(s[inside])
        merged = weighted_nms(np.concatenate(data), np.concatenate(scores), self.spec.iou)
        return [self._face(d, s) for d, s in merged]

    def detect_regions(self, image: np.ndarray, regions: list[np.ndarray],
                       live: LiveConfig | None = None) -> list[Face]:
        """Faces in the axis-aligned regions of an RGB uint8 (H, W, 3) image: each m (2, 3)
        maps network px -> image px (`search_region`), sampled at the network's side with
        black outside the image; with `live`, each region's input is exposure-normalised
        (`exposure_gain`). All candidates go through one weighted NMS, in region order."""
        n = self.spec.input_size
        data, scores = [], []
        for m in regions:
            x = _warp(image, m, n, n, step=m[0, 0], fill=0.0)  # (N, N, 3) 0..1
            gain = 1.0 if live is None else exposure_gain(x, m, image.shape[1],
                                                          image.shape[0], live)
            d, s = self._candidates(x.transpose(2, 0, 1), m, gain)  # (N, N, 3) -> (3, N, N)
            data.append(d)
            scores.append(s)
        merged = weighted_nms(np.concatenate(data), np.concatenate(scores), self.spec.iou)
        return [self._face(d, s) for d, s in merged]

    def _face(self, d: np.ndarray, score: float) -> Face:
        cx, cy = (d[0] + d[2]) / 2, (d[1] + d[3]) / 2
        hw, hh = (d[2] - d[0]) / 2 * self.spec.box_scale, (d[3] - d[1]) / 2 * self.spec.box_scale
        cy += self.spec.box_shift_y * 2 * hh
        return Face(box=(float(cx - hw), float(cy - hh), float(cx + hw), float(cy + hh)),
                    score=score,
                    keypoints=tuple((float(d[i]), float(d[i + 1])) for i in range(4, 16, 2)))


def merge_faces(*groups: list[Face], iou: float = 0.3) -> list[Face]:
    """Faces from several detectors on one image (e.g. short range for close-ups, full range
    with tiles for small faces) -> one list: weighted NMS over boxes and keypoints, best first."""
    faces = [f for g in groups for f in g]
    if not faces:
        return []
    data = np.array([[*f.box, *(v for kp in f.keypoints for v in kp)] for f in faces])  # (K, 16)
    scores = np.array([f.score for f in faces])
    return [Face(box=tuple(float(v) for v in d[:4]), score=sc,
                 keypoints=tuple((float(d[i]), float(d[i + 1])) for i in range(4, 16, 2)))
            for d, sc in weighted_nms(data, scores, iou)]


def _axis_tiles(length: float, t: float, overlap: float) -> tuple[np.ndarray, np.ndarray]:
    """Tile origins along one axis and the [lo, hi) share of each (by the midpoints of
    neighbouring tile centres; the outer shares run to +-inf)."""
    if t >= length:
        origins = np.array([(length - t) / 2])
    else:
        n = math.ceil((length - t) / (t * (1 - overlap))) + 1
        origins = np.linspace(0, length - t, n)
    centres = origins + t / 2
    cuts = np.concatenate([[-np.inf], (centres[1:] + centres[:-1]) / 2, [np.inf]])
    return origins, cuts


def _tile_grid(w: int, h: int, n: int, cfg: TilingConfig) -> list[tuple[np.ndarray, tuple]]:
    """[(m (2, 3) network px -> image px, core (x1, y1, x2, y2))] for tiles="auto".
    Tile side t_k = t_0 * 2^k with t_0 = n * min_face_px / net_face_px, while the whole-image
    pass alone would miss faces that fit whole in a tile (t_k * overlap < its smallest face)."""
    whole_min_face = cfg.net_face_px * max(w, h) / n
    t = n * cfg.min_face_px / cfg.net_face_px
    out = []
    while t * cfg.overlap < whole_min_face:
        xs, xcut = _axis_tiles(w, t, cfg.overlap)
        ys, ycut = _axis_tiles(h, t, cfg.overlap)
        for j, y0 in enumerate(ys):
            for i, x0 in enumerate(xs):
                m = np.array([[t / n, 0, x0], [0, t / n, y0]])
                out.append((m, (xcut[i], ycut[j], xcut[i + 1], ycut[j + 1])))
        t *= 2
    return out


# ---------------------------------------------------------------------------------------
# the live path: one face followed through a camera's frames


def search_region(x0: float, y0: float, side: float, n: int) -> np.ndarray:
    """(2, 3) network px -> image px for the square [x0, x0 + side) x [y0, y0 + side)
    seen at network side n (step = side / n)."""
    return np.array([[side / n, 0.0, x0], [0.0, side / n, y0]])


def roi_region(face: Face, w: int, h: int, n: int, live: LiveConfig) -> np.ndarray | None:
    """The square around a followed face (roi_scale of its side, centred on its box); None
    when that square would be as large as the frame (search the whole frame instead)."""
    side = live.roi_scale * face.side
    if side >= max(w, h):
        return None
    cx, cy = face.center
    return search_region(cx - side / 2, cy - side / 2, side, n)


def _tile_origins(length: int, t: float) -> list[float]:
    if t >= length:
        return [(length - t) / 2]
    k = math.ceil((length - t) / (t / 2)) + 1  # half-overlapping tiles, evenly spread
    return [i * (length - t) / (k - 1) for i in range(k)]


def scan_regions(w: int, h: int, n: int, live: LiveConfig) -> list[np.ndarray]:
    """The acquisition tiles: squares of side tile_frac * max(w, h), half-overlapping,
    spread evenly over the frame, row by row."""
    t = live.tile_frac * max(w, h)
    return [search_region(x0, y0, t, n) for y0 in _tile_origins(h, t)
            for x0 in _tile_origins(w, t)]


def exposure_gain(x: np.ndarray, m: np.ndarray, w: int, h: int, live: LiveConfig) -> float:
    """The detector input's gain: x (N, N, 3) sampled 0..1 through the axis-aligned m from a
    w x h image; the mean luma L of the pixels whose source centre lies inside the image;
    min(max_gain, max(1, exposure_target / L)) (max_gain when L is 0 or nothing is inside)."""
    n_y, n_x = x.shape[:2]
    sx = m[0, 0] * (np.arange(n_x) + 0.5) + m[0, 2]
    sy = m[1, 1] * (np.arange(n_y) + 0.5) + m[1, 2]
    ins_x, ins_y = (sx >= 0) & (sx < w), (sy >= 0) & (sy < h)
    r, g, b = GRAY_WEIGHTS
    inside = x[ins_y][:, ins_x].astype(np.float64)  # (n_in_y, n_in_x, 3)
    luma = float((r * inside[..., 0] + g * inside[..., 1] + b * inside[..., 2]).mean()) \
        if inside.size else 0.0
    return _gain(luma, live)


def _gain(luma: float, live: LiveConfig) -> float:
    if luma <= 0:
        return live.max_gain
    return min(live.max_gain, max(1.0, live.exposure_target / luma))


def brighten_crop(crop: np.ndarray, live: LiveConfig) -> np.ndarray:
    """The live path's crop exposure: a crop (C, S, S) float32 0..1 (C = 1: grey, 3: RGB)
    times gain = min(max_gain, max(1, exposure_target / L)), capped at 1, where L is its
    mean luma; unchanged when the gain is 1 (a lit face)."""
    if crop.shape[0] == 1:
        luma = float(crop.astype(np.float64).mean())
    else:
        r, g, b = GRAY_WEIGHTS
        c = crop.astype(np.float64)
        luma = float((r * c[0] + g * c[1] + b * c[2]).mean())
    gain = _gain(luma, live)
    return crop if gain == 1.0 else np.minimum(crop * np.float32(gain), np.float32(1))


class FaceTracker:
    """One camera's face, found and followed (the module doc's "Live path"): `update(t_ms,
    rgb) -> Face | None`. `search` says what the last update did: "carried" (no detection
    due), "roi", "frame", "scan" (the search that found the face), "held" (missed, kept),
    "gone" or "none" (no face)."""

    def __init__(self, detector: FaceDetector, live: LiveConfig = LIVE,
                 detect_interval_ms: float = 0.0):
        self.detector, self.live = detector, live
        self.detect_interval_ms = detect_interval_ms
        self.reset()

    def reset(self) -> None:
        """Forget the face and every time (a new round, or a new video)."""
        self.face: Face | None = None
        self.last_detect_ms = self.last_seen_ms = self.last_scan_ms = -math.inf
        self.search = "none"

    def _largest(self, rgb: np.ndarray, regions: list[np.ndarray],
                 min_score: float = 0.0) -> Face | None:
        found = [f for f in self.detector.detect_regions(rgb, regions, self.live)
                 if f.score >= min_score]
        return max(found, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]),
                   default=None)

    def update(self, t_ms: float, rgb: np.ndarray) -> Face | None:
        """The face to crop from in this frame (RGB uint8 (H, W, 3)), or None."""
        if self.face is not None and t_ms - self.last_detect_ms < self.detect_interval_ms:
            self.search = "carried"
            return self.face
        self.last_detect_ms = t_ms
        h, w = rgb.shape[:2]
        n = self.detector.spec.input_size
        searched_frame = False
        found = None
        if self.face is not None:
            roi = roi_region(self.face, w, h, n, self.live)
            searched_frame = roi is None
            found = self._largest(rgb, [letterbox_region(w, h, n) if roi is None else roi])
            self.search = "roi"
        if found is None and not searched_frame:
            found = self._largest(rgb, [letterbox_region(w, h, n)], self.live.acquire_min_score)
            self.search = "frame"
        holding = self.face is not None and t_ms - self.last_seen_ms <= self.live.hold_ms
        if found is None and holding:
            self.search = "held"
            self.last_detect_ms = -math.inf  # look again on the next frame
            return self.face
        if found is None and t_ms - self.last_scan_ms >= self.live.scan_interval_ms:
            self.last_scan_ms = t_ms
            found = self._largest(rgb, scan_regions(w, h, n, self.live),
                                  self.live.acquire_min_score)
            self.search = "scan"
        if found is None:
            self.search = "gone" if self.face is not None else "none"
            self.face = None
            return None
        self.face, self.last_seen_ms = found, t_ms
        return found


# ---------------------------------------------------------------------------------------
# training crops


@functools.lru_cache(maxsize=4)
def default_detector(kind: str = "short") -> FaceDetector:
    return FaceDetector(kind=kind)


def _context_canvas(image: np.ndarray, pad: float, fill: float | None, max_side: float | None
                    ) -> tuple[np.ndarray, float, float, float]:
    """`image` at the centre of a square uint8 RGB canvas `pad` times its longer side, scaled
    so that side is at most `max_side` canvas px. Returns (canvas, s, ox, oy): canvas px =
    image px * s + (ox, oy)."""
    h, w = image.shape[:2]
    s = 1.0 if max_side is None else min(1.0, max_side / max(h, w))
    side = round(pad * max(h, w) * s)
    ox, oy = (side - w * s) / 2, (side - h * s) / 2
    m = np.array([[1 / s, 0, -ox / s], [0, 1 / s, -oy / s]])
    canvas = _warp(_as_rgb(image), m, side, side, step=1 / s, fill=fill) * 255
    return np.round(canvas).astype(np.uint8), s, ox, oy


def embed(crop: np.ndarray, pad: float = 3.0,
          fill: float | None = None) -> tuple[np.ndarray, float]:
    """A square dataset crop at the centre of a canvas `pad` times its side, as uint8 RGB:
    edges replicated (fill=None) or a flat 0..255 grey. Returns (canvas, offset): crop px =
    canvas px - offset. BlazeFace needs context around a tight crop to find the face."""
    h, w = crop.shape[:2]
    if h != w:
        raise ValueError(f"dataset crops are square, got {w}x{h}")
    canvas, _, off, _ = _context_canvas(crop, pad, fill, None)
    return canvas, off


def detect_in_context(detector: FaceDetector, image: np.ndarray, pad: float = RECROP_PAD,
                      fill: float | None = RECROP_FILL,
                      max_side: float | None = 256.0) -> list[Face]:
    """Faces in a tight crop (a face that fills the picture, as in dataset crops or profile
    photos), which BlazeFace misses without context: detect on the image centred in a grey
    canvas (see `_context_canvas`), faces returned in image px."""
    canvas, s, ox, oy = _context_canvas(image, pad, fill, max_side)

    def back(x: float, y: float) -> tuple[float, float]:
        return (x - ox) / s, (y - oy) / s

    return [Face(box=(*back(*f.box[:2]), *back(*f.box[2:])), score=f.score,
                 keypoints=tuple(back(*kp) for kp in f.keypoints)) for f in detector.detect(canvas)]


def recrop(crop: np.ndarray, policy: CropPolicy, detector: FaceDetector | None = None,
           channels: str = "gray") -> np.ndarray | None:
    """Re-frame a training crop with `policy` (so training data matches live crops): embed it,
    detect, crop the best face from the original with clamp-to-edge; None when no face."""
    found = detect_in_context(detector or default_detector(policy.detector), crop, max_side=None)
    return crop_face(crop, found[0], policy, channels) if found else None
