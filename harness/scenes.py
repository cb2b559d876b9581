"""Webcam-like scenes: a face crop sitting as a person in a room, seen through a camera with
the faults of real webcams (a dim room, a person sitting back, blur and compression, a
tilted head, sensor noise).

A scene is drawn from a seed: a procedural room (a lit wall with low-frequency texture,
shelves of books, a door or a picture, sometimes a bright window, a desk edge), a person
(hair, neck and shoulders behind the face) and the face crop itself, tinted to skin, its
square edge feathered away, drifting and swaying slightly over time. The camera then
applies, in order: brightness (the room's light), optical blur, sensor noise (read noise
plus signal-dependent shot noise), 8-bit quantisation and, optionally, JPEG.

    cam = CAMERAS["dark+small"]
    clip = Clip(face, cam, seed=7)            # face: a square uint8 crop, grey or RGB
    for i in range(30):
        rgb, truth = clip.frame(i, fps=30)    # (480, 640, 3) uint8, the face's true box

Used by benchmarks/bench_robustness.py and by the dark, small fake camera of
tests/test_browser_detector.py (written with harness.fakecam.write_y4m). Frames are RGB
uint8 (H, W, 3), 640x480 unless asked otherwise.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

FRAME_W, FRAME_H = 640, 480
# "A person can still see the face" (see `Clip.visibility`): the face is big enough to show
# its features (a mouth of a third of the face is then ~10 px), its features span several of
# the camera's 8-bit levels, and they stand out of the noise at the scale of a feature (an
# eye: FEATURE_CELL of the face side; a viewer averages over it, not over single pixels).
MIN_VISIBLE_FACE_PX = 32.0
MIN_VISIBLE_SPREAD = 3.0  # std of the face's luma, 8-bit levels, before noise
MIN_VISIBLE_CNR = 3.0  # that spread / the noise's sigma averaged over one feature cell
FEATURE_CELL = 1 / 8
SKIN_TINT = (1.06, 0.96, 0.86)  # grey crops are drawn as skin: per-channel gain on the grey
FEATHER = 0.1  # the crop's edge (fraction of its side) fades into the head behind it
NOISE_BANK = 4  # pre-drawn unit-noise frames shared by every clip (drawing them is slow); each
NOISE_SHIFT = 64  # frame takes one at a random offset of up to this many px


@dataclass(frozen=True)
class Camera:
    """One variant of the webcam: ranges are sampled once per clip (uniform)."""

    name: str
    face_px: tuple[float, float] = (150.0, 230.0)  # face crop side in the frame, px
    brightness: tuple[float, float] = (0.9, 1.1)  # the room's light: gain on the scene
    read_noise: float = 1.5  # sensor read noise, sigma in 0..255 units
    shot_noise: float = 0.05  # shot noise: variance grows by this * value (0..255)
    blur_px: tuple[float, float] = (0.0, 0.0)  # optical blur, Gaussian sigma, px
    jpeg_quality: tuple[int, int] | None = None  # JPEG quality range; None: no compression
    tilt_deg: tuple[float, float] = (0.0, 4.0)  # |head roll|, degrees (sign random)
    person: bool = True  # False: the empty room (no face: anything found is a false face)
    note: str = ""  # what it stands for


CLEAN_FACE_PX = (150.0, 230.0)  # a player at arm's length from a laptop camera
SMALL = 0.4  # "sitting back": the clean face scaled to 40 %
DARK = (0.25, 0.35)  # "a dim room": 30 % of the clean brightness, +-5 points
DARK_NOISE = {"read_noise": 2.5, "shot_noise": 0.25}  # a webcam's gain raised in the dark

CAMERAS: dict[str, Camera] = {c.name: c for c in (
    Camera("clean", note="arm's length, lit room"),
    Camera("dark", brightness=DARK, **DARK_NOISE, note="30 % brightness + sensor noise"),
    Camera("small", face_px=(CLEAN_FACE_PX[0] * SMALL, CLEAN_FACE_PX[1] * SMALL),
           note="face at 40 % (sitting back)"),
    Camera("dark+small", face_px=(CLEAN_FACE_PX[0] * SMALL, CLEAN_FACE_PX[1] * SMALL),
           brightness=DARK, **DARK_NOISE, note="both"),
    Camera("blur+jpeg", blur_px=(1.5, 2.5), jpeg_quality=(20, 35),
           note="defocus + heavy compression"),
    Camera("tilt", tilt_deg=(15.0, 35.0), note="head rolled 15-35 degrees"),
    Camera("noise", read_noise=8.0, shot_noise=1.0, note="noisy sensor, lit room"),
    # beyond what a person can see (reported, not held to the target): the line's other side
    Camera("tiny", face_px=(14.0, 24.0), note="face 14-24 px"),
    Camera("very dark", brightness=(0.04, 0.07), **DARK_NOISE, note="5 % brightness + noise"),
    # nobody there: a face reported here is a false face
    Camera("empty", person=False, note="the room, nobody in it"),
    Camera("empty dark", person=False, brightness=DARK, **DARK_NOISE, note="the dim room, empty"),
)}
TARGET_CAMERAS = ("clean", "dark", "small", "dark+small", "blur+jpeg", "tilt", "noise")


# --- the room ------------------------------------------------------------------------------

WALLS = np.array([[196, 184, 164], [170, 176, 182], [150, 170, 150], [205, 200, 190],
                  [120, 130, 150], [180, 150, 130]], np.float32)


def _smooth_noise(rng, h: int, w: int, cell: float, channels: int = 1) -> np.ndarray:
    """Low-frequency noise in -1..1: a coarse random grid, upsampled bicubically."""
    gh, gw = int(h / cell) + 3, int(w / cell) + 3
    z = rng.uniform(-1, 1, (gh, gw, channels)).astype(np.float32)
    big = cv2.resize(z, (int(gw * cell), int(gh * cell)), interpolation=cv2.INTER_CUBIC)
    big = big.reshape(big.shape[0], big.shape[1], channels)
    c0 = int(cell)
    return big[c0:c0 + h, c0:c0 + w]


def room(rng: np.random.Generator, w: int = FRAME_W, h: int = FRAME_H) -> np.ndarray:
    """A procedural room behind the player: (h, w, 3) float32, 0..255."""
    wall = WALLS[rng.integers(len(WALLS))] * rng.uniform(0.8, 1.1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # light from one side and from above, plus blotchy texture
    lx = rng.uniform(-0.35, 0.35)
    shade = 1 + lx * (xx / w - 0.5) * 2 - 0.25 * (yy / h)
    img = wall[None, None, :] * shade[..., None]
    img += 14 * _smooth_noise(rng, h, w, cell=rng.uniform(40, 90))
    for _ in range(rng.integers(1, 4)):  # furniture: shelves of books, doors, pictures
        bw, bh = rng.uniform(0.12, 0.35) * w, rng.uniform(0.2, 0.7) * h
        x0, y0 = rng.uniform(-0.1, 0.95) * w, rng.uniform(-0.1, 0.6) * h
        x1, y1 = int(min(w, x0 + bw)), int(min(h, y0 + bh))
        x0, y0 = int(max(0, x0)), int(max(0, y0))
        if x1 - x0 < 8 or y1 - y0 < 8:
            continue
        kind = rng.integers(3)
        base = rng.uniform(40, 200, 3).astype(np.float32)
        if kind == 0:  # a bookshelf: vertical stripes of random colours on shelf rows
            img[y0:y1, x0:x1] = base * 0.6
            row_h = max(12, int(rng.uniform(35, 70)))
            for ry in range(y0 + 4, y1 - 6, row_h):
                x = x0 + 3
                while x < x1 - 4:
                    bwid = int(rng.integers(4, 13))
                    img[ry:min(y1, ry + row_h - 6), x:min(x1, x + bwid)] = rng.uniform(30, 230, 3)
                    x += bwid + int(rng.integers(0, 2))
        elif kind == 1:  # a door or a cupboard: a flat panel with a darker frame
            img[y0:y1, x0:x1] = base
            cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), (base * 0.6).tolist(), 4)
        else:  # a picture: a frame around a blurry image
            img[y0:y1, x0:x1] = base * 0.5
            inner = 60 + 120 * (_smooth_noise(rng, y1 - y0, x1 - x0, 12.0, 3) * 0.5 + 0.5)
            img[y0 + 5:y1 - 5, x0 + 5:x1 - 5] = inner[5:y1 - y0 - 5, 5:x1 - x0 - 5]
    if rng.random() < 0.3:  # a bright window, the hard case for a dim room's exposure
        ww, wh = rng.uniform(0.15, 0.3) * w, rng.uniform(0.25, 0.45) * h
        x0 = int(rng.choice([rng.uniform(0, 0.15), rng.uniform(0.65, 0.8)]) * w)
        y0 = int(rng.uniform(0.05, 0.25) * h)
        img[y0:y0 + int(wh), x0:x0 + int(ww)] = rng.uniform(225, 250)
    desk = int(rng.uniform(0.82, 0.95) * h)  # a desk edge at the bottom
    img[desk:] = rng.uniform(50, 160, 3) * (1 - 0.3 * (yy[desk:, :, None] - desk) / h)
    img = cv2.GaussianBlur(img, (0, 0), 1.0)  # the background is out of focus
    return np.clip(img, 0, 255).astype(np.float32)


@functools.lru_cache(maxsize=2)
def _noise_bank(h: int, w: int) -> np.ndarray:
    """(NOISE_BANK, h + NOISE_SHIFT, w + NOISE_SHIFT, 3) float32 unit Gaussian noise, seeded."""
    rng = np.random.default_rng(12345)
    return rng.standard_normal((NOISE_BANK, h + NOISE_SHIFT, w + NOISE_SHIFT, 3),
                               dtype=np.float32)


# --- the person ----------------------------------------------------------------------------

def _face_layer(face: np.ndarray, side: float) -> tuple[np.ndarray, np.ndarray]:
    """The crop as skin-tinted RGB float32 at its own resolution, and its alpha in 0..1 (a
    feathered ellipse: the crop's square corners fade into the head drawn behind it)."""
    f = np.asarray(face, np.float32)
    if f.ndim == 2 or f.shape[2] == 1:
        g = f.reshape(f.shape[0], f.shape[1], 1)
        rgb = np.clip(g * np.array(SKIN_TINT, np.float32), 0, 255)
    else:
        rgb = f[:, :, :3]
    n = rgb.shape[0]
    # an ellipse a little wider than the square's inscribed circle is the face's outline
    c = (np.arange(n) + 0.5) / n * 2 - 1  # -1..1 across the crop
    r = np.sqrt((c[None, :] / 1.08) ** 2 + (c[:, None] / 1.15) ** 2)
    alpha = np.clip((1 - r) / (2 * FEATHER), 0, 1).astype(np.float32)
    return rgb, alpha


@dataclass
class Clip:
    """One player in one room through one camera; `frame(i, fps)` draws frame i."""

    face: np.ndarray | list  # a square crop, uint8 grey (H, W) or RGB (H, W, 3), or a list of
                             # crops (a recorded sequence: frame i shows face[min(i, n - 1)])
    camera: Camera
    seed: int
    size: tuple[int, int] = (FRAME_W, FRAME_H)
    params: dict = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        cam, (w, h) = self.camera, self.size
        u = lambda lo_hi: float(rng.uniform(*lo_hi))  # noqa: E731
        side = u(cam.face_px) * w / FRAME_W
        tilt = u(cam.tilt_deg) * rng.choice([-1.0, 1.0])
        quality = None if cam.jpeg_quality is None else int(rng.integers(cam.jpeg_quality[0],
                                                                          cam.jpeg_quality[1] + 1))
        margin = 1.3 * side
        self.params = {
            "side": side, "tilt_deg": tilt, "brightness": u(cam.brightness),
            "blur_px": u(cam.blur_px), "jpeg_quality": quality,
            "cx": float(rng.uniform(min(margin, w / 2), max(w - margin, w / 2))),
            "cy": float(rng.uniform(min(0.9 * side, h / 2), max(h - 1.5 * side, h / 2))),
            "drift_px": u((0.04, 0.1)) * side + 2.0, "drift_hz": u((0.3, 0.8)),
            "phase": u((0, 2 * math.pi)), "sway_deg": u((1.0, 4.0)),
            "hair": rng.uniform(15, 90) * np.array([1.0, 0.85, 0.7]) * u((0.7, 1.2)),
            "shirt": rng.uniform(20, 220, 3),
        }
        self._room = room(rng, w, h)
        seq = self.face if isinstance(self.face, list) else [self.face]
        self._layers = [_face_layer(f, side) for f in seq]
        rgb0 = self._layers[0][0]
        n = rgb0.shape[0]
        self._skin = rgb0[n // 3:2 * n // 3, n // 4:3 * n // 4].mean(axis=(0, 1))
        self._rng = np.random.default_rng(self.seed + 1)

    def pose(self, i: int, fps: float) -> tuple[float, float, float]:
        """(cx, cy, roll in degrees) of the face at frame i: a slow Lissajous drift and sway."""
        p, t = self.params, i / fps
        a, f, ph = p["drift_px"], p["drift_hz"], p["phase"]
        cx = p["cx"] + a * math.sin(2 * math.pi * f * t + ph)
        cy = p["cy"] + 0.6 * a * math.sin(2 * math.pi * f * 1.3 * t + ph + 1.0)
        roll = p["tilt_deg"] + p["sway_deg"] * math.sin(2 * math.pi * f * 0.7 * t + ph)
        return cx, cy, roll

    def scene(self, i: int, fps: float) -> tuple[np.ndarray, tuple | None]:
        """The room and the person at frame i before the camera: (float32 (h, w, 3) 0..255,
        the face's true box x1, y1, x2, y2: the crop's square, axis-aligned about its
        centre; None in an empty room)."""
        p = self.params
        cx, cy, roll = self.pose(i, fps)
        side = p["side"]
        img = self._room.copy()
        if not self.camera.person:
            return img, None
        # shoulders and neck, then hair: the head outline a face crop lacks
        sway = math.radians(roll) * 0.25
        sx, sy = cx + math.sin(sway) * side, cy + 1.35 * side
        cv2.ellipse(img, (int(sx), int(sy)), (int(1.25 * side), int(0.75 * side)),
                    math.degrees(sway), 180, 360, p["shirt"].tolist(), -1, cv2.LINE_AA)
        cv2.rectangle(img, (int(cx - 0.22 * side), int(cy + 0.3 * side)),
                      (int(cx + 0.22 * side), int(cy + 0.75 * side)),
                      (self._skin * 0.85).tolist(), -1)
        up = math.radians(roll)  # the head's "up", rotated with the face
        for dy, axes, colour in ((0.18, (0.6, 0.62), p["hair"]),  # hair, above and behind
                                 (0.0, (0.52, 0.6), self._skin)):  # the head's outline
            hx, hy = cx - dy * side * math.sin(up), cy - dy * side * math.cos(up)
            cv2.ellipse(img, (int(hx), int(hy)), (int(axes[0] * side), int(axes[1] * side)),
                        -roll, 0, 360, colour.tolist(), -1, cv2.LINE_AA)
        # the face: the crop rotated by roll (counter-clockwise on screen), scaled to side
        rgb_face, alpha = self._layers[min(i, len(self._layers) - 1)]
        n = rgb_face.shape[0]
        m = cv2.getRotationMatrix2D((n / 2, n / 2), roll, side / n)
        m[:, 2] += (cx - n / 2, cy - n / 2)
        r = int(side * 0.75) + 2  # draw into the face's neighbourhood only
        x0, y0 = max(0, int(cx) - r), max(0, int(cy) - r)
        x1, y1 = min(img.shape[1], int(cx) + r), min(img.shape[0], int(cy) + r)
        if x1 > x0 and y1 > y0:
            m[:, 2] -= (x0, y0)
            size = (x1 - x0, y1 - y0)
            interp = cv2.INTER_AREA if side < n else cv2.INTER_CUBIC
            rgb = cv2.warpAffine(rgb_face, m, size, flags=interp, borderValue=(0, 0, 0))
            a = cv2.warpAffine(alpha, m, size, flags=cv2.INTER_LINEAR, borderValue=0)
            roi = img[y0:y1, x0:x1]
            roi += a[..., None] * (rgb - roi)
        half = side / 2
        return img, (cx - half, cy - half, cx + half, cy + half)

    def camera_out(self, scene: np.ndarray) -> np.ndarray:
        """The camera's faults applied to a scene: uint8 RGB."""
        p, cam = self.params, self.camera
        img = scene * np.float32(p["brightness"])
        if p["blur_px"] > 0:
            img = cv2.GaussianBlur(img, (0, 0), p["blur_px"])
        h, w = img.shape[:2]
        k, dy, dx = (int(v) for v in self._rng.integers(0, (NOISE_BANK, NOISE_SHIFT, NOISE_SHIFT)))
        unit = _noise_bank(h, w)[k, dy:dy + h, dx:dx + w]
        sigma = cv2.sqrt(img * np.float32(cam.shot_noise) + np.float32(cam.read_noise ** 2))
        img += sigma * unit
        img += 0.5  # round, then saturate: the camera's 8 bits
        out = np.clip(img, 0, 255, out=img).astype(np.uint8)
        if p["jpeg_quality"] is not None:
            ok, buf = cv2.imencode(".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY,
                                                            p["jpeg_quality"]])
            assert ok, "JPEG encoding failed"
            out = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])
        return out

    def frame(self, i: int, fps: float = 30.0) -> tuple[np.ndarray, tuple | None]:
        """Frame i as the camera delivers it, (h, w, 3) uint8 RGB, and the face's true box
        (None in an empty room)."""
        scene, box = self.scene(i, fps)
        return self.camera_out(scene), box

    def visibility(self, fps: float = 30.0) -> dict:
        """Can a person still see the face (frame 0)? See MIN_VISIBLE_*: the face's side in
        camera px; the spread (std) of its luma after the camera's brightness and blur, before
        noise, in 8-bit levels; and that spread over the sensor noise's sigma averaged over a
        feature cell (FEATURE_CELL of the side, squared). Measured on the central half of the
        face box: skin, eyes, mouth, not the background."""
        p, cam = self.params, self.camera
        scene, box = self.scene(0, fps)
        if box is None:
            return {"side_px": 0.0, "spread": 0.0, "cnr": 0.0, "mean_luma": 0.0,
                    "visible": False}
        x1, y1, x2, y2 = box
        img = scene * np.float32(p["brightness"])
        if p["blur_px"] > 0:
            img = cv2.GaussianBlur(img, (0, 0), p["blur_px"])
        cx, cy, q = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 4
        roi = img[max(0, int(cy - q)):int(cy + q) + 1, max(0, int(cx - q)):int(cx + q) + 1]
        luma = roi @ np.array([0.299, 0.587, 0.114], np.float32)
        side = p["side"]
        sigma = float(np.sqrt(cam.read_noise ** 2 + cam.shot_noise * luma).mean())
        cell_px = max(1.0, FEATURE_CELL * side)
        spread = float(luma.std())
        cnr = spread / max(sigma / cell_px, 1e-6)
        return {"side_px": side, "spread": spread, "cnr": cnr, "mean_luma": float(luma.mean()),
                "visible": bool(side >= MIN_VISIBLE_FACE_PX and spread >= MIN_VISIBLE_SPREAD
                                and cnr >= MIN_VISIBLE_CNR)}


def fake_camera_clip(neutral: np.ndarray, smiling: np.ndarray, camera: Camera,
                     seconds_each: float = 2.0, fps: int = 30, face_px: float = 88.0,
                     centres: tuple[float, float] = (300.0, 340.0), seed: int = 0):
    """A fake camera's frames, (480, 640, 3) uint8: the neutral face, then the smiling one,
    as one player in one room through `camera` (e.g. CAMERAS["dark+small"]), `face_px`
    wide. The faces sit at x = centres (neutral, smiling) so a result's box tells the
    segments apart, close enough that a followed face stays in its search square when the
    file loops or switches (a player does not jump)."""
    n = round(seconds_each * fps)
    cam = dataclasses.replace(camera, face_px=(face_px, face_px), tilt_deg=(0.0, 0.0))
    for k, (face, cx) in enumerate(((neutral, centres[0]), (smiling, centres[1]))):
        clip = Clip(face, cam, seed=seed)
        clip.params.update(cx=cx, cy=FRAME_H / 2)
        for i in range(n):
            yield clip.frame(k * n + i, fps)[0]
