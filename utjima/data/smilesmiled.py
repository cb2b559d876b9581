"""SMILEsmileD: 64x64 grey face crops in class folders, smile labels only (no emotions).

Layout read: `positives/**/*.jpg` = smile, `negatives/**/*.jpg` = non-smile (the archive has
`positives/positives7/` and `negatives/negatives7/`), plus `exact_duplicates.txt`: groups of
byte-identical files, one group a line.

Cleaning: files with identical pixels form a group (the listed groups, and any we find by
hashing the pixels). A group whose members disagree on the label is dropped whole (the 5
documented conflicts: 10 files); a group that agrees keeps its first file. The shared
archive goes from 13,165 files to 13,153 (3,685 smile / 9,468 non-smile); `load` checks it.

Split: deterministic and stratified. Within each class, files are ordered by
sha256(f"{seed}:{relative path}") and cut 80 / 10 / 10 into train / val / test, so the split
depends only on the file names, never on code or file-system order. The source has no
identity labels (it is LFW-derived), so one person may sit in two splits.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from utjima.data.cache import ARCHIVES, DatasetError, cached_arrays
from utjima.data.faceset import (
    FaceSet,
    list_images,
    no_emotion,
    pixel_digest,
    read_images,
    stack_uniform,
)

SPLITS = ("train", "val", "test", "all")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)  # train / val / test
DUPLICATES_LIST = "exact_duplicates.txt"
CLASS_DIRS = {"positives": 1, "negatives": 0}


def _files(root: Path) -> tuple[list[str], np.ndarray]:
    rel, labels = [], []
    for d, label in CLASS_DIRS.items():
        found = list_images(root, d)
        rel += found
        labels += [label] * len(found)
    if not rel:
        raise DatasetError(f"{root}: no images under positives/ or negatives/; "
                           "is this SMILEsmileD?")
    return rel, np.array(labels, dtype=np.int8)


def _listed_groups(root: Path) -> list[list[str]]:
    path = root / DUPLICATES_LIST
    if not path.is_file():
        return []
    return [ln.split() for ln in path.read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]


def split_of(rel: list[str], labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N,) array of 'train' / 'val' / 'test', stratified by label, from name hashes only."""
    out = np.empty(len(rel), dtype="<U5")
    keys = np.array([hashlib.sha256(f"{seed}:{r}".encode()).hexdigest() for r in rel])
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        order = members[np.argsort(keys[members], kind="stable")]
        n = len(order)
        n_train = round(n * SPLIT_FRACTIONS[0])
        n_val = round(n * (SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1])) - n_train
        out[order[:n_train]] = "train"
        out[order[n_train:n_train + n_val]] = "val"
        out[order[n_train + n_val:]] = "test"
    return out


def load(root: str | Path, split: str = "train", seed: int = 0,
         cache: str | Path | None = None) -> FaceSet:
    """One split of the de-duplicated SMILEsmileD (grey 64x64, smile labels, emotions masked)."""
    if split not in SPLITS:
        raise ValueError(f"unknown SMILEsmileD split {split!r}; choose one of: {', '.join(SPLITS)}")
    root = Path(root)
    rel, labels = _files(root)
    subdirs = sorted({r.rpartition("/")[0] for r in rel})

    def build() -> dict[str, np.ndarray]:
        decoded = read_images([root / r for r in rel], color=False, desc="decode SMILEsmileD")
        images = stack_uniform(decoded, "SMILEsmileD")
        return {"images": images, "digest": pixel_digest(images), "rel": np.array(rel)}

    arrays = cached_arrays("smilesmiled", root, subdirs, [], build, cache)
    images, digest = arrays["images"], arrays["digest"]

    # Group identical files: by pixel digest, and the listed groups on top (same key).
    key = {r: str(d) for r, d in zip(rel, digest, strict=True)}
    listed = _listed_groups(root)
    for group in listed:
        missing = [g for g in group if g not in key]
        if missing:
            raise DatasetError(f"{root}/{DUPLICATES_LIST} names files that are not there: "
                               f"{missing[:3]}")
        for g in group[1:]:
            key[g] = key[group[0]]
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rel):
        groups.setdefault(key[r], []).append(i)
    keep = np.ones(len(rel), dtype=bool)
    n_conflict_groups = n_redundant = 0
    for members in groups.values():
        if len(members) < 2:
            continue
        if len(set(labels[members].tolist())) > 1:
            keep[members] = False  # the same face called smile and non-smile: trust neither
            n_conflict_groups += 1
        else:
            keep[members[1:]] = False
            n_redundant += len(members) - 1

    raw = {"all": len(rel), "smile": int((labels == 1).sum()),
           "non_smile": int((labels == 0).sum())}
    kept = np.flatnonzero(keep)
    clean = {"all": len(kept), "smile": int((labels[kept] == 1).sum()),
             "non_smile": int((labels[kept] == 0).sum())}
    a = ARCHIVES["smilesmiled"]
    if raw == a.raw and clean != a.clean:
        raise DatasetError(f"{root}: SMILEsmileD after cleaning has {clean}, documented {a.clean}")

    rel_kept = [rel[i] for i in kept]
    splits = split_of(rel_kept, labels[kept], seed)
    sel = kept if split == "all" else kept[splits == split]
    emotion, emotion_label = no_emotion(len(sel))
    return FaceSet(
        source="smilesmiled" if split == "all" else f"smilesmiled:{split}",
        images=images[sel],
        smile=labels[sel],
        emotion=emotion,
        emotion_label=emotion_label,
        ids=[rel[i] for i in sel],
        info={"raw": raw, "clean": clean, "conflict_groups_dropped": n_conflict_groups,
              "redundant_copies_dropped": n_redundant, "listed_groups": len(listed),
              "split_sizes": {s: int((splits == s).sum()) for s in SPLITS[:3]}, "seed": seed},
    )
