"""utjima.data.cache: archive lookup, sha256 check, atomic unpacking, npz cache."""

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from utjima.data import cache


def _make_archive(path: Path, top: str, files: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A registered 'toy' archive in tmp_path/src, cache in tmp_path/cache."""
    src = tmp_path / "src"
    src.mkdir()
    sha = _make_archive(src / "toy.tar.gz", "toy_top", {"a.txt": b"A", "sub/b.txt": b"B"})
    info = cache.ArchiveInfo("toy", "toy.tar.gz", sha, "toy_top", raw={}, clean={})
    monkeypatch.setitem(cache.ARCHIVES, "toy", info)
    return src, tmp_path / "cache"


def test_dirs_follow_arguments_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("UTJIMA_DATASETS", str(tmp_path / "env_src"))
    monkeypatch.setenv("UTJIMA_CACHE", str(tmp_path / "env_cache"))
    assert cache.source_dir() == tmp_path / "env_src"
    assert cache.cache_dir() == tmp_path / "env_cache"
    assert cache.source_dir(tmp_path / "x") == tmp_path / "x"
    assert cache.cache_dir(tmp_path / "y") == tmp_path / "y"
    monkeypatch.delenv("UTJIMA_DATASETS")
    monkeypatch.delenv("UTJIMA_CACHE")
    assert cache.source_dir() == cache.REPO_ROOT.parent / "shared" / "datasets"
    assert cache.cache_dir() == Path.home() / ".cache" / "utjima"


def test_missing_archive_says_which_file_where(tmp_path):
    with pytest.raises(cache.DatasetMissing) as e:
        cache.prepare("ferplus", source=tmp_path, cache=tmp_path / "c")
    msg = str(e.value)
    assert f"ferplus.tar.gz at {tmp_path / 'ferplus.tar.gz'}" in msg
    assert cache.ARCHIVES["ferplus"].sha256 in msg


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(cache.DatasetError, match="smilesmiled, ferplus, genki4k"):
        cache.prepare("nope")


def test_prepare_unpacks_once_with_marker(fake):
    src, c = fake
    root = cache.prepare("toy", source=src, cache=c)
    assert root == c / "datasets" / "toy"
    assert (root / "a.txt").read_bytes() == b"A" and (root / "sub" / "b.txt").read_bytes() == b"B"
    assert (root / cache.MARKER).read_text().strip() == cache.ARCHIVES["toy"].sha256
    assert cache.is_prepared("toy", c)
    assert not [p for p in (c / "datasets").iterdir() if p.name.startswith(".tmp")]
    # Prepared: works without the archive (a user's machine after `utjima data prepare`).
    (src / "toy.tar.gz").unlink()
    assert cache.prepare("toy", source=src, cache=c) == root


def test_prepare_redoes_a_half_written_copy(fake):
    src, c = fake
    stale = c / "datasets" / "toy"
    stale.mkdir(parents=True)
    (stale / "junk").write_text("x")  # no marker: an interrupted run
    root = cache.prepare("toy", source=src, cache=c)
    assert not (root / "junk").exists() and (root / "a.txt").exists()


def test_prepare_rejects_a_wrong_checksum(fake, monkeypatch):
    src, c = fake
    bad = cache.ArchiveInfo("toy", "toy.tar.gz", "0" * 64, "toy_top", raw={}, clean={})
    monkeypatch.setitem(cache.ARCHIVES, "toy", bad)
    with pytest.raises(cache.DatasetError, match="expected 0000"):
        cache.prepare("toy", source=src, cache=c)
    assert not cache.is_prepared("toy", c)


def test_cached_arrays_builds_once(tmp_path):
    root = tmp_path / "data"
    (root / "imgs").mkdir(parents=True)
    (root / "imgs" / "1.png").write_bytes(b"x")
    calls = []

    def build():
        calls.append(1)
        return {"a": np.arange(3)}

    cache._MEMO.clear()
    a = cache.cached_arrays("t", root, ["imgs"], [], build, cache=tmp_path / "c")
    cache._MEMO.clear()  # a new process: read from the npz
    b = cache.cached_arrays("t", root, ["imgs"], [], build, cache=tmp_path / "c")
    assert calls == [1] and np.array_equal(a["a"], b["a"])
    (root / "imgs" / "2.png").write_bytes(b"y")  # the folder changed: rebuild
    cache.cached_arrays("t", root, ["imgs"], [], build, cache=tmp_path / "c")
    assert calls == [1, 1]
    cache._MEMO.clear()
