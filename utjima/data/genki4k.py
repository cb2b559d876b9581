"""GENKI-4K: the field's standard smile benchmark. TEST ONLY: never train or tune on it.

Layout read (`labels.txt` + files): line N of `labels.txt` is `smile yaw pitch roll` for
the image whose name holds the number N (`file0001.jpg`). Images may sit anywhere under
the root: in the original `files/`, or in the crop archive's
`{train,test}_folder/{0,1}/` (whose folder label must agree with `labels.txt`).
`crop_bug_duplicates_to_drop.txt` (one relative path a line) lists crops the Haar script
re-saved under a new name; they are dropped. The shared crop archive then leaves 3,871
unique crops, 2,100 smile and 1,771 non-smile, and `load` checks exactly that.
The crop archive's folder split is ignored: all of GENKI-4K is held out.
"""

from __future__ import annotations

import re
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

DROP_LIST = "crop_bug_duplicates_to_drop.txt"
NO_FACE_LIST = "haar_recheck_no_face.txt"
_NUM = re.compile(r"(\d+)")


def _index(rel: str) -> int:
    m = _NUM.findall(rel.rpartition("/")[2])
    if not m:
        raise DatasetError(f"GENKI file name without an index number: {rel}")
    return int(m[-1])


def _read_list(path: Path) -> list[str]:
    if not path.is_file():
        return []
    return [ln.strip() for ln in path.read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]


def load(root: str | Path, cache: str | Path | None = None) -> FaceSet:
    """All unique GENKI-4K faces (RGB), `test_only=True`."""
    root = Path(root)
    labels_file = root / "labels.txt"
    if not labels_file.is_file():
        raise DatasetError(f"{root}: no labels.txt; is this a GENKI-4K folder?")
    rows = [ln.split() for ln in labels_file.read_text().splitlines() if ln.strip()]
    labels = np.array([int(float(r[0])) for r in rows], dtype=np.int8)  # line N -> labels[N-1]

    rel = list_images(root)
    if not rel:
        raise DatasetError(f"{root}: labels.txt but no images")
    subdirs = sorted({r.rpartition("/")[0] for r in rel})

    decoded: list[np.ndarray] = []

    def build() -> dict[str, np.ndarray]:
        imgs = read_images([root / r for r in rel], color=True, desc="decode GENKI-4K")
        try:
            return {"images": stack_uniform(imgs, "GENKI-4K"), "rel": np.array(rel)}
        except ValueError:  # original GENKI files differ in size: keep a list, cache nothing
            decoded.extend(imgs)
            return {"rel": np.array(rel)}

    arrays = cached_arrays("genki4k", root, subdirs, ["labels.txt"], build, cache)
    if "images" in arrays:
        images: np.ndarray | list[np.ndarray] = arrays["images"]
    else:
        images = decoded or read_images([root / r for r in rel], color=True)

    idx = np.array([_index(r) for r in rel])
    if idx.min() < 1 or idx.max() > len(labels):
        raise DatasetError(f"{root}: file index outside labels.txt's {len(labels)} lines")
    if len(set(idx.tolist())) != len(idx):
        raise DatasetError(f"{root}: two files share one GENKI index")
    order = np.argsort(idx, kind="stable")  # GENKI order (file index), not folder order
    idx, rel = idx[order], [rel[i] for i in order]
    images = images[order] if isinstance(images, np.ndarray) else [images[i] for i in order]
    smile = labels[idx - 1]
    # The crop archive's folders 0/1 repeat the label; a disagreement means a broken copy.
    for r, s in zip(rel, smile, strict=True):
        folder = r.rpartition("/")[0].rpartition("/")[2]
        if folder in ("0", "1") and int(folder) != s:
            raise DatasetError(f"{root}/{r}: folder says {folder}, labels.txt says {s}")

    drop = set(_read_list(root / DROP_LIST))
    unknown = drop - set(rel)
    if unknown:
        raise DatasetError(f"{root}/{DROP_LIST} names files that are not there: "
                           f"{sorted(unknown)[:3]}")
    keep = np.array([r not in drop for r in rel])
    raw = {"all": len(rel), "smile": int((smile == 1).sum()), "non_smile": int((smile == 0).sum())}

    if isinstance(images, np.ndarray):
        images = images[keep]
    else:
        images = [im for im, k in zip(images, keep, strict=True) if k]
    smile, rel_kept, idx = smile[keep], [r for r, k in zip(rel, keep, strict=True) if k], idx[keep]
    clean = {"all": len(rel_kept), "smile": int((smile == 1).sum()),
             "non_smile": int((smile == 0).sum())}
    a = ARCHIVES["genki4k"]
    if raw == a.raw and clean != a.clean:
        raise DatasetError(f"{root}: GENKI-4K after cleaning has {clean}, documented {a.clean}")

    dup_left = 0
    if isinstance(images, np.ndarray):
        dup_left = len(images) - len(set(pixel_digest(images).tolist()))
    no_face = sorted(set(_read_list(root / NO_FACE_LIST)) & set(rel_kept))
    emotion, emotion_label = no_emotion(len(rel_kept))
    return FaceSet(
        source="genki4k",
        images=images,
        smile=smile,
        emotion=emotion,
        emotion_label=emotion_label,
        ids=[f"file{i:04d}" for i in idx],
        test_only=True,
        info={"raw": raw, "dropped_crop_bug": len(drop), "clean": clean,
              "identical_pixels_left": dup_left, "haar_no_face": no_face},
    )
