"""utjima.faces: BlazeFace decoding, letterbox, tiling, the sampler and the crop policy."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from utjima import faces
from utjima.contract import load_contract

FIXTURES = Path(__file__).parent / "fixtures"


# --- helpers ---------------------------------------------------------------------------

def reference_warp(img, m, out_w, out_h, step, fill=None):
    """The module doc's sampler, written as plain loops (the shape of the JavaScript port)."""
    img = img.astype(np.float64)
    h, w, c = img.shape
    f = max(1, math.floor(step + faces.STEP_EPS))
    rw, rh = -(-w // f), -(-h // f)
    R = np.zeros((rh, rw, c))
    for j in range(rh):
        for i in range(rw):
            for b in range(f):
                for a in range(f):
                    R[j, i] += img[min(j * f + b, h - 1), min(i * f + a, w - 1)]
    R /= f * f
    out = np.zeros((out_h, out_w, c))
    for v in range(out_h):
        for u in range(out_w):
            sx = m[0][0] * (u + 0.5) + m[0][1] * (v + 0.5) + m[0][2]
            sy = m[1][0] * (u + 0.5) + m[1][1] * (v + 0.5) + m[1][2]
            x, y = sx / f - 0.5, sy / f - 0.5
            x0, y0 = math.floor(x), math.floor(y)
            fx, fy = x - x0, y - y0
            cx = lambda i: min(max(i, 0), rw - 1)  # noqa: E731
            cy = lambda j: min(max(j, 0), rh - 1)  # noqa: E731
            val = ((1 - fy) * ((1 - fx) * R[cy(y0), cx(x0)] + fx * R[cy(y0), cx(x0 + 1)])
                   + fy * ((1 - fx) * R[cy(y0 + 1), cx(x0)] + fx * R[cy(y0 + 1), cx(x0 + 1)]))
            if fill is not None and not (0 <= sx < w and 0 <= sy < h):
                val = np.full(c, fill)
            out[v, u] = val / 255
    return out


def rotation_about(cx, cy, deg):
    """(2, 3) output -> source map that rotates image content by `deg` (clockwise on screen,
    y down) about (cx, cy)."""
    t = math.radians(deg)
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, s, cx - c * cx - s * cy], [-s, c, cy + s * cx - c * cy]])


def eye_angle(face):
    (rx, ry), (lx, ly) = face.keypoints[0], face.keypoints[1]
    return math.degrees(math.atan2(ly - ry, lx - rx))


def smooth_background(rng, h, w, cell=40):
    """Blurry coloured noise: low-frequency structure without faces."""
    z = rng.uniform(40, 220, (h // cell + 2, w // cell + 2, 3))
    m = np.array([[1 / cell, 0, 0], [0, 1 / cell, 0]])
    return (faces._warp(z, m, w, h, step=1 / cell) * 255).astype(np.uint8)


def read_rgb(path):
    return np.asarray(Image.open(path).convert("RGB"))


def to_uint8(chw):
    return (np.clip(chw.transpose(1, 2, 0), 0, 1) * 255).round().astype(np.uint8)


# --- fixtures --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def short():
    return faces.FaceDetector(kind="short")


@pytest.fixture(scope="module")
def full():
    return faces.FaceDetector(kind="full")


@pytest.fixture(scope="module")
def astronaut():
    return read_rgb(FIXTURES / "astronaut.jpg")


@pytest.fixture(scope="module")
def genki_faces(dataset_cache, full):
    """GENKI-4K crops (64x64 RGB) that the full model finds alone in a grey canvas (some
    GENKI crops hold no face: the Haar crop bug), first 24 of a fixed shuffle."""
    paths = sorted((dataset_cache("genki4k") / "train_folder").glob("*/*.jpg"))
    rng = np.random.default_rng(0)
    out = []
    for i in rng.permutation(len(paths)):
        crop = read_rgb(paths[i])
        if full.detect(faces.embed(crop, fill=128)[0]):
            out.append(crop)
        if len(out) == 24:
            return out
    raise AssertionError("fewer than 24 detectable GENKI crops")


# --- anchors, decoding, sampler --------------------------------------------------------

def test_anchors_follow_mediapipe_ssd_layout():
    a = faces.anchors(faces.DETECTORS["short"])
    assert a.shape == (896, 2) and faces.n_anchors(faces.DETECTORS["short"]) == 896
    # 16x16 cells x 2 anchors, then 8x8 cells x 6 anchors; row-major, x fastest
    np.testing.assert_allclose(a[:4], [[0.5 / 16, 0.5 / 16]] * 2 + [[1.5 / 16, 0.5 / 16]] * 2)
    np.testing.assert_allclose(a[512:518], [[0.5 / 8, 0.5 / 8]] * 6)
    np.testing.assert_allclose(a[-1], [7.5 / 8, 7.5 / 8])
    b = faces.anchors(faces.DETECTORS["full"])
    assert b.shape == (2304, 2)
    np.testing.assert_allclose(b[[0, 1, 48]],
                               [[0.5 / 48, 0.5 / 48], [1.5 / 48, 0.5 / 48], [0.5 / 48, 1.5 / 48]])


@pytest.mark.parametrize("step", [1.0, 2.5, 3.0])
@pytest.mark.parametrize("fill", [None, 0.0])
def test_sampler_matches_the_documented_loops(step, fill):
    rng = np.random.default_rng(int(step * 10))
    img = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    t = math.radians(17)
    # rotated, scaled, and reaching past the image on two sides (clamping and fill both hit)
    m = np.array([[step * math.cos(t), -step * math.sin(t), -4.0],
                  [step * math.sin(t), step * math.cos(t), 3.0]])
    got = faces._warp(img, m, 12, 10, step=step, fill=fill)
    want = reference_warp(img, m, 12, 10, step=step, fill=fill)
    assert got.dtype == np.float32 and got.shape == (10, 12, 3)
    np.testing.assert_allclose(got, want, atol=2e-6)


def test_letterbox_geometry():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (60, 120, 3), dtype=np.uint8)  # 2:1 -> bars top and bottom
    x, m = faces.letterbox(img, 128)
    assert x.shape == (3, 128, 128) and x.dtype == np.float32
    # scale 128/120, content 64 rows high centred: rows 0..31 and 96..127 are black
    assert np.all(x[:, :32] == 0) and np.all(x[:, 96:] == 0) and x[:, 33:95].mean() > 0.3
    # m maps the network square's content corners onto the image corners
    np.testing.assert_allclose(m @ [0, 32, 1], [0, 0], atol=1e-9)
    np.testing.assert_allclose(m @ [128, 96, 1], [120, 60], atol=1e-9)
    # a square image at the network size passes through untouched
    sq = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    y, m2 = faces.letterbox(sq, 128)
    np.testing.assert_allclose(y, sq.transpose(2, 0, 1) / 255, atol=1e-6)
    np.testing.assert_allclose(m2, [[1, 0, 0], [0, 1, 0]])
    # a big frame is box-filtered first: a 4x4 checkerboard of 0/255 averages to grey
    board = (np.indices((512, 512)).sum(0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, 2)
    z, _ = faces.letterbox(board, 128)
    np.testing.assert_allclose(z, 0.5, atol=1e-6)


def test_no_face_gives_empty_list(short, full):
    # (at min_score 0.5 the short model does fire, 0.50-0.75, on some frames of face-sized
    # soft blobs, smooth_background(cell=40); a fine texture is the room-like case)
    rng = np.random.default_rng(2)
    blank = np.zeros((480, 640, 3), np.uint8)
    grey = np.full((480, 640, 3), 128, np.uint8)
    noise = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for img in (blank, grey, noise, smooth_background(rng, 480, 640, cell=8)):
        assert short.detect(img) == []
        assert full.detect(img) == []
    assert full.detect(rng.integers(0, 256, (1000, 1600, 3), dtype=np.uint8), tiles="auto") == []


def test_bad_inputs_fail_loudly(short):
    with pytest.raises(ValueError, match="uint8"):
        short.detect(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="tiles must be None, 'none' or 'auto'"):
        short.detect(np.zeros((10, 10, 3), np.uint8), tiles="yes")
    with pytest.raises(ValueError, match="short"):
        faces.FaceDetector(kind="long")
    with pytest.raises(ValueError, match="gray"):
        faces.crop_face(np.zeros((8, 8, 3), np.uint8), faces.Face((0, 0, 8, 8), 1.0, ((0, 0),) * 6),
                        faces.CropPolicy(), channels="bgr")


# --- real faces ------------------------------------------------------------------------

def test_astronaut_photo_has_one_face(short, full, astronaut):
    for det in (short, full):
        found = det.detect(astronaut)
        assert len(found) == 1
        f = found[0]
        assert f.score > 0.8
        # her face: roughly x 130..215, y 45..140 in the 384 px image (found by eye)
        x1, y1, x2, y2 = f.box
        assert 115 < x1 < 150 and 195 < x2 < 230 and 30 < y1 < 75 and 115 < y2 < 160, f.box
        kp = np.array(f.keypoints)
        assert kp.shape == (6, 2)
        # keypoint 0 (her right eye) is on the image's left; the mouth is below the nose
        assert kp[0, 0] < kp[2, 0] < kp[1, 0] and kp[3, 1] > kp[2, 1] > kp[0, 1]
        assert kp[4, 0] < kp[0, 0] and kp[5, 0] > kp[1, 0]  # ears outside the eyes


def test_full_boxes_frame_like_short_boxes(short, full, astronaut):
    a, b = short.detect(astronaut)[0], full.detect(astronaut)[0]
    assert abs(b.side / a.side - 1) < 0.08
    assert abs(b.center[1] - a.center[1]) < 0.06 * a.side


def test_detect_in_context_maps_faces_back_to_the_picture(short, astronaut):
    """A crop whose face fills it: found through the grey canvas, in crop px; the same when the
    crop is large enough to be scaled down for the canvas (s < 1)."""
    ref = short.detect(astronaut)[0]
    cx, cy = ref.center
    half = ref.side * 0.6
    x0, y0 = int(cx - half), int(cy - half)
    crop = np.ascontiguousarray(astronaut[y0 : y0 + int(2 * half), x0 : x0 + int(2 * half)])
    for k in (1, 4):  # ~110 px (canvas at scale 1) and ~440 px (scaled to 256 px)
        img = np.repeat(np.repeat(crop, k, 0), k, 1)
        [f] = faces.detect_in_context(short, img)
        want = np.array([ref.box[0] - x0, ref.box[1] - y0, ref.box[2] - x0, ref.box[3] - y0]) * k
        assert np.abs(np.array(f.box) - want).max() < 0.12 * ref.side * k, (k, f.box, want)
        want_kp = (np.array(ref.keypoints) - (x0, y0)) * k
        assert np.abs(np.array(f.keypoints) - want_kp).max() < 0.12 * ref.side * k
    assert faces.detect_in_context(short, np.full((64, 64, 3), 128, np.uint8)) == []


@pytest.mark.data
def test_finds_pasted_faces(short, full, genki_faces):
    rng = np.random.default_rng(3)
    for crop in genki_faces[:8]:
        img = smooth_background(rng, 480, 640)
        side = int(rng.integers(120, 200))
        x, y = int(rng.integers(0, 640 - side)), int(rng.integers(0, 480 - side))
        face = Image.fromarray(crop).resize((side, side), Image.BILINEAR)
        img[y:y + side, x:x + side] = np.asarray(face)
        for det in (short, full):
            found = det.detect(img)
            assert len(found) >= 1
            iou = faces._iou(np.array(found[0].box), np.array([[x, y, x + side, y + side]]))[0]
            assert iou >= 0.5, (det.kind, iou)


@pytest.mark.data
def test_group_photo_small_faces_need_tiles(full, genki_faces):
    rng = np.random.default_rng(4)
    img = smooth_background(rng, 1000, 1600)
    truth = []
    for i, crop in enumerate(genki_faces[8:16]):  # 8 faces of 40-60 px, 2 rows of 4
        side = int(rng.integers(40, 61))
        x = 80 + (i % 4) * 380 + int(rng.integers(0, 220))
        y = 120 + (i // 4) * 450 + int(rng.integers(0, 260))
        face = Image.fromarray(crop).resize((side, side), Image.LANCZOS)
        img[y:y + side, x:x + side] = np.asarray(face)
        truth.append([x, y, x + side, y + side])
    truth = np.array(truth, float)
    found = full.detect(img, tiles="auto")
    hits = [faces._iou(np.array(f.box), truth) for f in found]
    matched = {int(h.argmax()) for h in hits if h.max() > 0.3}
    false_pos = sum(h.max() <= 0.3 for h in hits)
    assert matched == set(range(8)), f"missed {set(range(8)) - matched}"
    assert false_pos <= 1
    assert len(full.detect(img)) < 8  # one letterboxed pass at 192 px cannot see them


def test_eye_alignment_levels_a_tilted_face(short, astronaut):
    # a webcam-like framing (face about half the frame): the short model's eye keypoints
    # are good to ~3 degrees there, worse when the face is small in the frame
    selfie = np.ascontiguousarray(astronaut[30:170, 100:240])
    h, w = selfie.shape[:2]
    upright = short.detect(selfie)[0]
    rotated = faces._warp(selfie, rotation_about(w / 2, h / 2, 25), w, h, step=1.0)
    tilted = (rotated * 255).astype(np.uint8)
    f = short.detect(tilted)[0]
    assert abs(eye_angle(f) - eye_angle(upright) - 25) < 6
    policy = faces.CropPolicy(size=96, scale=1.6)  # wide enough to find the face again
    for align, want in (("eyes", 0.0), ("none", eye_angle(f))):
        crop = faces.crop_face(tilted, f, dataclasses.replace(policy, align=align), channels="rgb")
        again = short.detect(faces.embed(to_uint8(crop), fill=128)[0])
        assert len(again) == 1
        assert abs(eye_angle(again[0]) - want) < 6, (align, eye_angle(again[0]))


# --- crop policy -----------------------------------------------------------------------

def test_crop_face_shape_range_and_gray(astronaut, short):
    f = short.detect(astronaut)[0]
    g = faces.crop_face(astronaut, f, faces.CropPolicy())
    c = faces.crop_face(astronaut, f, faces.CropPolicy(size=48, align="none"), channels="rgb")
    assert g.shape == (1, 64, 64) and c.shape == (3, 48, 48)
    for x in (g, c):
        assert x.dtype == np.float32 and np.isfinite(x).all() and 0 <= x.min() and x.max() <= 1
        assert x.std() > 0.05  # a face, not a flat patch
    # grey = 0.299 R + 0.587 G + 0.114 B of the sampled values
    rgb = faces.crop_face(astronaut, f, faces.CropPolicy(), channels="rgb")
    np.testing.assert_allclose(g[0], np.tensordot(faces.GRAY_WEIGHTS, rgb, axes=1), atol=1e-6)


def test_crop_transform_frames_the_box():
    face = faces.Face((100.0, 50.0, 200.0, 140.0), 0.9,
                      ((130, 80), (170, 80), (150, 100), (150, 120), (105, 85), (195, 85)))
    m = faces.crop_transform(face, faces.CropPolicy(size=64, scale=1.0, shift_y=0.1, align="none"))
    # side = max(100, 90) = 100; centre (150, 95) moved down 10 px; corners of the 64 px crop
    np.testing.assert_allclose(m @ [0, 0, 1], [100, 55])
    np.testing.assert_allclose(m @ [64, 64, 1], [200, 155])


def test_crop_policy_json_round_trip():
    policy = faces.CropPolicy(size=48, scale=1.1, shift_y=-0.05, align="none")
    d = json.loads(json.dumps(policy.to_json()))
    assert faces.CropPolicy.from_json(d) == policy
    # the browser rebuilds anchors and decoding from the JSON alone
    short = d["detectors"]["short"]
    spec = faces.DetectorSpec(**{k: (tuple(map(tuple, v)) if k == "anchor_layers" else v)
                                 for k, v in short.items() if k not in ("inputs", "outputs")})
    np.testing.assert_array_equal(faces.anchors(spec), faces.anchors(faces.DETECTORS["short"]))
    assert short["file"] == "face_detector_short.onnx"
    assert short["inputs"]["input"] == [1, 3, 128, 128]
    assert d["sampler"]["gray_weights"] == list(faces.GRAY_WEIGHTS)
    with pytest.raises(ValueError, match="differ"):
        faces.CropPolicy.from_json({**d, "sampler": {**d["sampler"], "step_eps": 0}})
    with pytest.raises(ValueError, match="lacks"):
        faces.CropPolicy.from_json({k: v for k, v in d.items() if k != "scale"})
    with pytest.raises(ValueError, match="'none', 'eyes'"):
        faces.CropPolicy(align="nose")


@pytest.mark.data
def test_recrop_gives_fer_the_smilesmiled_framing(dataset_cache, short):
    """Recropping FER+ (eyes at ~0.39 of the crop) with a policy set to SMILEsmileD's median
    framing puts the eyes where SMILEsmileD has them (~0.26)."""
    policy = faces.CropPolicy(scale=0.86, shift_y=-0.02)

    def eyes_y(img):
        canvas, off = faces.embed(img, fill=128)
        f = short.detect(canvas)[0]
        return ((f.keypoints[0][1] + f.keypoints[1][1]) / 2 - off) / img.shape[0]

    def sample(name, pattern, n=16):
        paths = sorted(dataset_cache(name).glob(pattern))
        picks = np.random.default_rng(5).choice(len(paths), n)
        return [np.asarray(Image.open(paths[i]).convert("L")) for i in picks]

    fer = sample("ferplus", "FER2013Train/*.png")
    smile = sample("smilesmiled", "*/*/*.jpg")
    re_fer = [faces.recrop(c, policy) for c in fer]
    assert all(r is not None and r.shape == (1, 64, 64) for r in re_fer)
    fer_raw = np.median([eyes_y(c) for c in fer])
    smile_raw = np.median([eyes_y(c) for c in smile])
    fer_re = np.median([eyes_y(to_uint8(r)[..., 0]) for r in re_fer])
    assert fer_raw - smile_raw > 0.08  # the datasets differ ...
    assert abs(fer_re - smile_raw) < 0.05  # ... until recropped
    assert faces.recrop(np.full((48, 48), 128, np.uint8), policy) is None


def test_faces_module_does_not_import_torch():
    code = "import sys, utjima.faces; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_merge_faces_joins_detections_of_one_face():
    kp = tuple((10.0 + i, 20.0) for i in range(6))
    a = faces.Face(box=(0.0, 0.0, 100.0, 100.0), score=0.9, keypoints=kp)
    b = faces.Face(box=(4.0, 2.0, 104.0, 102.0), score=0.6, keypoints=kp)
    far = faces.Face(box=(300.0, 300.0, 340.0, 340.0), score=0.7, keypoints=kp)
    merged = faces.merge_faces([a], [b, far], iou=0.3)
    assert len(merged) == 2 and merged[0].score == 0.9 and merged[1].box == far.box
    assert 0 < merged[0].box[0] < 4  # score-weighted mean of the two boxes
    assert faces.merge_faces([], []) == []


# --- the live path ---------------------------------------------------------------------

def on_face(f, truth) -> bool:
    """A box on the rendered face: its centre within a quarter of the crop's side of the
    crop's centre (the astronaut crop holds hair and sky around a face half its size)."""
    tx, ty, side = (truth[0] + truth[2]) / 2, (truth[1] + truth[3]) / 2, truth[2] - truth[0]
    return abs(f.center[0] - tx) < side / 4 and abs(f.center[1] - ty) < side / 4


def dim_small_clip(**over):
    """The astronaut as a player sitting back in a dim room (harness.scenes), 640x480."""
    from harness import fakecam, scenes

    cam = dataclasses.replace(scenes.CAMERAS["dark+small"], **over)
    return scenes.Clip(fakecam.astronaut_face(), cam, seed=5)


def test_live_config_json_round_trip_and_refusals():
    d = json.loads(json.dumps(faces.LIVE.to_json()))
    assert faces.LiveConfig.from_json(d) == faces.LIVE
    # the bundled model follows today's live path
    assert faces.LiveConfig.from_json(load_contract().streaming["live"]) == faces.LIVE
    with pytest.raises(ValueError, match="exactly the keys"):
        faces.LiveConfig.from_json({k: v for k, v in d.items() if k != "hold_ms"})
    with pytest.raises(ValueError, match="exactly the keys"):
        faces.LiveConfig.from_json({**d, "speed": 1.0})
    for key, bad in (("max_gain", 0.5), ("hold_ms", -1.0), ("roi_scale", "2"),
                     ("acquire_min_score", 1.5)):
        with pytest.raises(ValueError, match="positive numbers"):
            faces.LiveConfig.from_json({**d, key: bad})


def test_scan_tiles_cover_the_frame_half_overlapping():
    live = faces.LIVE
    for w, h in ((640, 480), (480, 640), (1280, 720), (320, 240)):
        tiles = faces.scan_regions(w, h, 128, live)
        t = live.tile_frac * max(w, h)
        assert len(tiles) <= 6
        xs = sorted({m[0, 2] for m in tiles})
        ys = sorted({m[1, 2] for m in tiles})
        for origins, length in ((xs, w), (ys, h)):
            assert origins[0] <= 0 and origins[-1] + t >= length  # the frame, edge to edge
            assert (np.diff(origins) <= t / 2 + 1e-9).all()  # half-overlapping
        assert all(m[0, 0] == m[1, 1] == t / 128 for m in tiles)
    assert len(faces.scan_regions(640, 480, 128, live)) == 6  # 3 x 2 tiles of 320 px


def test_roi_region_is_a_square_around_the_face_or_the_whole_frame():
    f = faces.Face(box=(300.0, 200.0, 340.0, 250.0), score=0.9, keypoints=((0, 0),) * 6)
    m = faces.roi_region(f, 640, 480, 128, faces.LIVE)
    side = faces.LIVE.roi_scale * 50  # max(w, h) of the box
    np.testing.assert_allclose(m @ [0, 0, 1], [320 - side / 2, 225 - side / 2])
    np.testing.assert_allclose(m @ [128, 128, 1], [320 + side / 2, 225 + side / 2])
    big = faces.Face(box=(100.0, 50.0, 400.0, 350.0), score=0.9, keypoints=((0, 0),) * 6)
    assert faces.roi_region(big, 640, 480, 128, faces.LIVE) is None


def test_exposure_gain_lifts_dark_inputs_only_and_ignores_the_bars():
    live = faces.LIVE
    m = faces.letterbox_region(40, 20, 16)  # 2:1: half the input is black bars
    for level, want in ((10, live.max_gain), (40, live.exposure_target * 255 / 40),
                        (200, 1.0)):
        x = faces._warp(np.full((20, 40, 3), level, np.uint8), m, 16, 16, m[0, 0], fill=0.0)
        assert x[0].max() == 0  # the bars
        assert faces.exposure_gain(x, m, 40, 20, live) == pytest.approx(want, rel=1e-5)
    assert faces.exposure_gain(np.zeros((16, 16, 3), np.float32), m, 40, 20, live) == \
        live.max_gain


def test_live_tracker_finds_a_small_face_in_a_dim_room_the_whole_frame_misses(short):
    clip = dim_small_clip()
    rgb, truth = clip.frame(0)
    assert clip.visibility()["visible"] and clip.params["side"] < 100
    assert not any(on_face(f, truth) for f in short.detect(rgb)), "the whole frame finds it"
    tracker = faces.FaceTracker(short, faces.LIVE, detect_interval_ms=100.0)
    searches = []
    for i in range(30):
        rgb, truth = clip.frame(i)
        f = tracker.update(i * 1000 / 30, rgb)
        assert f is not None, f"frame {i}: no face ({tracker.search})"
        assert on_face(f, truth), (i, f.box, truth)
        searches.append(tracker.search)
    assert searches[0] == "scan" and "roi" in searches and "carried" in searches


def test_live_tracker_holds_a_missed_face_then_reports_it_gone(short):
    clip = dim_small_clip()
    tracker = faces.FaceTracker(short, faces.LIVE, detect_interval_ms=100.0)
    for i in range(6):
        assert tracker.update(i * 1000 / 30, clip.frame(i)[0]) is not None
    seen = tracker.last_seen_ms
    empty = dim_small_clip(person=False)  # the same room: the player left
    out = []
    for i in range(6, 30):
        t = i * 1000 / 30
        f = tracker.update(t, empty.frame(i)[0])
        out.append((t, f is not None, tracker.search))
    held = [t for t, has, _ in out if has]
    assert held and all(s == "held" for _, has, s in out if has)
    assert max(held) - seen <= faces.LIVE.hold_ms  # kept no longer than hold_ms ...
    gone = [t for t, has, _ in out if not has]
    assert gone and min(gone) - seen <= faces.LIVE.hold_ms + 1000 / 30  # ... then gone
    assert all(not has for t, has, _ in out if t >= min(gone))


def test_live_tracker_finds_no_face_in_an_empty_dim_room(short):
    from harness import scenes

    for seed in range(3):
        clip = scenes.Clip(np.zeros((8, 8), np.uint8), scenes.CAMERAS["empty dark"], seed=seed)
        tracker = faces.FaceTracker(short, faces.LIVE, detect_interval_ms=100.0)
        for i in range(0, 30, 3):
            assert tracker.update(i * 1000 / 30, clip.frame(i)[0]) is None, (seed, i)


def test_face_vectors_are_up_to_date():
    """tests/vectors/faces.json (what the JavaScript port is held to) matches utjima.faces."""
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "tools.make_face_vectors", "--check"], cwd=root,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_brighten_crop_lifts_a_dim_crop_to_the_target_and_leaves_a_lit_one():
    live = faces.LIVE
    rng = np.random.default_rng(0)
    lit = rng.uniform(0.3, 0.8, (1, 8, 8)).astype(np.float32)
    assert faces.brighten_crop(lit, live) is lit
    dim = lit * np.float32(0.25)  # mean ~0.14: gain ~2.5, nothing reaches 1
    out = faces.brighten_crop(dim, live)
    assert out.dtype == np.float32 and out.max() < 1
    assert out.mean() == pytest.approx(live.exposure_target, rel=1e-6)
    black = np.zeros((3, 8, 8), np.float32)
    assert not faces.brighten_crop(black, live).any()
    rgb = np.stack([dim[0], dim[0] * 0.5, dim[0] * 2]).astype(np.float32)
    luma = sum(w * c for w, c in zip(faces.GRAY_WEIGHTS, rgb, strict=True)).mean()
    gain = min(live.max_gain, live.exposure_target / luma)
    np.testing.assert_allclose(faces.brighten_crop(rgb, live), np.minimum(rgb * gain, 1), atol=1e-6)
