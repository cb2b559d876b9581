"""utjima.data.smilesmiled on a tiny fixture in the class-folder layout."""

import shutil

import cv2
import numpy as np
import pytest

from utjima.data import smilesmiled


def make_smilesmiled(root, n_pos=30, n_neg=50):
    rng = np.random.default_rng(0)
    pos, neg = root / "positives" / "positives7", root / "negatives" / "negatives7"
    pos.mkdir(parents=True)
    neg.mkdir(parents=True)
    for i in range(n_pos):
        cv2.imwrite(str(pos / f"{i}.jpg"), rng.integers(0, 256, (64, 64), dtype=np.uint8))
    for i in range(n_neg):
        cv2.imwrite(str(neg / f"{i + 1000}.jpg"), rng.integers(0, 256, (64, 64), dtype=np.uint8))
    shutil.copy(pos / "5.jpg", neg / "5.jpg")  # conflict: same face in both classes
    shutil.copy(neg / "1001.jpg", neg / "2001.jpg")  # listed redundant copy
    shutil.copy(neg / "1002.jpg", neg / "2002.jpg")  # unlisted copy, found by hashing
    (root / "exact_duplicates.txt").write_text(
        "# groups of byte-identical images\n"
        "negatives/negatives7/5.jpg positives/positives7/5.jpg\n"
        "negatives/negatives7/1001.jpg negatives/negatives7/2001.jpg\n")
    (root / "positives" / "smiles_01_pos.idx").write_text("ignored\n")
    return root


def test_cleaning_counts(tmp_path):
    fs = smilesmiled.load(make_smilesmiled(tmp_path / "s"), "all", cache=tmp_path / "c")
    info = fs.info
    assert info["raw"] == {"all": 83, "smile": 30, "non_smile": 53}
    # conflict pair dropped whole, one copy of each redundant pair dropped
    assert info["clean"] == {"all": 79, "smile": 29, "non_smile": 50}
    assert info["conflict_groups_dropped"] == 1 and info["redundant_copies_dropped"] == 2
    ids = set(fs.ids.tolist())
    assert "positives/positives7/5.jpg" not in ids and "negatives/negatives7/5.jpg" not in ids
    assert "negatives/negatives7/1001.jpg" in ids and "negatives/negatives7/2001.jpg" not in ids
    assert fs.images.shape == (79, 64, 64) and fs.source == "smilesmiled"
    assert not fs.emotion_mask.any() and (fs.emotion_label == -1).all()


def test_split_is_disjoint_stratified_and_deterministic(tmp_path):
    root = make_smilesmiled(tmp_path / "s", n_pos=40, n_neg=80)
    parts = {s: smilesmiled.load(root, s, cache=tmp_path / "c") for s in ("train", "val", "test")}
    ids = [set(p.ids.tolist()) for p in parts.values()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert sum(map(len, ids)) == len(smilesmiled.load(root, "all", cache=tmp_path / "c"))
    # stratified: 80/10/10 within each class (39 smiles, 80 non-smiles after cleaning)
    assert [int((p.smile == 1).sum()) for p in parts.values()] == [31, 4, 4]
    assert [int((p.smile == 0).sum()) for p in parts.values()] == [64, 8, 8]
    again = smilesmiled.load(root, "val", cache=tmp_path / "c2")  # fresh decode, same split
    assert again.ids.tolist() == parts["val"].ids.tolist()
    other = smilesmiled.load(root, "val", seed=1, cache=tmp_path / "c")
    assert other.ids.tolist() != parts["val"].ids.tolist()


def test_split_depends_on_names_only():
    rel = [f"positives/p/{i}.jpg" for i in range(20)]
    a = smilesmiled.split_of(rel, np.ones(20, np.int8))
    b = smilesmiled.split_of(rel[::-1], np.ones(20, np.int8))[::-1]
    assert a.tolist() == b.tolist()


def test_bad_split_and_folder(tmp_path):
    with pytest.raises(ValueError, match="train, val, test, all"):
        smilesmiled.load(tmp_path, "valid")
    with pytest.raises(smilesmiled.DatasetError, match="positives"):
        smilesmiled.load(tmp_path, "train")
