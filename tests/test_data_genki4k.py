"""utjima.data.genki4k on a tiny fixture in the crop archive's layout."""

import shutil

import cv2
import numpy as np
import pytest

from utjima.data import genki4k
from utjima.data.cache import DatasetError

# index -> smile; files 1-4 smile, 5-8 not (like GENKI: smiles first)
LABELS = {1: 1, 2: 1, 3: 1, 4: 1, 5: 0, 6: 0, 7: 0, 8: 0}


def make_genki(root, drop=("train_folder/1/file0003.jpg", "test_folder/0/file0008.jpg")):
    rng = np.random.default_rng(0)
    lines = []
    for i, smile in LABELS.items():
        lines.append(f"{smile} 0.01 -0.02 0.03")
        folder = root / ("train_folder" if i % 2 else "test_folder") / str(smile)
        folder.mkdir(parents=True, exist_ok=True)
        if f"{folder.relative_to(root).as_posix()}/file{i:04d}.jpg" in drop:
            prev = sorted(root.rglob(f"file{i - 1:04d}.jpg"))[0]
            shutil.copy(prev, folder / f"file{i:04d}.jpg")  # the crop bug: previous crop re-saved
            continue
        img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        img[:, :, 0] = 200  # red in RGB -> checks BGR/RGB handling
        cv2.imwrite(str(folder / f"file{i:04d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    (root / "labels.txt").write_text("\n".join(lines) + "\n")
    (root / "crop_bug_duplicates_to_drop.txt").write_text("\n".join(drop) + "\n")
    (root / "haar_recheck_no_face.txt").write_text("train_folder/1/file0001.jpg\n")
    return root


def test_load_drops_listed_copies_and_is_test_only(tmp_path):
    fs = genki4k.load(make_genki(tmp_path / "g"), cache=tmp_path / "c")
    assert len(fs) == 6 and fs.test_only and fs.source == "genki4k"
    assert fs.ids.tolist() == ["file0001", "file0002", "file0004", "file0005",
                               "file0006", "file0007"]
    assert fs.smile.tolist() == [1, 1, 1, 0, 0, 0]
    assert fs.images.shape == (6, 64, 64, 3) and fs.images.dtype == np.uint8
    assert abs(float(fs.images[..., 0].mean()) - 200) < 10  # RGB, not BGR
    assert (fs.emotion_label == -1).all() and not fs.emotion_mask.any()
    assert fs.info["clean"] == {"all": 6, "smile": 3, "non_smile": 3}
    assert fs.info["dropped_crop_bug"] == 2 and fs.info["identical_pixels_left"] == 0
    assert fs.info["haar_no_face"] == ["train_folder/1/file0001.jpg"]


def test_second_load_reads_the_cache(tmp_path):
    root = make_genki(tmp_path / "g")
    a = genki4k.load(root, cache=tmp_path / "c")
    assert list((tmp_path / "c" / "arrays").glob("genki4k-*.npz"))
    b = genki4k.load(root, cache=tmp_path / "c")
    assert np.array_equal(a.images, b.images)


def test_folder_label_disagreement_fails(tmp_path):
    root = make_genki(tmp_path / "g")
    lines = (root / "labels.txt").read_text().splitlines()
    lines[0] = "0 0 0 0"  # file0001 sits in folder 1
    (root / "labels.txt").write_text("\n".join(lines))
    with pytest.raises(DatasetError, match="folder says 1"):
        genki4k.load(root, cache=tmp_path / "c")


def test_original_layout_without_drop_list(tmp_path):
    root = tmp_path / "orig"
    (root / "files").mkdir(parents=True)
    for i in LABELS:
        size = 80 + i  # originals differ in size: kept as a list
        cv2.imwrite(str(root / "files" / f"file{i:04d}.jpg"),
                    np.full((size, size, 3), i * 20, np.uint8))
    (root / "labels.txt").write_text("".join(f"{s} 0 0 0\n" for s in LABELS.values()))
    fs = genki4k.load(root, cache=tmp_path / "c")
    assert len(fs) == 8 and isinstance(fs.images, list) and fs.images[0].shape == (81, 81, 3)
