"""utjima.data.ckplus: CK+ sequences as subject-grouped clips with protocol labels."""

import numpy as np
import pytest

from utjima import EMOTIONS
from utjima.data import ckplus
from utjima.data.cache import DatasetError


def test_frame_labels_mark_only_what_the_protocol_says():
    smile, emo = ckplus.frame_labels("happy", 10)
    assert smile.tolist() == [0] + [-1] * 6 + [1, 1, 1]  # onset unknown: masked, never guessed
    assert emo.tolist() == [EMOTIONS.index("neutral")] + [-1] * 6 + [EMOTIONS.index("happy")] * 3
    smile, emo = ckplus.frame_labels("sadness", 10)
    assert smile.tolist() == [0] * 10  # no non-happy CK+ expression passes through a smile
    assert emo[-3:].tolist() == [EMOTIONS.index("sad")] * 3 and (emo[1:-3] == -1).all()
    smile, _ = ckplus.frame_labels("happy", 3)  # shorter than neutral + apex: the apex wins
    assert smile.tolist() == [1, 1, 1]


def test_subject_folds_are_disjoint_complete_and_spread_smiles():
    subjects = [f"S{i:03d}" for i in range(10)]
    smiling = subjects[:8]
    folds = ckplus.subject_folds(subjects, 5, smiling)
    assert sorted(s for f in folds for s in f) == subjects
    assert all(any(s in smiling for s in f) for f in folds)
    assert folds == ckplus.subject_folds(list(reversed(subjects)), 5, smiling)  # deterministic
    with pytest.raises(DatasetError, match="folds"):
        ckplus.subject_folds(subjects, 11)


def test_parse_split_lists_the_valid_forms():
    assert ckplus.parse_split("") == ("train", 0, 0)
    assert ckplus.parse_split("test=2/5") == ("test", 2, 5)
    assert ckplus.parse_split("val=3/3") == ("val", 3, 3)
    for bad in ("dev", "test=0/5", "test=6/5", "fit=1/1", "train=a/b"):
        with pytest.raises(DatasetError, match="valid: train, test, all"):
            ckplus.parse_split(bad)


def test_fixed_split_holds_out_every_emotion():
    assert not set(ckplus.TEST_SUBJECTS) & set(ckplus.TRAIN_SUBJECTS)


@pytest.fixture(scope="module")
def ck_root(dataset_cache):
    return dataset_cache("ckplus")


def test_load_real_sequences(ck_root):
    rows = ckplus.read_labels(ck_root)
    test = ckplus.load(ck_root, "test")
    train = ckplus.load(ck_root, "train")
    assert test.test_only and not train.test_only
    assert {c.subject for c in test.clips} == set(ckplus.TEST_SUBJECTS)
    assert {c.subject for c in train.clips} == set(ckplus.TRAIN_SUBJECTS)
    assert len(test) + len(train) == len(rows) == 40
    emotions = {test.info["emotion"][c.id] for c in test.clips}
    assert emotions == {
        "happy",
        "sad",
        "angry",
        "disgust",
        "surprise",
        "fear",
    }  # every emotion held out
    c = test.clips[0]
    assert (
        c.frames.shape[1:] == (ckplus.CROP_SIZE, ckplus.CROP_SIZE, 3) and c.frames.dtype == np.uint8
    )
    assert np.allclose(np.diff(c.times_ms), 1000 / 30)
    # subject folds over everyone: each subject in exactly one test fold, train = the rest
    seen = []
    for k in range(1, 6):
        te, tr = ckplus.load(ck_root, f"test={k}/5"), ckplus.load(ck_root, f"train={k}/5")
        te_s, tr_s = {c.subject for c in te.clips}, {c.subject for c in tr.clips}
        assert not te_s & tr_s and len(te) + len(tr) == 40
        assert any(c.clip_smile == 1 for c in te.clips)  # stratified: smiles in every fold
        seen += sorted(te_s)
    assert sorted(seen) == sorted({r["subject_id"] for r in rows})
    # validation folds stay inside the training subjects
    for k in range(1, 4):
        assert {c.subject for c in ckplus.load(ck_root, f"val={k}/3").clips} <= set(
            ckplus.TRAIN_SUBJECTS
        )


def test_webcam_video_holds_neutral_and_apex(ck_root):
    frames = ckplus.raw_frames(ck_root, "S106_006")
    video, apex_ms = ckplus.webcam_video(frames)
    pre = round(ckplus.HOLD_NEUTRAL_MS * ckplus.FPS / 1000)
    assert video.shape == (
        pre + len(frames) - 1 + round(ckplus.HOLD_APEX_MS * ckplus.FPS / 1000) + 1,
        480,
        640,
        3,
    )
    assert np.array_equal(video[0], video[pre])  # the neutral frame is held
    assert np.array_equal(video[-1], video[round(apex_ms * ckplus.FPS / 1000)])  # so is the apex
    with pytest.raises(DatasetError, match="no frames"):
        ckplus.raw_frames(ck_root, "S999_001")
