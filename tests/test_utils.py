"""utjima.utils: atomic writes, the NHWC -> NCHW conversion, the onnxruntime session."""

import numpy as np
import pytest

from utjima.contract import default_model_dir
from utjima.utils import atomic_write, ort_session, to_nchw


def test_atomic_write_replaces_in_one_step_and_cleans_up(tmp_path):
    path = tmp_path / "sub" / "a.npz"
    with atomic_write(path) as tmp:
        assert tmp.parent == path.parent and tmp.name.endswith(".npz") and not path.exists()
        np.savez(tmp, x=np.arange(3))
    assert np.load(path)["x"].tolist() == [0, 1, 2]
    assert (path.stat().st_mode & 0o777) == 0o644
    with pytest.raises(RuntimeError), atomic_write(path) as tmp:
        np.savez(tmp, x=np.arange(5))
        raise RuntimeError("killed half way")
    assert np.load(path)["x"].tolist() == [0, 1, 2]  # the old file is untouched
    assert [p.name for p in path.parent.iterdir()] == ["a.npz"]  # no temporary file left


def test_to_nchw():
    grey = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
    x = to_nchw(grey)
    assert x.shape == (2, 1, 4, 4) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0], grey / np.float32(255))
    rgb = np.random.default_rng(0).integers(0, 256, (3, 4, 5, 3), dtype=np.uint8)
    y = to_nchw(rgb)
    assert y.shape == (3, 3, 4, 5) and y.max() <= 1.0
    np.testing.assert_array_equal(y[1, 2], rgb[1, :, :, 2] / np.float32(255))


def test_ort_session_runs_one_thread_on_the_cpu():
    s = ort_session(default_model_dir() / "step.onnx")
    assert s.get_providers() == ["CPUExecutionProvider"]
    assert s.get_session_options().intra_op_num_threads == 1
    (inp,) = s.get_inputs()
    assert inp.name == "window"
