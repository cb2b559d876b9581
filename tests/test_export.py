"""Export: the seed contract, the streaming pair, int8, model.json, parity with torch."""

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import perturbed_model

from utjima import EMOTIONS
from utjima.cli import main
from utjima.contract import ContractError, load_contract
from utjima.export import SeedCompat
from utjima.model import save_checkpoint
from utjima.streaming import FeatureWindow, window_indices
from utjima.utils import ort_session


@pytest.fixture(scope="module")
def model():
    return perturbed_model()


def _smooth(rng, n: int, c: int, size: int) -> np.ndarray:
    """n smooth random images (n, c, size, size) in 0..1: 8x8 noise, bilinear upsampled."""
    x = torch.from_numpy(rng.random((n, c, 8, 8), dtype=np.float32))
    return F.interpolate(x, size=(size, size), mode="bilinear").numpy()


def _as_the_seed_graph_sees(frames: np.ndarray) -> np.ndarray:
    """(N, 3, 224, 224) RGB -> (N, 1, 64, 64): the grey conversion, box average and bilinear
    resize the seed graph does inside."""
    w = np.array([0.299, 0.587, 0.114], np.float32)[:, None, None]
    grey = torch.from_numpy((frames * w).sum(1, keepdims=True))
    return F.interpolate(F.avg_pool2d(grey, 3), size=(64, 64), mode="bilinear",
                         align_corners=False).numpy()


def test_model_json_describes_every_file(exported_model):
    c = load_contract(exported_model)  # validates schema and every sha256
    d = c.data
    assert d["classes"] == list(EMOTIONS)
    assert d["input"] == {**d["input"], "size": 64, "channels": "gray", "range": [0.0, 1.0]}
    assert d["streaming"]["n_frames"] == 5 and d["streaming"]["feature_dim"] == 96
    assert set(d["files"]) >= {"seed", "encoder", "encoder_int8", "step", "face_detector",
                               "face_detector_full"}
    assert d["crop"]["size"] == 64 and d["crop"]["align"] in ("none", "eyes")
    for role in d["files"]:
        assert c.path(role).is_file()
    assert max(d["parity_max_abs_diff"].values()) <= 1e-4


def test_seed_contract_io(exported_model):
    s = ort_session(exported_model / "smile_detector.onnx")
    (i,) = s.get_inputs()
    assert i.name == "frames" and i.shape == [1, 5, 3, 224, 224]
    assert [(o.name, o.shape) for o in s.get_outputs()] == [("smile_prob", [1]),
                                                            ("emotion_logits", [1, 7])]
    # the output follows the input (four stills, four answers, spread 10x the parity
    # tolerance), and equals the streaming pair fed the same still (grey, box-averaged and
    # resized inside the graph)
    smooth = _smooth(np.random.default_rng(0), 4, 3, 224)
    probs = [s.run(None, {"frames": np.repeat(x[None, None], 5, 1)})[0][0] for x in smooth]
    assert np.ptp(probs) > 1e-3
    crop = _as_the_seed_graph_sees(smooth[:1])
    f = ort_session(exported_model / "encoder.onnx").run(None, {"crop": crop})[0]
    window = np.repeat(f[:, None], 5, 1)  # (1, F) -> (1, T, F): a still
    sp = ort_session(exported_model / "step.onnx").run(None, {"window": window})[0]
    assert abs(float(sp[0]) - float(probs[0])) <= 1e-4


def test_onnx_matches_torch(exported_model, model):
    """Max abs diff <= 1e-4 on fresh inputs, for each graph."""
    rng = np.random.default_rng(1)
    crops = rng.random((4, 1, 64, 64), dtype=np.float32)
    feats = ort_session(exported_model / "encoder.onnx").run(None, {"crop": crops})[0]
    with torch.no_grad():
        ref = model.encode(torch.from_numpy(crops)).numpy()
    assert ref.std(0).mean() > 0.05  # features move with the input: parity is not trivial
    assert np.abs(feats - ref).max() <= 1e-4
    win = feats[rng.integers(0, 4, (3, 5))]  # (3, 5, F)
    sp, el = ort_session(exported_model / "step.onnx").run(None, {"window": win})
    with torch.no_grad():
        s_ref, e_ref = model.step(torch.from_numpy(win))
    assert np.abs(sp - torch.sigmoid(s_ref).numpy()).max() <= 1e-4
    assert np.abs(el - e_ref.numpy()).max() <= 1e-4
    frames = rng.random((1, 5, 3, 224, 224), dtype=np.float32)
    sp, el = ort_session(exported_model / "smile_detector.onnx").run(None, {"frames": frames})
    with torch.no_grad():
        s_ref, e_ref = SeedCompat(model)(torch.from_numpy(frames))
    assert np.abs(sp - s_ref.numpy()).max() <= 1e-4 and np.abs(el - e_ref.numpy()).max() <= 1e-4


def test_streaming_pair_equals_full_graph(exported_model):
    """encoder once per frame + step over the window == the seed graph on the same 5 frames."""
    rng = np.random.default_rng(2)
    enc, step, full = (ort_session(exported_model / f)
                       for f in ("encoder.onnx", "step.onnx", "smile_detector.onnx"))
    frames = rng.random((9, 3, 224, 224), dtype=np.float32)
    times = [i * 100.0 for i in range(9)]  # one frame per frame_interval_ms
    crops = _as_the_seed_graph_sees(frames)
    win = FeatureWindow(5, 100.0)
    for i in range(9):
        f = enc.run(None, {"crop": crops[i : i + 1]})[0][0]
        w = win.push(times[i], f)
        sp = step.run(None, {"window": w[None]})[0]
        idx = window_indices(times[: i + 1], times[i], 5, 100.0)
        sp_full = full.run(None, {"frames": frames[idx][None]})[0]
        assert abs(float(sp[0]) - float(sp_full[0])) <= 1e-4


def test_int8_encoder_is_smaller_and_close(exported_model):
    """Measured here, not read from model.json: the int8 weights change the features, yet the
    smile_prob of a still moves by less than 0.05."""
    d = load_contract(exported_model).data["files"]
    assert d["encoder_int8"]["bytes"] < 0.5 * d["encoder"]["bytes"]
    crops = _smooth(np.random.default_rng(3), 64, 1, 64)
    fp = ort_session(exported_model / "encoder.onnx").run(None, {"crop": crops})[0]
    q = ort_session(exported_model / "encoder.int8.onnx").run(None, {"crop": crops})[0]
    assert q.shape == fp.shape == (64, 96)
    assert np.abs(q - fp).max() > 1e-6  # the weights really are quantized
    step = ort_session(exported_model / "step.onnx")
    sp_fp, sp_q = (step.run(None, {"window": np.repeat(f[:, None], 5, 1)})[0] for f in (fp, q))
    assert np.ptp(sp_fp) > 1e-2  # the crops give different answers, so closeness means something
    assert np.abs(sp_q - sp_fp).max() < 0.05


def test_tampered_folder_fails_loudly(exported_model, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(exported_model, bad)
    with open(bad / "step.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ContractError, match="does not match its model.json"):
        load_contract(bad)
    d = json.loads((exported_model / "model.json").read_text())
    d["classes"] = d["classes"][::-1]
    (bad / "model.json").write_text(json.dumps(d))
    with pytest.raises(ContractError, match="classes"):
        load_contract(bad)


def test_export_cli(tmp_path, capsys):
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, perturbed_model(seed=5))
    out = str(tmp_path / "out")
    assert main(["export", str(ckpt), "--out", out, "--no-int8", "--threshold", "0.4"]) == 0
    c = load_contract(tmp_path / "out")
    assert c.smile_threshold == 0.4 and "encoder_int8" not in c.data["files"]
    assert "parity" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:  # refused while the flags are parsed
        main(["export", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "x")])
    assert e.value.code == 2 and "nope.pt: not found" in capsys.readouterr().err
