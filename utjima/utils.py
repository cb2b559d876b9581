"""Small pieces every stage shares, at the bottom of the import graph (stdlib + numpy;
onnxruntime is imported when a session is opened).

- `UtjimaError`: the base of every error a user can fix (a flag, a file, a folder); stages
  raise their own subclasses, `utjima.cli` prints any of them as one line and exits 2.
  `ModelFileError`: an ONNX file that onnxruntime cannot load.
- `atomic_write(path)`: write beside `path`, then rename, so a killed run never leaves half
  a file.
- `ort_session(path)`: the one way to open an ONNX file with onnxruntime.
- `to_nchw(images)`: uint8 image stacks (N, H, W[, 3]) -> float32 (N, C, H, W) in 0..1.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


class UtjimaError(Exception):
    """A failure the user can fix: `utjima` prints it as one line and exits 2."""


class ModelFileError(UtjimaError):
    """An ONNX file onnxruntime cannot load (damaged, truncated, not ONNX)."""


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix); when the block finishes it replaces
    `path` in one rename, when it raises the temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=f".tmp{path.suffix}",
                                dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes it private; caches and models are shared
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def ort_session(path: str | Path, threads: int = 1):
    """An onnxruntime CPU session with `threads` intra-op threads and warnings silenced; a file
    onnxruntime cannot load raises ModelFileError."""
    import onnxruntime as ort
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except (state.InvalidProtobuf, state.InvalidGraph, state.Fail, state.NoSuchFile,
            state.NotImplemented, state.InvalidArgument, state.RuntimeException) as e:
        why = str(e).splitlines()[0].rsplit(" : ", 1)[-1].strip()
        raise ModelFileError(f"{Path(path).name} is not a model onnxruntime can load "
                             f"({type(e).__name__}: {why})") from None


def to_nchw(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) grey or (N, H, W, 3) RGB -> float32 (N, C, H, W) in 0..1."""
    x = np.asarray(images, np.float32) / 255
    return x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)  # (N, H, W[, 3]) -> (N, C, H, W)
