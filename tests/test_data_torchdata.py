"""utjima.data.torchdata: the torch Dataset with label masks, and the balanced sampler."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from utjima.data.clips import Clip, ClipSet
from utjima.data.faceset import FaceSet, no_emotion
from utjima.data.torchdata import FaceClipDataset, make_sampler, sample_weights


def _smile_only(n=8):
    """SMILEsmileD-like: grey 64x64, smile labels, no emotions."""
    images = np.random.default_rng(0).integers(0, 256, (n, 64, 64), dtype=np.uint8)
    return FaceSet("smilesmiled:train", images, [1, 0] * (n // 2), *no_emotion(n),
                   [f"s{i}" for i in range(n)])


def _fer_like():
    """FER+-like: grey 48x48, soft emotions, one masked smile, one without any emotion."""
    images = np.random.default_rng(1).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    emotion = np.array([np.eye(7)[3], np.full(7, 1 / 7), np.full(7, np.nan)], np.float32)
    return FaceSet("ferplus:train", images, [1, -1, -1], emotion, [3, -1, -1], ["f0", "f1", "f2"])


def _clips():
    frames = np.random.default_rng(2).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    clip = Clip("c", frames, np.arange(6) * 100.0, [-1, 0, 0, 1, 1, 1], [-1, -1, -1, 3, 3, -1])
    return ClipSet("clips:x", [clip])


def test_items_and_masks():
    ds = FaceClipDataset([_smile_only(), _fer_like()], n_frames=5, size=32, channels=3)
    assert FaceClipDataset(_fer_like(), size=32)[0][0].shape == (5, 1, 32, 32)  # grey by default
    assert len(ds) == 11
    clip, smile, emotion, mask = ds[0]
    assert clip.shape == (5, 3, 32, 32) and clip.dtype == torch.float32
    assert smile.item() == 1 and mask.item() == 0 and emotion.abs().sum() == 0
    _, smile, emotion, mask = ds[8]  # FER happy
    assert smile.item() == 1 and mask.item() == 1 and emotion.argmax().item() == 3
    _, smile, emotion, mask = ds[9]  # tie: smile masked, soft emotion kept
    assert smile.item() == -1 and mask.item() == 1 and emotion.sum().item() == pytest.approx(1)
    _, smile, emotion, mask = ds[10]  # unknown: both masked
    assert smile.item() == -1 and mask.item() == 0 and emotion.abs().sum() == 0
    hard = FaceClipDataset(_fer_like(), size=32, emotion_target="hard")
    assert hard[1][3].item() == 0 and hard[0][2].tolist() == np.eye(7)[3].tolist()


def test_reproducible_per_epoch_and_plain_for_eval():
    ds = FaceClipDataset(_smile_only(), size=32, seed=3)
    a = ds[2][0]
    assert torch.equal(a, ds[2][0])
    ds.set_epoch(1)
    assert not torch.equal(a, ds[2][0])
    ev = FaceClipDataset(_smile_only(), size=32, train=False)  # evaluation: no augmentation
    clip = ev[2][0]
    assert torch.equal(clip[0], clip[4])


def test_refuses_to_train_on_a_test_set():
    test = _smile_only()
    test.test_only = True
    with pytest.raises(ValueError, match="never train on it"):
        FaceClipDataset(test)
    assert len(FaceClipDataset(test, train=False)) == 8


def test_clip_windows_labelled_by_last_frame():
    with pytest.raises(ValueError, match="frame_interval_ms"):
        FaceClipDataset(_clips())
    ds = FaceClipDataset(_clips(), size=32, channels=3, frame_interval_ms=100)
    assert len(ds) == 5  # frame 0 has no label
    assert ds.smile.tolist() == [0, 0, 1, 1, 1]
    clip, smile, emotion, mask = ds[2]  # window ending at frame 3
    assert clip.shape == (5, 3, 32, 32) and smile.item() == 1 and mask.item() == 1
    assert emotion.argmax().item() == 3
    assert ds[4][3].item() == 0  # frame 5: smile but no emotion


@pytest.mark.timeout(120)  # a worker deadlock must fail, not hang CI
@pytest.mark.parametrize("workers", [0, 1])
def test_dataloader(workers):
    ds = FaceClipDataset([_smile_only(), _fer_like()], size=32, seed=1)
    batches = list(DataLoader(ds, batch_size=4, num_workers=workers))
    clips = torch.cat([b[0] for b in batches])
    assert clips.shape == (11, 5, 1, 32, 32)
    direct = torch.stack([ds[i][0] for i in range(11)])
    assert torch.equal(clips, direct)  # same augmentations whatever the worker count


def test_sampler_balances_sources_and_smiles():
    smile = _smile_only(8)
    smile.smile[:] = [1, 0, 0, 0, 0, 0, 0, 0]
    ds = FaceClipDataset([smile, _fer_like()], size=32)
    w = sample_weights(ds)
    assert w.sum() == pytest.approx(1)
    assert w[:8].sum() == pytest.approx(0.5) and w[8:].sum() == pytest.approx(0.5)
    assert w[0] == pytest.approx(w[1:8].sum())  # one smile weighs as much as 7 non-smiles
    idx = list(make_sampler(ds, num_samples=4000, seed=0))
    assert np.mean(np.array(idx) < 8) == pytest.approx(0.5, abs=0.05)
    a, b = (list(make_sampler(ds, num_samples=50, seed=0)) for _ in range(2))
    assert a == b  # reproducible
