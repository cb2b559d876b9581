"""utjima.data.faceset: the common FaceSet record."""

import numpy as np
import pytest

from utjima import EMOTIONS
from utjima.data.faceset import FaceSet, no_emotion, pixel_digest, stack_uniform


def _set(n=6):
    emotion, label = no_emotion(n)
    emotion[0] = np.eye(7)[3]
    label[0] = 3
    return FaceSet("toy",
                   np.zeros((n, 4, 4), np.uint8) + np.arange(n)[:, None, None].astype(np.uint8),
                   smile=[1, 0, -1, 1, 0, 1][:n], emotion=emotion, emotion_label=label,
                   ids=[f"f{i}" for i in range(n)])


def test_sample_and_masks():
    fs = _set()
    s = fs[0]
    assert s.smile == 1 and s.emotion_label == EMOTIONS.index("happy") and s.emotion[3] == 1
    assert fs[1].emotion is None and fs[1].emotion_label == -1
    assert fs.emotion_mask.tolist() == [True] + [False] * 5
    assert fs.smile.dtype == np.int8 and fs.emotion.dtype == np.float32


def test_subset_limit_counts():
    fs = _set()
    sub = fs.subset([4, 1])
    assert sub.ids.tolist() == ["f4", "f1"] and sub.images[0, 0, 0] == 4
    lim = fs.limit(3, seed=1)
    assert len(lim) == 3 and lim.ids.tolist() == sorted(lim.ids.tolist())
    assert lim.ids.tolist() == fs.limit(3, seed=1).ids.tolist()
    assert fs.limit(None) is fs
    c = fs.counts()
    assert (c["n"], c["smile"], c["non_smile"], c["smile_masked"]) == (6, 3, 2, 1)
    assert c["emotion"]["happy"] == 1 and c["emotion_masked"] == 5
    assert "toy: 6 faces" in fs.describe()


def test_bad_labels_are_rejected():
    with pytest.raises(AssertionError):
        FaceSet("toy", np.zeros((1, 2, 2), np.uint8), [2], *no_emotion(1), ["a"])


def test_pixel_digest_and_stack():
    a = np.zeros((2, 3), np.uint8)
    d = pixel_digest([a, a.copy(), a.reshape(3, 2), a + 1])
    assert d[0] == d[1] and len({d[0], d[2], d[3]}) == 3
    with pytest.raises(ValueError, match="differ in size"):
        stack_uniform([a, a.reshape(3, 2)], "toy")
