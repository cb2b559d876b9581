"""The real archives in ../shared/datasets: checksums, documented counts, cleaning.

Skipped where the archives are absent (a user's machine). The first run unpacks and
decodes into the cache ($UTJIMA_CACHE or ~/.cache/utjima, ~15 s); later runs read the
cached arrays (~2 s).
"""

import numpy as np
import pytest

from utjima import EMOTIONS
from utjima.data import cache, ferplus, genki4k, smilesmiled

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def prepared(dataset_cache):
    """Every archive verified and unpacked (conftest's `dataset_cache`); -> {name: folder}."""
    return {name: dataset_cache(name) for name in cache.ARCHIVES}


def test_archives_verified(prepared):
    for name, root in prepared.items():
        assert cache.is_prepared(name)
        assert (root / "SOURCE.md").is_file()


def test_genki4k_counts(prepared):
    fs = genki4k.load(prepared["genki4k"])
    assert fs.info["raw"] == {"all": 4000, "smile": 2162, "non_smile": 1838}
    assert len(fs) == 3871 and (fs.smile == 1).sum() == 2100 and (fs.smile == 0).sum() == 1771
    assert fs.images.shape == (3871, 64, 64, 3) and fs.test_only
    assert fs.info["identical_pixels_left"] == 0


def test_smilesmiled_counts_and_split(prepared):
    root = prepared["smilesmiled"]
    fs = smilesmiled.load(root, "all")
    assert fs.info["raw"] == {"all": 13165, "smile": 3690, "non_smile": 9475}
    assert fs.info["clean"] == {"all": 13153, "smile": 3685, "non_smile": 9468}
    assert fs.info["conflict_groups_dropped"] == 5 and fs.info["redundant_copies_dropped"] == 2
    parts = [smilesmiled.load(root, s) for s in ("train", "val", "test")]
    assert [len(p) for p in parts] == [10522, 1315, 1316]
    assert [int((p.smile == 1).sum()) for p in parts] == [2948, 368, 369]
    assert not set(parts[0].ids) & set(parts[2].ids)


def test_ferplus_counts_and_twins(prepared):
    root = prepared["ferplus"]
    train, valid, test = (ferplus.load(root, s) for s in ferplus.SPLITS)
    assert train.info["raw"] == {"train": 28558, "valid": 3579, "test": 3573}
    assert train.info["twins_removed"] == {"train": 0, "valid": 279, "test": 314}
    assert (len(train), len(valid), len(test)) == (28558, 3300, 3259)
    # no face the model trained on is scored, and no Valid face is a Train face
    seen = {im.tobytes() for im in train.images}
    assert not any(im.tobytes() in seen for im in valid.images)
    seen |= {im.tobytes() for im in valid.images}
    assert not any(im.tobytes() in seen for im in test.images)
    # Train is untouched, so its majority counts are SOURCE.md's
    c = train.counts()
    emo = c["emotion"]
    assert (emo["happy"], emo["neutral"], emo["angry"]) == (7408, 9360, 2395)
    assert c["smile"] == 7408 and c["smile_masked"] == 1445 + 171 + 2  # ties + unknown + NF
    assert train.images.shape[1:] == (48, 48) and len(EMOTIONS) == train.emotion.shape[1]
    ok = train.emotion_mask
    assert np.allclose(train.emotion[ok].sum(axis=1), 1, atol=1e-5)
