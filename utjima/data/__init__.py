"""Data: dataset adapters, the archive cache, augmentation (torch only in `torchdata`).

    from utjima.data import load
    train = load("ferplus")            # FaceSet: images + smile / emotion labels, masks
    val = load("smilesmiled:val")
    test = load("genki4k")             # test only: training code refuses it
    clips = load("clips:recordings/")  # ClipSet: our recorded videos
    val = load_canonical("ferplus:valid", size=64, channels="gray", training=False)
                                       # every face re-framed by the model's crop policy

Specs (`utjima train --data`, `utjima evaluate --data`):
- `smilesmiled[:train|val|test|all]` (default train): grey 64x64, smile labels;
- `ferplus[:train|valid|test]` (default train): grey 48x48, emotions + smile, twins removed;
- `genki4k`: RGB 64x64, smile labels, held-out test set (never train or tune on it);
- `ckplus[:train|test|all|train=K/N|test=K/N|fit=K/N|val=K/N]` (default train): CK+ neutral ->
  apex sequences as face-crop clips, split by subject only (`utjima.data.ckplus`); `test` =
  the subjects the shipped model never saw (test only);
- `clips:DIR`: a clip folder (docs/clip_format.md);
- `images:DIR`: face images in label sub-folders (`smile/`, `neutral/`, `happy/`, ...).
The research archives are unpacked on first use (see `utjima.data.cache`).
"""

from __future__ import annotations

import os
from pathlib import Path

from utjima.data.cache import DatasetError, DatasetMissing
from utjima.data.clips import Clip, ClipSet
from utjima.data.faceset import FaceSample, FaceSet

__all__ = ["load", "load_canonical", "parse_spec", "check_spec", "held_out", "SPECS",
           "TEST_ONLY", "FaceSample", "FaceSet", "Clip", "ClipSet", "DatasetError",
           "DatasetMissing"]

# name -> accepted splits (first = default); None = takes a folder argument instead
SPECS: dict[str, tuple[str, ...] | None] = {
    "smilesmiled": ("train", "val", "test", "all"),
    "ferplus": ("train", "valid", "test"),
    "genki4k": ("all",),
    "ckplus": ("train", "test", "all", "train=K/N", "test=K/N", "fit=K/N", "val=K/N"),
    "clips": None,
    "images": None,
}
_ALIASES = {"smilesmiled": {"valid": "val"}, "ferplus": {"val": "valid"},
            "genki4k": {"test": "all"}}


def _valid_specs() -> str:
    out = []
    for name, splits in SPECS.items():
        out.append(f"{name}:DIR" if splits is None else f"{name}[:{'|'.join(splits)}]")
    return ", ".join(out)


def parse_spec(spec: str) -> tuple[str, str]:
    """'ferplus:test' -> ('ferplus', 'test'); 'clips:DIR' -> ('clips', 'DIR'). Raises listing
    the valid specs."""
    name, _, arg = spec.partition(":")
    if name not in SPECS:
        raise DatasetError(f"unknown data spec {spec!r}; valid: {_valid_specs()}")
    splits = SPECS[name]
    if splits is None:
        if not arg:
            raise DatasetError(f"data spec {spec!r} needs a folder: {name}:DIR")
        return name, arg
    arg = _ALIASES.get(name, {}).get(arg, arg) or splits[0]
    if name == "ckplus":  # subject folds: the adapter checks K/N and lists the valid forms
        from utjima.data.ckplus import parse_split
        parse_split(arg)
        return name, arg
    if arg not in splits:
        raise DatasetError(f"unknown split {arg!r} in {spec!r}; {name} has: {', '.join(splits)}")
    return name, arg


TEST_ONLY = ("genki4k",)  # sets that are only ever reported on


def held_out(spec: str) -> bool:
    """True for data that must never train or choose anything: a test split, a split that
    contains one ("all"), a test-only set (GENKI-4K)."""
    name, arg = parse_spec(spec)
    if SPECS[name] is None:  # a folder of one's own
        return False
    return name in TEST_ONLY or arg.split("=")[0] in ("test", "all")


def check_spec(spec: str) -> tuple[str, str]:
    """`parse_spec`, plus: the folder of `clips:DIR` / `images:DIR` exists, a research set is
    unpacked or its archive is where `load` will look. Reads no data: the CLI calls it for
    every spec before any work starts."""
    from utjima.data import cache

    name, arg = parse_spec(spec)
    if SPECS[name] is None:
        if not Path(arg).is_dir():
            raise DatasetError(f"data spec {spec!r}: {arg} is not a folder")
    elif not cache.is_prepared(name) and not cache.archive_path(name).is_file():
        raise DatasetMissing(cache.missing_message(name))
    return name, arg


def load(
    spec: str,
    source: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    seed: int = 0,
    limit: int | None = None,
) -> FaceSet | ClipSet:
    """Load a data spec (see the module docstring). `limit` keeps a seeded random subset."""
    name, arg = parse_spec(spec)
    if name == "clips":
        from utjima.data import clips
        return clips.load(Path(arg)).limit(limit, seed)
    if name == "images":
        from utjima.data import images
        return images.load(Path(arg)).limit(limit, seed)

    from utjima.data import cache as _cache
    root = _cache.prepare(name, source=source, cache=cache)
    if name == "smilesmiled":
        from utjima.data import smilesmiled
        fs = smilesmiled.load(root, arg, seed=0, cache=cache)  # the split seed is fixed on purpose
    elif name == "ferplus":
        from utjima.data import ferplus
        fs = ferplus.load(root, arg, cache=cache)
    elif name == "ckplus":
        from utjima.data import ckplus
        return ckplus.load(root, arg, cache=cache).limit(limit, seed)
    else:
        from utjima.data import genki4k
        fs = genki4k.load(root, cache=cache)
    return fs.limit(limit, seed)


def load_canonical(
    spec: str,
    *,
    size: int,
    channels: str,
    training: bool,
    limit: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> FaceSet | ClipSet:
    """`load(spec)`, with every still re-framed by the default crop policy at `size` x `size`
    (utjima.data.framing), which is what the model meets in a camera. `training`: refuse
    held-out test sets and drop faces BlazeFace cannot find; otherwise (evaluation) keep
    them with the whole-crop fallback. Clip sets come back as loaded."""
    from utjima.data.cache import cache_dir
    from utjima.data.framing import canonical_set
    from utjima.faces import CropPolicy

    ds = load(spec, limit=limit, seed=seed)
    if training and ds.test_only:
        raise DatasetError(f"{spec} is a held-out test set: never train or select on it")
    if isinstance(ds, FaceSet):
        ds = canonical_set(ds, CropPolicy.default(size=size), channels, drop_missing=training,
                           cache=cache_dir() / "framing", progress=progress)
    return ds
