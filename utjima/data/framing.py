"""Canonical face crops: every dataset image re-framed by the model's crop policy.

Live crops come from BlazeFace + `CropPolicy`; the research datasets were cropped by other
detectors at other scales (FER+ is framed 1.19x the BlazeFace box, SMILEsmileD 0.86x,
see benchmarks/bench_crop_framing.py). `canonical_crops` runs each dataset crop through the
same detector and policy (`utjima.faces.recrop`), so the model trains and is measured on
exactly the framing it meets in a camera. Results are cached per (source, policy).

Images BlazeFace cannot find are dropped from training; for evaluation they fall back to
the whole dataset crop resized (`found` tells which), so test sets keep every image.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from utjima.faces import CropPolicy, _as_rgb, _to_gray, _warp, recrop
from utjima.utils import atomic_write


def _whole(image: np.ndarray, size: int, channels: str) -> np.ndarray:
    """The whole crop resized with the policy's sampler: the fallback framing."""
    h, w = image.shape[:2]
    step = w / size
    m = np.array([[step, 0, 0], [0, h / size, 0]])
    out = _warp(_as_rgb(image), m, size, size, step=step)  # (S, S, 3)
    return (_to_gray(out) if channels == "gray" else out).transpose(2, 0, 1)  # -> (C, S, S)


def policy_key(policy: CropPolicy, channels: str) -> str:
    blob = json.dumps({"policy": policy.to_json(), "channels": channels, "v": 1}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def canonical_crops(images, policy: CropPolicy, channels: str, cache: Path | None = None,
                    name: str = "", progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Dataset crops -> (uint8 (N, C, S, S) policy crops, bool (N,) face found).

    uint8 keeps 40k crops in ~170 MB; pixels are rounded from the float crop (<= 0.5/255).
    """
    path = None
    if cache is not None:
        path = Path(cache) / f"{name}.{policy_key(policy, channels)}.npz"
        if path.is_file():
            z = np.load(path)
            if len(z["found"]) == len(images):
                return z["crops"], z["found"]
    c = 1 if channels == "gray" else 3
    out = np.empty((len(images), c, policy.size, policy.size), np.uint8)
    found = np.zeros(len(images), bool)
    for i, img in enumerate(tqdm(images, desc=f"framing {name}", disable=not progress, unit="img")):
        crop = recrop(img, policy, channels=channels)
        found[i] = crop is not None
        if crop is None:
            crop = _whole(img, policy.size, channels)
        out[i] = np.clip(np.round(crop * 255), 0, 255)
    if path is not None:
        with atomic_write(path) as tmp:
            np.savez(tmp, crops=out, found=found)
    return out, found


def canonical_set(fs, policy: CropPolicy, channels: str, drop_missing: bool,
                  cache: Path | None = None, progress: bool = True):
    """A FaceSet whose images are the canonical crops, uint8 (N, S, S) grey or (N, S, S, 3) RGB.

    `drop_missing` (training) removes faces BlazeFace cannot find; otherwise (evaluation) they
    keep the whole-crop fallback and `info["framing"]["found"]` marks them.
    """
    # the ids pin the exact images, so a --limit subset never reads or clobbers the full set's cache
    ids = hashlib.sha256("\n".join(map(str, fs.ids)).encode()).hexdigest()[:8]
    name = f"{fs.source.replace(':', '_').replace('/', '_')}.{ids}"
    crops, found = canonical_crops(fs.images, policy, channels, cache, name=name, progress=progress)
    # (N, C, S, S) -> (N, S, S) grey or (N, S, S, C)
    hwc = crops[:, 0] if channels == "gray" else crops.transpose(0, 2, 3, 1)
    out = fs.subset(np.flatnonzero(found)) if drop_missing else fs.subset(np.arange(len(fs)))
    out.images = np.ascontiguousarray(hwc[found] if drop_missing else hwc)
    out.info = {**fs.info, "framing": {"policy": policy_key(policy, channels), "n": int(len(fs)),
                                       "found": int(found.sum()),
                                       "dropped": int((~found).sum()) if drop_missing else 0}}
    if not drop_missing:
        out.info["framing"]["found_mask"] = found
    return out
