"""torch `Dataset` over FaceSets and ClipSets: each item is one augmented 5-frame clip.

Item = `(clip, smile, emotion, emotion_mask)`:
- clip: (T, C, S, S) float32 in 0..1 (a still turned into a clip by `augment.make_clip`, or
  a window of a recorded clip, `clips.windows`, augmented alike);
- smile: float32 scalar, 1 / 0, or -1 where the source has no smile label (mask the loss
  with `smile >= 0`);
- emotion: (7,) float32 target (FER+'s soft vote distribution, or one-hot), zeros if absent;
- emotion_mask: float32 scalar, 1 where `emotion` is a real target.

Randomness is a function of (seed, epoch, index) only, so a run is reproducible with any
`num_workers`; call `set_epoch` each epoch. The only module of `utjima.data` importing torch.
Do not call `cv2.setNumThreads` inside DataLoader workers: in a forked worker whose parent
already ran OpenCV it can deadlock (call it in the parent before the loader starts instead).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, WeightedRandomSampler

from utjima.data.augment import DEFAULT, AugmentConfig, augment_frames, make_clip
from utjima.data.clips import ClipSet, window_table
from utjima.data.faceset import N_EMOTIONS, FaceSet

EMOTION_TARGETS = ("soft", "hard")


class FaceClipDataset(Dataset):
    """Clips from one or more FaceSets / ClipSets, with per-task label masks."""

    def __init__(
        self,
        sets: FaceSet | ClipSet | Sequence[FaceSet | ClipSet],
        n_frames: int = 5,
        size: int = 64,
        channels: int = 1,
        strength: float | None = None,
        train: bool = True,
        seed: int = 0,
        frame_interval_ms: float | None = None,
        emotion_target: str = "soft",
        window_stride: int = 1,
        aug: AugmentConfig = DEFAULT,
    ):
        """`train=True` refuses test-only sets (GENKI-4K). `strength` scales the augmentation:
        default 1 when training, 0 (the plain still repeated) when not. `frame_interval_ms`
        (the model's) is required when a ClipSet is given."""
        self.sets = [sets] if isinstance(sets, FaceSet | ClipSet) else list(sets)
        if emotion_target not in EMOTION_TARGETS:
            raise ValueError(f"emotion_target must be one of {EMOTION_TARGETS}, got "
                             f"{emotion_target!r}")
        for s in self.sets:
            if train and s.test_only:
                raise ValueError(f"{s.source} is a held-out test set: never train on it "
                                 "(train=False to evaluate)")
            if isinstance(s, ClipSet) and s.crop != "face":
                raise ValueError(f"{s.source} holds whole camera frames (crop {s.crop!r}): crop "
                                 "the faces first (utjima.data.clips.face_crops)")
        self.n_frames, self.size, self.channels = n_frames, size, channels
        self.strength = (1.0 if train else 0.0) if strength is None else float(strength)
        self.seed, self.epoch, self.aug = seed, 0, aug

        # One row per item: (set index, sample index or clip index, window row or -1).
        rows, smile, emo_label, soft_rows = [], [], [], []
        self._windows: dict[int, list[np.ndarray]] = {}
        for k, s in enumerate(self.sets):
            if isinstance(s, FaceSet):
                n = len(s)
                rows.append(np.stack([np.full(n, k), np.arange(n), np.full(n, -1)], axis=1))
                smile.append(s.smile)
                emo_label.append(s.emotion_label)
                soft_rows.append(s.emotion)
                continue
            if frame_interval_ms is None:
                raise ValueError(f"{s.source}: pass frame_interval_ms (the model's) to cut clip "
                                 "windows")
            tables = []
            for c, clip in enumerate(s.clips):
                idx = window_table(clip, n_frames, frame_interval_ms, window_stride)  # (M, T)
                last = idx[:, -1]
                labelled = (clip.smile[last] >= 0) | (clip.emotion_label[last] >= 0)
                idx = idx[labelled]
                tables.append(idx)
                m = len(idx)
                rows.append(np.stack([np.full(m, k), np.full(m, c), np.arange(m)], axis=1))
                smile.append(clip.smile[idx[:, -1]])
                el = clip.emotion_label[idx[:, -1]]
                emo_label.append(el)
                soft = np.full((m, N_EMOTIONS), np.nan, np.float32)
                soft[el >= 0] = np.eye(N_EMOTIONS, dtype=np.float32)[el[el >= 0]]
                soft_rows.append(soft)
            self._windows[k] = tables
        self.rows = np.concatenate(rows) if rows else np.zeros((0, 3), np.int64)  # (N, 3)
        self.smile = np.concatenate(smile).astype(np.int8) if smile else np.zeros(0, np.int8)
        self.emotion_label = (np.concatenate(emo_label).astype(np.int8) if emo_label
                              else np.zeros(0, np.int8))
        soft = np.concatenate(soft_rows) if soft_rows else np.zeros((0, N_EMOTIONS), np.float32)
        # Targets ready to hand out: (N, 7) float32 and (N,) float32 masks.
        if emotion_target == "soft":
            self.emotion_mask = (~np.isnan(soft).any(axis=1)).astype(np.float32)
            has = self.emotion_mask[:, None] > 0
            self.emotion_target = np.where(has, soft, 0).astype(np.float32)
        else:
            self.emotion_mask = (self.emotion_label >= 0).astype(np.float32)
            self.emotion_target = np.zeros((len(self.rows), N_EMOTIONS), np.float32)
            has = self.emotion_label >= 0
            self.emotion_target[has] = np.eye(N_EMOTIONS, dtype=np.float32)[self.emotion_label[has]]
        self._smile_f = self.smile.astype(np.float32)

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """New augmentations each epoch, reproducibly (call before creating the epoch's
        iterator)."""
        self.epoch = int(epoch)

    @property
    def source_index(self) -> np.ndarray:
        """(N,) which entry of `sets` each item comes from."""
        return self.rows[:, 0]

    def __getitem__(self, i: int):
        k, j, w = (int(x) for x in self.rows[i])
        rng = np.random.default_rng((self.seed, self.epoch, int(i)))
        s = self.sets[k]
        if isinstance(s, FaceSet):
            clip = make_clip(s.images[j], self.n_frames, self.size, self.channels, rng,
                             self.strength, self.aug)
        else:
            idx = self._windows[k][j][w]  # (T,) frame indices
            clip = augment_frames(s.clips[j].frames[idx], self.size, self.channels, rng,
                                  self.strength, self.aug)
        return (torch.from_numpy(clip),
                torch.scalar_tensor(float(self._smile_f[i]), dtype=torch.float32),
                torch.from_numpy(self.emotion_target[i].copy()),
                torch.scalar_tensor(float(self.emotion_mask[i]), dtype=torch.float32))


def sample_weights(ds: FaceClipDataset, balance_sources: bool = True,
                   balance_smile: bool = True) -> np.ndarray:
    """(N,) sampling weights summing to 1.

    balance_sources: every set gets the same total weight (else: proportional to its size).
    balance_smile: within a set, smile and non-smile get equal weight; items without a smile
    label keep their natural share (so FER+'s ties still feed the emotion head).
    """
    w = np.zeros(len(ds), np.float64)
    src = ds.source_index
    for k in np.unique(src):
        in_k = src == k
        mass = 1.0 / len(np.unique(src)) if balance_sources else in_k.sum() / len(ds)
        smile = ds.smile[in_k]
        wk = np.full(in_k.sum(), 1.0 / in_k.sum())
        if balance_smile:
            masked = smile < 0
            labelled = (~masked).sum()
            present = [c for c in (0, 1) if (smile == c).any()]
            for c in present:
                wk[smile == c] = (labelled / in_k.sum()) / len(present) / (smile == c).sum()
            # masked items keep 1 / n each (their natural share)
        w[in_k] = wk / wk.sum() * mass
    return w / w.sum()


def make_sampler(ds: FaceClipDataset, num_samples: int | None = None, seed: int = 0,
                 balance_sources: bool = True, balance_smile: bool = True) -> WeightedRandomSampler:
    """A `WeightedRandomSampler` (with replacement) over `sample_weights`."""
    w = sample_weights(ds, balance_sources, balance_smile)
    g = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(torch.from_numpy(w), num_samples or len(ds), replacement=True,
                                 generator=g)
