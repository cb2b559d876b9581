"""utjima.data.images: face images labelled by sub-folder name."""

import cv2
import numpy as np
import pytest

from utjima import EMOTIONS
from utjima.data import images
from utjima.data.cache import DatasetError


def _write(path, value=100, size=32):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((size, size, 3), value, np.uint8)
    img[:, :, 2] = 0  # no red (BGR on disk: channel 2 is red)
    cv2.imwrite(str(path), img)


def test_smile_and_emotion_folders(tmp_path):
    _write(tmp_path / "smile" / "a.png")
    _write(tmp_path / "0" / "b.jpg")
    _write(tmp_path / "Happiness" / "deeper" / "c.png")
    _write(tmp_path / "neutral" / "d.png", size=40)
    fs = images.load(tmp_path)
    assert fs.ids.tolist() == ["0/b.jpg", "Happiness/deeper/c.png", "neutral/d.png", "smile/a.png"]
    assert fs.smile.tolist() == [0, 1, 0, 1]
    assert fs.emotion_label.tolist() == [-1, EMOTIONS.index("happy"), EMOTIONS.index("neutral"), -1]
    assert fs.emotion_mask.tolist() == [False, True, True, False]
    assert isinstance(fs.images, list) and fs.images[2].shape == (40, 40, 3)
    assert fs.images[0][..., 0].max() == 0  # RGB: red is channel 0
    assert fs.source == f"images:{tmp_path}"


def test_bad_folders_list_the_valid_names(tmp_path):
    _write(tmp_path / "laughing" / "a.png")
    with pytest.raises(DatasetError, match="smile, smiling"):
        images.load(tmp_path)


def test_loose_images_and_empty_folder(tmp_path):
    with pytest.raises(DatasetError, match="no images"):
        images.load(tmp_path)
    _write(tmp_path / "a.png")
    with pytest.raises(DatasetError, match="label sub-folders"):
        images.load(tmp_path)
