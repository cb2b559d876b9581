"""Unpack and inspect the research datasets (`utjima data prepare|status`).

`prepare_all`: verify each archive's sha256, unpack it into the cache, decode and clean it,
print the counts. `status`: where each archive and its unpacked copy are, whether verified,
and the counts after cleaning. A missing archive fails with the message saying which file to
put where.
"""

from __future__ import annotations

import os

from utjima.data import cache as _cache
from utjima.data.cache import DatasetError, DatasetMissing
from utjima.utils import sha256_file

PathLike = str | os.PathLike | None


def _splits(name: str) -> list[str]:
    return {"smilesmiled": ["train", "val", "test"], "ferplus": ["train", "valid", "test"],
            "genki4k": ["all"], "ckplus": ["train", "test"]}[name]


def _counts(name: str, root, cache_arg) -> list[str]:
    """Load every split and describe it (decodes once, then reads the npz cache)."""
    from utjima.data import ckplus, ferplus, genki4k, smilesmiled

    lines = []
    for split in _splits(name):
        if name == "ckplus":
            fs = ckplus.load(root, split, cache=cache_arg)
        elif name == "smilesmiled":
            fs = smilesmiled.load(root, split, cache=cache_arg)
        elif name == "ferplus":
            fs = ferplus.load(root, split, cache=cache_arg)
        else:
            fs = genki4k.load(root, cache=cache_arg)
        lines.append("    " + fs.describe())
    info = fs.info
    if name == "smilesmiled":
        lines.append(f"    cleaning: {info['raw']['all']} files -> {info['clean']['all']} "
                     f"({info['conflict_groups_dropped']} conflicting groups dropped whole, "
                     f"{info['redundant_copies_dropped']} redundant copies dropped)")
    elif name == "ckplus":
        held = ", ".join(ckplus.TEST_SUBJECTS)
        lines.append(f"    subjects held out (test): {held}; split by subject only")
    elif name == "ferplus":
        t = info["twins_removed"]
        lines.append(f"    cleaning: removed {t['valid']} Valid images with a twin in Train and "
                     f"{t['test']} Test images with a twin in Train or Valid")
    else:
        lines.append(f"    cleaning: {info['raw']['all']} crops -> {info['clean']['all']} "
                     f"({info['dropped_crop_bug']} crop-bug copies dropped); test only")
    return lines


def status(source: PathLike = None, cache: PathLike = None) -> bool:
    """Print where each archive and its unpacked copy are; True when every one is usable."""
    ok = True
    print(f"archives: {_cache.source_dir(source)}")
    print(f"cache:    {_cache.cache_dir(cache)}")
    for name, info in _cache.ARCHIVES.items():
        path = _cache.archive_path(name, source)
        prepared = _cache.is_prepared(name, cache)
        if path.is_file():
            good = sha256_file(path) == info.sha256
            state = "archive verified" if good else "archive sha256 MISMATCH"
            ok &= good or prepared
        else:
            state = "archive missing"
        where = _cache.dataset_dir(name, cache)
        print(f"{name}: {state}; " + (f"unpacked at {where}" if prepared else "not unpacked"))
        if prepared:
            try:
                print("\n".join(_counts(name, where, cache)))
            except DatasetError as e:
                ok = False
                print(f"    error: {e}")
        elif not path.is_file():
            ok = False
            print(f"    {_cache.missing_message(name, source)}")
        else:
            print("    run `utjima data prepare` to unpack it")
    return ok


def prepare_all(source: PathLike = None, cache: PathLike = None) -> None:
    """Prepare every archive, printing the counts; raise DatasetError naming every problem."""
    problems = []
    for name in _cache.ARCHIVES:
        try:
            root = _cache.prepare(name, source=source, cache=cache, progress=True)
        except DatasetMissing as e:
            problems.append(str(e))
            print(f"{name}: missing")
            continue
        except DatasetError as e:
            problems.append(str(e))
            print(f"{name}: failed")
            continue
        print(f"{name}: ready at {root}")
        print("\n".join(_counts(name, root, cache)))
    if problems:
        raise DatasetError("\n".join(problems))
