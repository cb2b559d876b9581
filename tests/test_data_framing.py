"""utjima.data.framing: dataset crops re-framed by the live crop policy, cached per policy."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from utjima import faces
from utjima.data.faceset import FaceSet, no_emotion
from utjima.data.framing import _whole, canonical_crops, canonical_set, policy_key

POLICY = faces.CropPolicy.default(size=64)


@pytest.fixture(scope="module")
def dataset_like():
    """[a 64 px grey crop around the astronaut's face (as a dataset frames it), a blank]."""
    path = Path(__file__).parent / "fixtures" / "astronaut.jpg"
    rgb = np.asarray(Image.open(path).convert("RGB"))
    (face,) = faces.FaceDetector(kind="short").detect(rgb)
    cx, cy = face.center
    half = 0.6 * face.side
    box = (int(cx - half), int(cy - half), int(cx + half), int(cy + half))
    crop = np.asarray(Image.fromarray(rgb).crop(box).convert("L").resize((64, 64), Image.LANCZOS))
    return [crop, np.full((64, 64), 128, np.uint8)]


def test_faces_are_recropped_and_misses_fall_back_to_the_whole_crop(dataset_like, tmp_path):
    crops, found = canonical_crops(dataset_like, POLICY, "gray", tmp_path, name="t", progress=False)
    assert crops.shape == (2, 1, 64, 64) and crops.dtype == np.uint8
    assert found.tolist() == [True, False]
    want = faces.recrop(dataset_like[0], POLICY, channels="gray")  # (1, 64, 64) float 0..1
    np.testing.assert_array_equal(crops[0], np.clip(np.round(want * 255), 0, 255))
    np.testing.assert_array_equal(crops[1], np.round(_whole(dataset_like[1], 64, "gray") * 255))
    assert not np.array_equal(crops[0], np.round(_whole(dataset_like[0], 64, "gray") * 255))


def test_results_are_cached_per_policy_and_channels(dataset_like, tmp_path):
    canonical_crops(dataset_like, POLICY, "gray", tmp_path, name="t", progress=False)
    (path,) = tmp_path.glob("t.*.npz")
    assert path.name == f"t.{policy_key(POLICY, 'gray')}.npz"
    marked = np.full((2, 1, 64, 64), 7, np.uint8)  # a second call must read the file, not recompute
    np.savez(path, crops=marked, found=np.array([True, True]))
    crops, found = canonical_crops(dataset_like, POLICY, "gray", tmp_path, name="t", progress=False)
    assert (crops == 7).all() and found.all()
    assert len({policy_key(POLICY, "gray"), policy_key(POLICY, "rgb"),
                policy_key(faces.CropPolicy.default(size=96), "gray")}) == 3
    assert policy_key(POLICY, "gray") == policy_key(faces.CropPolicy.default(size=64), "gray")


@pytest.mark.parametrize("channels, shape", [("gray", (64, 64)), ("rgb", (64, 64, 3))])
def test_canonical_set_drops_misses_for_training_and_keeps_them_for_evaluation(
        dataset_like, tmp_path, channels, shape):
    emotion, emotion_label = no_emotion(2)
    fs = FaceSet("test:set", np.stack(dataset_like), [1, 0], emotion, emotion_label, ["a", "b"])
    train = canonical_set(fs, POLICY, channels, drop_missing=True, cache=tmp_path, progress=False)
    assert len(train) == 1 and train.ids.tolist() == ["a"] and train.images.shape == (1, *shape)
    assert {k: train.info["framing"][k] for k in ("n", "found", "dropped")} == {
        "n": 2, "found": 1, "dropped": 1}
    ev = canonical_set(fs, POLICY, channels, drop_missing=False, cache=tmp_path, progress=False)
    assert len(ev) == 2 and ev.images.shape == (2, *shape) and ev.smile.tolist() == [1, 0]
    assert ev.info["framing"]["found_mask"].tolist() == [True, False]
    np.testing.assert_array_equal(ev.images[0], train.images[0])
