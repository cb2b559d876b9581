"""A folder of face images labelled by sub-folder name, for quick evaluation on user data.

    my_faces/smile/*.jpg      my_faces/1/*.jpg      my_faces/happy/*.jpg
    my_faces/neutral/*.jpg    my_faces/0/*.jpg      my_faces/surprise/*.jpg ...

The first folder under the root is the label (deeper folders are fine):
- smile folders (`smile`, `smiling`, `1`, `positive(s)`) -> smile 1, emotion masked;
- non-smile folders (`non_smile`, `no_smile`, `nonsmile`, `not_smile`, `0`, `negative(s)`)
  -> smile 0, emotion masked;
- emotion folders (`utjima.EMOTIONS` names and common synonyms: `happiness`, `anger`, ...)
  -> that emotion, and smile = 1 for happy, 0 otherwise (the FER+ rule); `neutral` is the
  emotion neutral, so smile 0.
Images are read as RGB at their own size; they should be face crops (run them through
`utjima.faces` first when they are whole photos).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from utjima import EMOTIONS
from utjima.data.cache import DatasetError
from utjima.data.faceset import IMAGE_EXTS, N_EMOTIONS, FaceSet, list_images, read_image

SMILE_FOLDERS = ("smile", "smiling", "1", "positive", "positives")
NON_SMILE_FOLDERS = ("non_smile", "non-smile", "nonsmile", "no_smile", "not_smile", "0", "negative",
                     "negatives")
EMOTION_SYNONYMS = {
    "anger": "angry", "disgusted": "disgust", "fearful": "fear", "scared": "fear",
    "happiness": "happy", "sadness": "sad", "surprised": "surprise",
}


def folder_label(name: str) -> tuple[int, int]:
    """Sub-folder name -> (smile, emotion_label); raises listing the accepted names."""
    key = name.lower()
    if key in SMILE_FOLDERS:
        return 1, -1
    if key in NON_SMILE_FOLDERS:
        return 0, -1
    key = EMOTION_SYNONYMS.get(key, key)
    if key in EMOTIONS:
        return int(key == "happy"), EMOTIONS.index(key)
    valid = list(SMILE_FOLDERS) + list(NON_SMILE_FOLDERS) + list(EMOTIONS) + list(EMOTION_SYNONYMS)
    raise DatasetError(f"folder name {name!r} is not a label; use one of: {', '.join(valid)}")


def load(root: str | Path) -> FaceSet:
    """All images under `root/<label>/...` as an RGB FaceSet (images kept at their own size)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    paths = [root / r for r in list_images(root)]
    loose = [p for p in paths if p.parent == root]
    if loose:
        raise DatasetError(f"{root}: {len(loose)} images sit directly in the folder "
                           f"(e.g. {loose[0].name}); "
                           f"put them in label sub-folders such as smile/ and neutral/")
    if not paths:
        raise DatasetError(f"{root}: no images ({', '.join(IMAGE_EXTS)}) in label sub-folders")
    labels = [folder_label(p.relative_to(root).parts[0]) for p in paths]
    smile = np.array([s for s, _ in labels], np.int8)
    emotion_label = np.array([e for _, e in labels], np.int8)
    emotion = np.full((len(paths), N_EMOTIONS), np.nan, np.float32)
    has = emotion_label >= 0
    emotion[has] = np.eye(N_EMOTIONS, dtype=np.float32)[emotion_label[has]]
    images = [read_image(p, color=True) for p in paths]
    if len({im.shape for im in images}) == 1:
        images = np.stack(images)
    return FaceSet(
        source=f"images:{root}",
        images=images,
        smile=smile,
        emotion=emotion,
        emotion_label=emotion_label,
        ids=[p.relative_to(root).as_posix() for p in paths],
        info={"folders": sorted({p.relative_to(root).parts[0] for p in paths})},
    )
