"""FER+ : FER2013's 48x48 grey faces with 10 crowd votes each, for both heads.

Layouts read, first match wins:
1. `FER2013{Train,Valid,Test}/label.csv` (no header:
   `image,"(x, y, w, h)",<10 vote columns>`) with the PNGs beside it (the FER+ repo layout);
2. `fer2013new.csv` (`Usage,Image name,<10 vote columns>`, Usage Training / PublicTest /
   PrivateTest), with the PNGs in the same `FER2013*/` folders, or, without them, the
   pixels from the original Kaggle `fer2013.csv` (same row order).
Vote columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt,
unknown, NF.

Labels, in `utjima.EMOTIONS` order:
- soft emotion = the votes for our 7 classes, renormalised (contempt / unknown / NF have no
  class); NaN when none of the 7 got a vote;
- emotion_label = the unique argmax over all 10 columns if it is one of the 7, else -1;
- smile = 1 if that unique argmax is happiness, 0 if another class (contempt included),
  -1 on ties, unknown and NF.

Cleaning (FER2013 holds byte-identical images across splits): a Valid image whose pixels
also occur in Train is dropped, and a Test image whose pixels occur in Train or Valid is
dropped, so selection and reporting never score a face the model trained on. `info`
carries the counts.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from utjima import EMOTIONS
from utjima.data.cache import ARCHIVES, DatasetError, cached_arrays
from utjima.data.faceset import FaceSet, pixel_digest, read_images, stack_uniform

SPLITS = ("train", "valid", "test")
FOLDERS = {"train": "FER2013Train", "valid": "FER2013Valid", "test": "FER2013Test"}
USAGE = {"Training": "train", "PublicTest": "valid", "PrivateTest": "test"}
VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                "contempt", "unknown", "NF")
# FER+ column feeding each of our classes, in EMOTIONS order.
_FER_OF = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness",
           "sad": "sadness", "surprise": "surprise", "neutral": "neutral"}
EMOTION_COLUMNS = np.array([VOTE_COLUMNS.index(_FER_OF[e]) for e in EMOTIONS])
HAPPINESS = VOTE_COLUMNS.index("happiness")
NO_FACE_COLUMNS = (VOTE_COLUMNS.index("unknown"), VOTE_COLUMNS.index("NF"))
IMAGE_SIZE = 48


def labels_from_votes(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 10) FER+ votes -> smile (N,) int8, emotion (N, 7) float32 (NaN rows),
    emotion_label (N,) int8."""
    votes = np.asarray(votes, dtype=np.float32)
    top = votes.max(axis=1, keepdims=True)
    unique = (votes == top).sum(axis=1) == 1
    arg = votes.argmax(axis=1)
    ok = unique & (top[:, 0] > 0)

    smile = np.full(len(votes), -1, np.int8)
    smile[ok & (arg == HAPPINESS)] = 1
    smile[ok & (arg != HAPPINESS) & ~np.isin(arg, NO_FACE_COLUMNS)] = 0

    seven = votes[:, EMOTION_COLUMNS]  # (N, 10) -> (N, 7) in EMOTIONS order
    total = seven.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        emotion = np.where(total > 0, seven / total, np.nan).astype(np.float32)

    ours = {int(c): k for k, c in enumerate(EMOTION_COLUMNS)}  # FER+ column -> our index
    emotion_label = np.array([ours.get(int(a), -1) if o else -1
                              for a, o in zip(arg, ok, strict=True)], dtype=np.int8)
    return smile, emotion, emotion_label


def _read_label_csv(path: Path) -> tuple[list[str], np.ndarray]:
    names, votes = [], []
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if not row or not row[0].strip():
                continue
            names.append(row[0].strip())
            votes.append([float(v) for v in row[2:12]])
    return names, np.array(votes, dtype=np.float32).reshape(-1, 10)


def _read_new_csv(path: Path) -> list[tuple[str, str, list[float]]]:
    """fer2013new.csv rows as (split, image name or '', votes), in fer2013.csv row order."""
    out = []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if header[:2] != ["Usage", "Image name"]:
            raise DatasetError(f"{path}: expected header 'Usage,Image name,...', got {header[:2]}")
        for row in reader:
            if not row:
                continue
            if row[0] not in USAGE:
                raise DatasetError(f"{path}: unknown Usage {row[0]!r}; expected one of "
                                   f"{list(USAGE)}")
            out.append((USAGE[row[0]], row[1].strip(), [float(v) for v in row[2:12]]))
    return out


def _read_fer2013_pixels(path: Path) -> list[np.ndarray]:
    """The original Kaggle fer2013.csv (`emotion,pixels,Usage`): one 48x48 image a row."""
    images = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            px = np.array(row["pixels"].split(), dtype=np.uint8)
            if px.size != IMAGE_SIZE * IMAGE_SIZE:
                raise DatasetError(f"{path}: a pixels row has {px.size} values, expected 2304")
            images.append(px.reshape(IMAGE_SIZE, IMAGE_SIZE))
    return images


def _build(root: Path) -> dict[str, np.ndarray]:
    """Decode every split: images (N,48,48), split (N,) int, ids, votes (N,10), digest."""
    names: list[str] = []
    split_of: list[int] = []
    votes: list[np.ndarray] = []
    images: list[np.ndarray] = []
    if all((root / FOLDERS[s] / "label.csv").is_file() for s in SPLITS):
        for k, s in enumerate(SPLITS):
            folder = root / FOLDERS[s]
            n, v = _read_label_csv(folder / "label.csv")
            missing = [x for x in n if not (folder / x).is_file()]
            if missing:
                raise DatasetError(f"{folder}/label.csv lists {len(missing)} missing images, e.g. "
                                   f"{missing[0]}")
            images += read_images([folder / x for x in n], color=False, desc=f"decode FER+ {s}")
            names += [f"{FOLDERS[s]}/{x}" for x in n]
            split_of += [k] * len(n)
            votes.append(v)
    elif (root / "fer2013new.csv").is_file():
        rows = _read_new_csv(root / "fer2013new.csv")
        have_png = all((root / FOLDERS[s]).is_dir() for s in SPLITS)
        if not have_png and not (root / "fer2013.csv").is_file():
            raise DatasetError(f"{root}: fer2013new.csv but neither FER2013*/ image folders nor "
                               "fer2013.csv")
        pixels = None if have_png else _read_fer2013_pixels(root / "fer2013.csv")
        if pixels is not None and len(pixels) != len(rows):
            raise DatasetError(f"{root}: fer2013.csv has {len(pixels)} rows, fer2013new.csv "
                               f"{len(rows)}")
        keep = []
        for i, (s, name, v) in enumerate(rows):
            if not name:  # FER+ dropped this FER2013 row (no face)
                continue
            keep.append(i)
            names.append(f"{FOLDERS[s]}/{name}")
            split_of.append(SPLITS.index(s))
            votes.append(np.array(v, np.float32).reshape(1, 10))
        if pixels is None:
            images = read_images([root / n for n in names], color=False, desc="decode FER+")
        else:
            images = [pixels[i] for i in keep]
    else:
        raise DatasetError(
            f"{root}: no FER+ labels; expected FER2013Train/label.csv (and Valid, Test) or "
            "fer2013new.csv")
    stacked = stack_uniform(images, "FER+")
    return {
        "images": stacked,
        "split": np.array(split_of, np.int8),
        "ids": np.array(names),
        "votes": np.concatenate(votes) if votes else np.zeros((0, 10), np.float32),
        "digest": pixel_digest(stacked),
    }


def twin_mask(digest: np.ndarray, split: np.ndarray) -> np.ndarray:
    """(N,) bool, True for images to drop: Valid twins of Train, Test twins of Train or Valid."""
    train = set(digest[split == 0].tolist())
    valid_all = set(digest[split == 1].tolist())
    drop = np.zeros(len(digest), dtype=bool)
    drop[split == 1] = np.isin(digest[split == 1], list(train))
    drop[split == 2] = np.isin(digest[split == 2], list(train | valid_all))
    return drop


def load(root: str | Path, split: str = "train", cache: str | Path | None = None) -> FaceSet:
    """One FER+ split with soft/majority emotions and smile labels, cross-split twins removed."""
    if split not in SPLITS:
        raise ValueError(f"unknown FER+ split {split!r}; choose one of: {', '.join(SPLITS)}")
    root = Path(root)
    files = [f"{FOLDERS[s]}/label.csv" for s in SPLITS] + ["fer2013new.csv", "fer2013.csv"]
    a = cached_arrays("ferplus", root, [FOLDERS[s] for s in SPLITS], files,
                      lambda: _build(root), cache)
    split_arr, digest = a["split"], a["digest"]

    drop = twin_mask(digest, split_arr)
    k = SPLITS.index(split)
    sel = np.flatnonzero((split_arr == k) & ~drop)
    raw = {s: int((split_arr == i).sum()) for i, s in enumerate(SPLITS)}
    removed = {s: int(((split_arr == i) & drop).sum()) for i, s in enumerate(SPLITS)}
    clean = {s: raw[s] - removed[s] for s in SPLITS}
    in_split = digest[split_arr == k]
    info = ARCHIVES["ferplus"]
    if raw == info.raw and info.clean and clean != info.clean:
        raise DatasetError(f"{root}: FER+ after twin removal has {clean}, expected {info.clean}")

    smile, emotion, emotion_label = labels_from_votes(a["votes"][sel])
    return FaceSet(
        source=f"ferplus:{split}",
        images=a["images"][sel],
        smile=smile,
        emotion=emotion,
        emotion_label=emotion_label,
        ids=a["ids"][sel],
        info={"raw": raw, "twins_removed": removed, "clean": clean,
              "identical_within_split": int(len(in_split) - len(set(in_split.tolist())))},
    )
