"""utjima.data.ferplus on tiny fixtures in the FER+ layouts (label.csv, fer2013new.csv,
fer2013.csv)."""

import csv

import cv2
import numpy as np
import pytest

from utjima import EMOTIONS
from utjima.data import ferplus

E = EMOTIONS.index
#        neutral happy surprise sad anger disgust fear contempt unknown NF
HAPPY = [0, 10, 0, 0, 0, 0, 0, 0, 0, 0]
NEUTRAL = [6, 4, 0, 0, 0, 0, 0, 0, 0, 0]
TIE = [5, 5, 0, 0, 0, 0, 0, 0, 0, 0]
CONTEMPT = [2, 0, 0, 0, 0, 0, 0, 8, 0, 0]
UNKNOWN = [0, 0, 0, 0, 0, 0, 0, 0, 10, 0]
NOFACE = [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]
ANGER = [1, 0, 0, 0, 9, 0, 0, 0, 0, 0]


def _img(k):
    return np.random.default_rng(k).integers(0, 256, (48, 48), dtype=np.uint8)


# split -> [(image seed, votes)]: seeds shared across splits are byte-identical twins
LAYOUT = {
    "train": [(1, HAPPY), (2, NEUTRAL), (3, TIE), (4, CONTEMPT), (5, UNKNOWN), (6, ANGER),
              (6, ANGER)],
    "valid": [(1, HAPPY), (10, NEUTRAL), (11, NOFACE)],  # seed 1: twin of train
    "test": [(2, NEUTRAL), (10, NEUTRAL), (20, HAPPY), (21, ANGER)],  # twins of train and valid
}


def make_ferplus(root, layout=LAYOUT, per_folder=True, pngs=True):
    n = 0
    new_rows = []
    for split, items in layout.items():
        folder = root / ferplus.FOLDERS[split]
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for seed, votes in items:
            name = f"fer{n:07d}.png"
            n += 1
            if pngs:
                cv2.imwrite(str(folder / name), _img(seed))
            rows.append([name, "(0, 0, 48, 48)", *votes])
            usage = {"train": "Training", "valid": "PublicTest", "test": "PrivateTest"}[split]
            new_rows.append([usage, name, *votes, seed])
        if per_folder:
            with open(folder / "label.csv", "w", newline="") as f:
                csv.writer(f).writerows(rows)
    with open(root / "fer2013new.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Usage", "Image name", *ferplus.VOTE_COLUMNS])
        w.writerows(r[:-1] for r in new_rows)
        w.writerow(["Training", "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 10])  # a row FER+ dropped
    return root, [r[-1] for r in new_rows] + [99]


def test_labels_from_votes_rules():
    smile, emotion, label = ferplus.labels_from_votes(np.array([HAPPY, NEUTRAL, TIE, CONTEMPT,
                                                                UNKNOWN, NOFACE, ANGER]))
    assert smile.tolist() == [1, 0, -1, 0, -1, -1, 0]
    assert label.tolist() == [E("happy"), E("neutral"), -1, -1, -1, -1, E("angry")]
    assert emotion[1, E("neutral")] == pytest.approx(0.6)
    assert emotion[1, E("happy")] == pytest.approx(0.4)
    assert emotion[2, E("happy")] == pytest.approx(0.5)  # a tie still has a soft target
    assert emotion[3, E("neutral")] == pytest.approx(1.0)  # contempt has no class: renormalised
    assert np.isnan(emotion[4]).all() and np.isnan(emotion[5]).all()
    assert emotion[6, E("angry")] == pytest.approx(0.9)
    ok = ~np.isnan(emotion).any(axis=1)
    assert np.allclose(emotion[ok].sum(axis=1), 1)


def test_load_removes_cross_split_twins(tmp_path):
    root, _ = make_ferplus(tmp_path / "f")
    train = ferplus.load(root, "train", cache=tmp_path / "c")
    valid = ferplus.load(root, "valid", cache=tmp_path / "c")
    test = ferplus.load(root, "test", cache=tmp_path / "c")
    assert len(train) == 7  # within-split copies stay (reported)
    assert len(valid) == 2 and len(test) == 2
    assert train.info["twins_removed"] == {"train": 0, "valid": 1, "test": 2}
    assert train.info["clean"] == {"train": 7, "valid": 2, "test": 2}
    assert train.info["identical_within_split"] == 1
    assert test.ids.tolist() == ["FER2013Test/fer0000012.png", "FER2013Test/fer0000013.png"]
    assert test.smile.tolist() == [1, 0] and test.emotion_label.tolist() == [E("happy"), E("angry")]
    assert valid.smile.tolist() == [0, -1] and not valid.emotion_mask[1]
    assert train.images.shape == (7, 48, 48) and train.images.dtype == np.uint8
    assert np.array_equal(test.images[0], _img(20))
    assert test.source == "ferplus:test" and not test.test_only


def test_fer2013new_csv_layout_matches(tmp_path):
    a, _ = make_ferplus(tmp_path / "a")
    b, _ = make_ferplus(tmp_path / "b", per_folder=False)
    for split in ferplus.SPLITS:
        x = ferplus.load(a, split, cache=tmp_path / "c")
        y = ferplus.load(b, split, cache=tmp_path / "c")
        assert x.ids.tolist() == y.ids.tolist() and np.array_equal(x.images, y.images)
        assert np.array_equal(x.emotion, y.emotion, equal_nan=True)


def test_kaggle_fer2013_csv_pixels(tmp_path):
    root, seeds = make_ferplus(tmp_path / "k", per_folder=False, pngs=False)
    for split in ferplus.SPLITS:
        (root / ferplus.FOLDERS[split]).rmdir()
    with open(root / "fer2013.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for s in seeds:
            w.writerow([0, " ".join(map(str, _img(s).ravel())), "Training"])
    test = ferplus.load(root, "test", cache=tmp_path / "c")
    assert len(test) == 2 and np.array_equal(test.images[0], _img(20))


def test_bad_split_and_missing_labels(tmp_path):
    with pytest.raises(ValueError, match="train, valid, test"):
        ferplus.load(tmp_path, "val")
    with pytest.raises(ferplus.DatasetError, match="no FER\\+ labels"):
        ferplus.load(tmp_path, "train", cache=tmp_path / "c")
