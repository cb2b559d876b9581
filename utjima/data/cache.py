"""Where the research archives are, and their verified, unpacked copies in the cache.

The archives (`smilesmiled.tar.gz`, `ferplus.tar.gz`, `genki4k.tar.gz`,
`ckplus_sequences.tar.gz`) are never part of
the repository. `prepare(name)` checks an archive's sha256 and unpacks it once into
`<cache>/datasets/<name>/`, atomically: it extracts into a temporary folder beside the
target, writes a marker holding the sha256, then renames. A folder without a matching
marker is a half-finished or stale copy and is redone.

Lookup order for the archives: an explicit `source` argument (the CLI's `--source`), else
`$UTJIMA_DATASETS`, else `<repo>/../shared/datasets`. The cache is `cache` / `--cache`, else
`$UTJIMA_CACHE`, else `~/.cache/utjima`.

Pure stdlib + numpy, so `utjima data status` stays light.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utjima.utils import UtjimaError, atomic_write, sha256_file

REPO_ROOT = Path(__file__).resolve().parents[2]
MARKER = ".utjima-prepared"  # file in a prepared folder; holds the archive's sha256


@dataclass(frozen=True)
class ArchiveInfo:
    """One research archive and what cleaning must leave of it."""

    name: str  # dataset name used in specs ("ferplus") and as the cache folder name
    file: str  # archive file name in the datasets folder
    sha256: str  # from ../shared/datasets/README.md
    top: str  # single top-level folder inside the archive (stripped on extraction)
    raw: dict[str, int]  # documented image counts before cleaning
    clean: dict[str, int]  # documented counts after cleaning (checked by the adapters)


ARCHIVES: dict[str, ArchiveInfo] = {
    a.name: a
    for a in (
        ArchiveInfo(
            "smilesmiled", "smilesmiled.tar.gz",
            "259eb0309332f66091da47403311cc994b7a351fbff423d168fbefb72dc3f178",
            "smilesmiled",
            raw={"all": 13165, "smile": 3690, "non_smile": 9475},
            # 5 conflicting pairs dropped whole (10 files), 2 negative pairs keep one each.
            clean={"all": 13153, "smile": 3685, "non_smile": 9468},
        ),
        ArchiveInfo(
            "ferplus", "ferplus.tar.gz",
            "54c33b04e44748bcfce71dc74736ce7df4b2bba05cbeb9165650dc0092995f69",
            "ferplus",
            raw={"train": 28558, "valid": 3579, "test": 3573},
            # Valid loses 279 twins of Train, Test 314 twins of Train or Valid (measured here;
            # SOURCE.md documents 556 cross-split groups, not per-split removals).
            clean={"train": 28558, "valid": 3300, "test": 3259},
        ),
        ArchiveInfo(
            "genki4k", "genki4k.tar.gz",
            "dedf31fba4b48534ca8dc9bc4f9b203f4a7e9abd128a59455316efeec65d82f0",
            "genki4k_crops64",
            raw={"all": 4000, "smile": 2162, "non_smile": 1838},
            clean={"all": 3871, "smile": 2100, "non_smile": 1771},
        ),
        ArchiveInfo(
            "ckplus", "ckplus_sequences.tar.gz",
            "f3cb0891e3351758f2b45db9c5e9c32db4797a47d8fad60e87d117e912e9627c",
            "ckplus_sequences",
            raw={"sequences": 40, "frames": 684, "subjects": 10},
            clean={"sequences": 40, "frames": 684, "subjects": 10},  # nothing to clean (SOURCE.md)
        ),
    )
}


class DatasetError(UtjimaError):
    """A dataset is unusable: missing, corrupt, not what its documentation says, or asked
    for a use it must not have (a test set for training)."""


class DatasetMissing(DatasetError):
    """An archive is not where we look; the message says which file to put where."""


def _unknown(name: str) -> DatasetError:
    return DatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(ARCHIVES)}")


def info(name: str) -> ArchiveInfo:
    if name not in ARCHIVES:
        raise _unknown(name)
    return ARCHIVES[name]


def source_dir(source: str | os.PathLike | None = None) -> Path:
    """The folder that should hold the archives."""
    if source:
        return Path(source).expanduser()
    env = os.environ.get("UTJIMA_DATASETS")
    if env:
        return Path(env).expanduser()
    return REPO_ROOT.parent / "shared" / "datasets"


def cache_dir(cache: str | os.PathLike | None = None) -> Path:
    """The cache root (`<cache>/datasets/<name>/` for unpacked data, `<cache>/arrays/` for npz)."""
    if cache:
        return Path(cache).expanduser()
    env = os.environ.get("UTJIMA_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "utjima"


def archive_path(name: str, source: str | os.PathLike | None = None) -> Path:
    return source_dir(source) / info(name).file


def dataset_dir(name: str, cache: str | os.PathLike | None = None) -> Path:
    return cache_dir(cache) / "datasets" / info(name).name


def missing_message(name: str, source: str | os.PathLike | None = None) -> str:
    a = info(name)
    where = archive_path(name, source)
    return (
        f"dataset {name!r} is not available: put {a.file} at {where} "
        f"(sha256 {a.sha256}), or point $UTJIMA_DATASETS or --source at the folder that holds it; "
        f"see ../shared/datasets/README.md for what the archives are"
    )


def is_prepared(name: str, cache: str | os.PathLike | None = None) -> bool:
    """True when the unpacked folder exists and its marker holds the expected sha256."""
    marker = dataset_dir(name, cache) / MARKER
    try:
        return marker.read_text().strip() == info(name).sha256
    except OSError:
        return False


def verify(name: str, source: str | os.PathLike | None = None) -> Path:
    """Check the archive's sha256; return its path. Raises DatasetMissing / DatasetError."""
    a = info(name)
    path = archive_path(name, source)
    if not path.is_file():
        raise DatasetMissing(missing_message(name, source))
    got = sha256_file(path)
    if got != a.sha256:
        raise DatasetError(
            f"{path} has sha256 {got}, expected {a.sha256}: the file is damaged or a different "
            f"version; replace it with the archive listed in ../shared/datasets/README.md"
        )
    return path


def prepare(
    name: str,
    source: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    progress: bool = False,
) -> Path:
    """Verify and unpack `name` once; return `<cache>/datasets/<name>/`.

    Already prepared (marker matches) -> returns at once, without touching the archive, so
    a user's machine keeps working from the cache after the archives are gone.
    """
    a = info(name)
    target = dataset_dir(name, cache)
    if is_prepared(name, cache):
        return target
    path = verify(name, source)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=target.parent))
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = tar.getmembers()
            # Only plain files and folders under the one top folder: no links, no "..".
            bad = [m.name for m in members
                   if m.name.split("/")[0] != a.top or ".." in m.name.split("/")
                   or not (m.isfile() or m.isdir())]
            if bad:
                raise DatasetError(f"{path}: unexpected entries (want files under {a.top}/): "
                                   f"{bad[:3]}")
            # tarfile's "data" filter: Python >= 3.10.12
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            it = members
            if progress:
                from tqdm import tqdm

                it = tqdm(members, desc=f"unpack {a.file}", unit="file", leave=False)
            for m in it:
                tar.extract(m, tmp, **safe)
        top = tmp / a.top
        (top / MARKER).write_text(a.sha256 + "\n")
        if target.exists():  # stale or half-written copy from an older run
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(top, target)
        except OSError:
            if not is_prepared(name, cache):  # else another process finished first: fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# --- decoded-array cache --------------------------------------------------------------

def _tree_signature(root: Path, subdirs: list[str], files: list[str]) -> str:
    """Cheap fingerprint of a dataset folder: its marker, label files, and image names.

    A prepared folder's marker pins the archive; for other folders (fixtures, user data)
    the label files' size and mtime and the image names catch what changes between runs.
    Image contents are not hashed (an image rewritten in place under the same name is
    not noticed); no per-image stat, so it stays ~20 ms for FER+'s 35k files.
    """
    h = hashlib.sha1(str(root.resolve()).encode())
    marker = root / MARKER
    if marker.is_file():
        h.update(marker.read_bytes())
    for f in files:
        p = root / f
        st = p.stat() if p.exists() else None
        h.update(f"{f}:{st.st_size if st else -1}:{st.st_mtime_ns if st else 0};".encode())
    for d in subdirs:
        p = root / d
        names = sorted(e.name for e in os.scandir(p) if e.is_file()) if p.is_dir() else None
        h.update(f"{d}:{len(names) if names is not None else 'absent'}:".encode())
        h.update("/".join(names or []).encode())
    return h.hexdigest()[:16]


_MEMO: dict[Path, dict[str, np.ndarray]] = {}  # in-process: loading train then valid decodes once
_MEMO_MAX = 3


def cached_arrays(
    tag: str,
    root: Path,
    subdirs: list[str],
    files: list[str],
    build: Callable[[], dict[str, np.ndarray]],
    cache: str | os.PathLike | None = None,
) -> dict[str, np.ndarray]:
    """Load `build()`'s arrays from `<cache>/arrays/<tag>-<folder>-<signature>.npz`, building once.

    Uncompressed npz: a 80 MB FER+ file loads in ~0.1 s from the page cache, where
    decoding 35k PNGs takes several seconds.
    """
    sig = _tree_signature(root, subdirs, files)
    out_dir = cache_dir(cache) / "arrays"
    where = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:8]  # one file per folder
    path = out_dir / f"{tag}-{where}-{sig}.npz"
    if path in _MEMO:
        return _MEMO[path]
    arrays = None
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError):
            arrays = None  # unreadable (e.g. truncated by a crash): rebuild below
    if arrays is None:
        arrays = build()
        for old in out_dir.glob(f"{tag}-{where}-*.npz"):  # earlier versions of this folder
            old.unlink(missing_ok=True)
        _save_npz(path, arrays)
    for a in arrays.values():
        a.flags.writeable = False  # shared by every load in this process
    if len(_MEMO) >= _MEMO_MAX:
        _MEMO.pop(next(iter(_MEMO)))
    _MEMO[path] = arrays
    return arrays


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Atomic write; a read-only cache only costs speed."""
    try:
        with atomic_write(path) as tmp:
            np.savez(tmp, **arrays)
    except OSError:
        pass
