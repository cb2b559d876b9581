"""Training: a few real steps on a few real faces, checkpoints, resume, fine-tune, distillation."""

import json

import cv2
import numpy as np
import pytest
import torch

from utjima.cli import CLIError, main, parse_set
from utjima.data import DatasetError
from utjima.model import load_checkpoint
from utjima.train import TrainConfig, lr_factor, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small(dataset_cache):
    """A config over 48 real faces per source (archives unpacked into the cache once)."""
    for name in ("smilesmiled", "ferplus"):
        dataset_cache(name)
    return TrainConfig(epochs=2, batch_size=16, limit=48, num_workers=0, progress=False, threads=2,
                       data=("smilesmiled:train", "ferplus:train"),
                       val=("smilesmiled:val", "ferplus:valid"))


def test_two_epochs_write_metrics_and_checkpoints(tmp_path, small):
    res = train(small, tmp_path)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2] and res["epoch"] == 2
    for r in lines:
        assert np.isfinite(r["train_loss"]) and r["train_loss"] > 0
        assert set(r["val"]) == {"smilesmiled:val", "ferplus:valid", "score"}
        assert 0 <= r["val"]["ferplus:valid"]["emotion_acc"] <= 1
    model, ckpt = load_checkpoint(tmp_path / "best.pt")
    assert ckpt["train_config"]["limit"] == 48 and model.cfg.img_size == 64
    assert ckpt["provenance"]["train"] == ["smilesmiled:train", "ferplus:train"]
    assert not list(tmp_path.glob("*.tmp*"))  # atomic saves leave no temp files


def test_resume_after_a_kill_loses_no_epoch(tmp_path, small, monkeypatch):
    """Kill during epoch 2, resume: the result equals an uninterrupted run, bit for bit."""
    full = tmp_path / "full"
    train(small, full)
    killed = tmp_path / "killed"
    import utjima.train as tr

    real_scores, calls = tr.validation_scores, []

    def dying_scores(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed before epoch 2 is saved
        return real_scores(*a, **k)

    monkeypatch.setattr(tr, "validation_scores", dying_scores)
    with pytest.raises(KeyboardInterrupt):
        train(small, killed)
    assert len((killed / "metrics.jsonl").read_text().splitlines()) == 1
    monkeypatch.setattr(tr, "validation_scores", real_scores)
    train(small, killed, resume=True)
    a = torch.load(full / "last.pt", weights_only=False)
    b = torch.load(killed / "last.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 1 and a["step"] == b["step"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert len((killed / "metrics.jsonl").read_text().splitlines()) == 2


def test_resume_refuses_a_changed_config(tmp_path, small):
    train(TrainConfig(**{**small.__dict__, "epochs": 1}), tmp_path)
    with pytest.raises(ValueError, match="different config"):
        train(TrainConfig(**{**small.__dict__, "epochs": 1, "lr": 1e-4}), tmp_path, resume=True)


def test_distillation_and_finetune_on_a_user_image_folder(tmp_path, small, dataset_cache):
    from utjima.data import ferplus

    teacher = tmp_path / "teacher"
    train(TrainConfig(**{**small.__dict__, "epochs": 1, "max_steps": 2}), teacher)
    student = tmp_path / "student"
    kd = {"epochs": 1, "max_steps": 2, "teacher": str(teacher / "best.pt")}
    train(TrainConfig(**{**small.__dict__, **kd}), student)
    assert (student / "best.pt").is_file()
    # a user's own labelled photos, fine-tuned with the seed's defaults (9:1 split, batch 4)
    fs = ferplus.load(dataset_cache("ferplus"), "test")
    folder = tmp_path / "mine"
    for label, k in (("smile", 3), ("neutral", 6)):
        (folder / label).mkdir(parents=True)
        for n, i in enumerate(np.flatnonzero(fs.emotion[:, k] >= 0.8)[:10]):
            cv2.imwrite(str(folder / label / f"{n}.png"), fs.images[i])
    code = main(["finetune", str(student / "best.pt"), "--data", f"images:{folder}", "--out",
                 str(tmp_path / "ft"),
                 "--epochs", "1", "--threads", "2", "--set", "num_workers=0", "--set",
                 "progress=false"])
    assert code == 0
    _, ckpt = load_checkpoint(tmp_path / "ft" / "best.pt")
    cfg = ckpt["train_config"]
    assert (cfg["lr"], cfg["batch_size"], cfg["val_fraction"]) == (5e-5, 4, 0.1)
    assert any(k.endswith("#val") for k in ckpt["val"])


def test_test_sets_are_refused_for_training(tmp_path, small, dataset_cache):
    dataset_cache("genki4k")
    with pytest.raises(DatasetError, match="held-out test set"):
        train(TrainConfig(**{**small.__dict__, "data": ("genki4k",)}), tmp_path)
    assert main(["train", "--out", str(tmp_path / "x"), "--data", "genki4k", "--limit", "8"]) == 2


def test_config_overrides_and_schedule():
    assert parse_set(["lr=0.01", "model.width_mult=0.75", "data=[\"a\"]"]) == {
        "lr": 0.01, "model": {"width_mult": 0.75}, "data": ["a"]}
    with pytest.raises(CLIError, match="unknown TrainConfig field"):
        parse_set(["colour=red"])
    with pytest.raises(CLIError, match="KEY=VALUE"):
        parse_set(["lr"])
    with pytest.raises(ValueError, match="unknown preset 'nope'; valid"):
        TrainConfig(preset="nope")
    cfg = TrainConfig(warmup_frac=0.1)
    f = [lr_factor(s, 100, cfg) for s in range(100)]
    assert f[0] < f[9] <= 1.0 and f[10] == 1.0 and f[99] < 0.01 and all(np.diff(f[10:]) <= 0)


def test_splice_starts_windows_with_another_items_frames():
    from utjima.train import splice

    torch.manual_seed(0)
    b, t = 64, 5
    feats = torch.arange(b, dtype=torch.float32)[:, None, None].expand(b, t, 3).clone()  # row id
    out = splice(feats, 1.0)
    for i in range(b):
        rows = out[i, :, 0]
        assert rows[-1] == i                                   # the label's owner ends it
        cut = int((rows != i).sum())
        assert 1 <= cut <= t - 1 or (cut == 0 and rows.eq(i).all())  # a permutation's fixed point
        if cut:
            assert (rows[:cut] == rows[0]).all() and rows[0] != i and (rows[cut:] == i).all()
    cuts = [int((out[i, :, 0] != i).sum()) for i in range(b)]
    assert set(cuts) - {0} == set(range(1, t))                 # every cut point is drawn
    assert torch.equal(splice(feats, 0.0), feats)


def test_step_only_finetune_keeps_the_encoder(tmp_path, small):
    """freeze_encoder + splice_share from the shipped checkpoint: the LSTM and heads learn, the
    trunk and its projection (encoder.onnx) stay bit-identical; the start's provenance stays."""
    from utjima.study import SHIPPED_CKPT

    start, start_ckpt = load_checkpoint(SHIPPED_CKPT)
    cfg = TrainConfig(**{**small.__dict__, "epochs": 1, "max_steps": 3, "lr": 1e-2,
                         "init_from": str(SHIPPED_CKPT), "freeze_encoder": True,
                         "splice_share": 0.5})
    train(cfg, tmp_path)
    model, ckpt = load_checkpoint(tmp_path / "last.pt")
    before, after = start.state_dict(), model.state_dict()
    for name in before:
        same = torch.equal(before[name], after[name])
        assert same == (not name.startswith(("lstm.", "smile_head.", "emotion_head."))), name
    init = ckpt["provenance"]["init_from"]
    assert init["checkpoint"] == str(SHIPPED_CKPT)
    assert init["provenance"] == start_ckpt["provenance"] and init["provenance"]["train"]
    with pytest.raises(ValueError, match="splice_share must be in"):
        train(TrainConfig(**{**small.__dict__, "splice_share": 1.5}), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()  # refused with the config, before a run folder
