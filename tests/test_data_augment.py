"""utjima.data.augment: still -> clip augmentation."""

from dataclasses import replace

import cv2
import numpy as np
import pytest

from utjima.data.augment import AugmentConfig, augment_frames, make_clip


def _face(shape=(64, 64, 3), seed=0):
    """A smooth full-contrast synthetic 'face' (blurred noise, stretched to 0..255)."""
    img = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    return cv2.normalize(cv2.GaussianBlur(img, (0, 0), 4), None, 0, 255, cv2.NORM_MINMAX)


@pytest.mark.parametrize("shape, channels",
                         [((48, 48), 1), ((48, 48), 3), ((64, 64, 3), 3), ((64, 64, 3), 1),
                                             ((200, 160, 3), 3)])
def test_shape_dtype_range(shape, channels):
    rng = np.random.default_rng(0)
    for _ in range(20):
        clip = make_clip(_face(shape), 5, 64, channels, rng)
        assert clip.shape == (5, channels, 64, 64) and clip.dtype == np.float32
        assert clip.flags.c_contiguous and clip.flags.writeable
        assert make_clip(_face(shape), 2, 64, channels, None, strength=0).flags.writeable
        assert 0 <= clip.min() and clip.max() <= 1 and np.isfinite(clip).all()


def test_deterministic_given_the_rng():
    img = _face()
    a = [make_clip(img, 5, 64, 3, np.random.default_rng(7)) for _ in range(2)]
    assert np.array_equal(a[0], a[1])
    b = make_clip(img, 5, 64, 3, np.random.default_rng(8))
    assert not np.array_equal(a[0], b)


def test_strength_zero_is_the_resized_still_repeated():
    img = _face((48, 48))
    clip = make_clip(img, 5, 64, 3, np.random.default_rng(0), strength=0)
    expect = cv2.resize(img, (64, 64), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    for t in range(5):
        assert np.array_equal(clip[t], clip[0])
        for c in range(3):
            assert np.allclose(clip[t, c], expect, atol=1e-6)
    rgb = _face((64, 64, 3))
    plain = make_clip(rgb, 2, 64, 3, None, strength=0)
    assert np.allclose(plain[0].transpose(1, 2, 0), rgb / 255, atol=1e-6)  # (C,H,W) RGB order kept


def test_temporal_jitter_is_small():
    img = _face()
    corr = []
    calm = AugmentConfig(dim_p=0)  # a dim room adds independent sensor noise to every frame
    for seed in range(20):
        clip = make_clip(img, 5, 64, 1, np.random.default_rng(seed), cfg=calm)
        assert any(not np.array_equal(clip[0], clip[t]) for t in range(1, 5))  # frames differ
        for t in range(1, 5):  # ... but neighbours correlate strongly
            corr.append(np.corrcoef(clip[t - 1].ravel(), clip[t].ravel())[0, 1])
    assert np.median(corr) > 0.95 and min(corr) > 0.6


def test_base_augmentation_is_strong():
    """Different clips of one still differ much more than frames within a clip."""
    img = _face()
    firsts = [make_clip(img, 5, 64, 1, np.random.default_rng(s))[0] for s in range(20)]
    diffs = [np.abs(firsts[i] - firsts[i + 1]).mean() for i in range(19)]
    assert np.mean(diffs) > 0.05


def test_tiny_strength_is_close_to_plain():
    img = _face()
    a = make_clip(img, 5, 64, 3, np.random.default_rng(0), strength=1e-6)
    b = make_clip(img, 5, 64, 3, None, strength=0)
    assert np.abs(a - b).max() <= 1 / 255 + 1e-6
    tall = _face((80, 60))  # not square: both paths fit the long side and mirror-pad
    a = make_clip(tall, 1, 64, 1, np.random.default_rng(0), strength=1e-6)
    b = make_clip(tall, 1, 64, 1, None, strength=0)
    assert np.abs(a - b).mean() < 0.005


def test_grey_conversion_of_rgb():
    img = _face()
    cfg = AugmentConfig(grey_p=1.0)
    clip = make_clip(img, 5, 64, 3, np.random.default_rng(0), cfg=cfg)
    assert np.array_equal(clip[:, 0], clip[:, 1]) and np.array_equal(clip[:, 1], clip[:, 2])


def test_augment_frames_keeps_motion_and_one_base_augmentation():
    frames = np.stack([np.roll(_face(), 3 * t, axis=1) for t in range(5)])
    out = augment_frames(frames, 64, 3, np.random.default_rng(0), strength=0.0)
    assert out.shape == (5, 3, 64, 64) and not np.array_equal(out[0], out[4])
    aug = augment_frames(frames, 32, 3, np.random.default_rng(0))
    assert aug.shape == (5, 3, 32, 32)
    assert np.array_equal(aug, augment_frames(frames, 32, 3, np.random.default_rng(0)))


def test_bad_inputs():
    with pytest.raises(ValueError, match="channels"):
        make_clip(_face(), 5, 64, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="uint8 image"):
        make_clip(np.zeros((8, 8, 4), np.uint8), 5, 64, 3, np.random.default_rng(0))


def test_dim_room_darkens_and_adds_noise_and_distance_blurs():
    img = _face()
    plain = make_clip(img, 3, 64, 1, None, strength=0)
    base = AugmentConfig(dim_p=0, lowres_p=0, noise_p=0, blur_p=0, jitter_blur_p=0, occlude_p=0,
                         jpeg_p=0)
    clean = [make_clip(img, 3, 64, 1, np.random.default_rng(s), cfg=base) for s in range(10)]
    dim = [make_clip(img, 3, 64, 1, np.random.default_rng(s), cfg=replace(base, dim_p=1.0))
           for s in range(10)]
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    sharp = cv2.GaussianBlur(noise, (0, 0), 1)
    near = [make_clip(sharp, 3, 64, 1, np.random.default_rng(s), cfg=base) for s in range(10)]
    far = [make_clip(sharp, 3, 64, 1, np.random.default_rng(s), cfg=replace(base, lowres_p=1.0))
           for s in range(10)]
    assert np.mean([c.mean() for c in dim]) < 0.7 * np.mean([c.mean() for c in clean])
    # noise: frames of a dim clip differ pixel by pixel far more than the jitter alone makes them
    jitter = np.mean([np.abs(np.diff(c, axis=0)).mean() / c.mean() for c in clean])
    assert np.mean([np.abs(np.diff(c, axis=0)).mean() / c.mean() for c in dim]) > 1.5 * jitter
    # distance: fine detail (neighbouring-pixel differences) is lost
    detail = lambda c: np.abs(np.diff(c[0, 0], axis=1)).mean()  # noqa: E731
    assert np.mean([detail(c) for c in far]) < 0.6 * np.mean([detail(c) for c in near])
    assert plain.shape == dim[0].shape == far[0].shape
