"""`utjima data prepare|status`: unpack and inspect the research datasets.

prepare: verify each archive's sha256, unpack it into the cache, decode and clean it, print
the counts. status: where each archive and its unpacked copy are, whether verified, and the
counts after cleaning. A missing archive fails with the message saying which file to put
where.
"""

from __future__ import annotations

import argparse

from utjima.data import cache
from utjima.data.cache import DatasetError, DatasetMissing


def _splits(name: str) -> list[str]:
    return {"smilesmiled": ["train", "val", "test"], "ferplus": ["train", "valid", "test"],
            "genki4k": ["all"]}[name]


def _counts(name: str, root, cache_arg) -> list[str]:
    """Load every split and describe it (decodes once, then reads the npz cache)."""
    from utjima.data import ferplus, genki4k, smilesmiled

    lines = []
    for split in _splits(name):
        if name == "smilesmiled":
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
    elif name == "ferplus":
        t = info["twins_removed"]
        lines.append(f"    cleaning: removed {t['valid']} Valid images with a twin in Train and "
                     f"{t['test']} Test images with a twin in Train or Valid")
    else:
        lines.append(f"    cleaning: {info['raw']['all']} crops -> {info['clean']['all']} "
                     f"({info['dropped_crop_bug']} crop-bug copies dropped); test only")
    return lines


def _status(a: argparse.Namespace) -> int:
    ok = True
    print(f"archives: {cache.source_dir(a.source)}")
    print(f"cache:    {cache.cache_dir(a.cache)}")
    for name, info in cache.ARCHIVES.items():
        path = cache.archive_path(name, a.source)
        prepared = cache.is_prepared(name, a.cache)
        if path.is_file():
            good = cache.sha256_file(path) == info.sha256
            state = "archive verified" if good else "archive sha256 MISMATCH"
            ok &= good or prepared
        else:
            state = "archive missing"
        where = cache.dataset_dir(name, a.cache)
        print(f"{name}: {state}; " + (f"unpacked at {where}" if prepared else "not unpacked"))
        if prepared:
            try:
                print("\n".join(_counts(name, where, a.cache)))
            except DatasetError as e:
                ok = False
                print(f"    error: {e}")
        elif not path.is_file():
            ok = False
            print(f"    {cache.missing_message(name, a.source)}")
        else:
            print("    run `utjima data prepare` to unpack it")
    return 0 if ok else 1


def _prepare(a: argparse.Namespace) -> int:
    from utjima.cli import CLIError

    problems = []
    for name in cache.ARCHIVES:
        try:
            root = cache.prepare(name, source=a.source, cache=a.cache, progress=True)
        except DatasetMissing as e:
            problems.append(str(e))
            print(f"{name}: missing")
            continue
        except DatasetError as e:
            problems.append(str(e))
            print(f"{name}: failed")
            continue
        print(f"{name}: ready at {root}")
        print("\n".join(_counts(name, root, a.cache)))
    if problems:
        raise CLIError("\n".join(problems))
    return 0


def run_data(args: argparse.Namespace) -> int:
    if args.action == "status":
        return _status(args)
    if args.action == "prepare":
        return _prepare(args)
    raise ValueError(f"unknown data action {args.action!r}; choose prepare or status")
