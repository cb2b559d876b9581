"""Rebuild a torch checkpoint of an exported model from its ONNX files (encoder + step).

The shipped model's training checkpoint was not kept, but fine-tuning studies need torch
weights. Export folded every BatchNorm into the convolution before it, so the rebuilt model
puts the folded kernel in the Conv2d and the folded bias in the BatchNorm, whose statistics
become the identity (mean 0, variance 1 - eps, scale 1). In eval mode it computes what the
ONNX files compute (the script checks it on real validation crops and fails otherwise). When
fine-tuning it, keep the trunk's BatchNorm layers in eval mode (`freeze_trunk`, or `.eval()` on
them): batch statistics of the folded activations are not what the layers were trained with.

    .venv/bin/python tools/onnx_to_checkpoint.py [--model utjima/models] \
        --out utjima/models/torch/shipped.pt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from utjima.contract import load_contract
from utjima.model import DualHeadSmileDetector, ModelConfig


def _initializers(path: Path) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    m = onnx.load(str(path))
    return m, {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}


def _lstm_gates(a: np.ndarray, h: int) -> np.ndarray:
    """ONNX LSTM gate blocks (i, o, f, c) -> torch's (i, f, g, o), along axis 0."""
    i, o, f, c = (a[k * h : (k + 1) * h] for k in range(4))
    return np.concatenate([i, f, c, o])


def rebuild(model_dir: Path) -> DualHeadSmileDetector:
    contract = load_contract(model_dir)
    cfg = ModelConfig.from_dict(contract.data["model_config"])
    model = DualHeadSmileDetector(cfg).eval()
    sd = model.state_dict()

    # encoder: named initializers (SE convs, projection) by name; folded Conv+BN pairs in order
    enc, w = _initializers(contract.path("encoder"))
    folded = [[x for x in n.input if x in w] for n in enc.graph.node if n.op_type == "Conv"]
    folded = [ws for ws in folded if ws[0].startswith("onnx::")]
    convbn = [
        m
        for m in model.trunk.modules()
        if isinstance(m, nn.Sequential) and len(m) >= 2 and isinstance(m[1], nn.BatchNorm2d)
    ]
    if len(convbn) != len(folded):
        raise SystemExit(
            f"{len(folded)} folded convolutions in the ONNX encoder, "
            f"{len(convbn)} Conv+BN in the model"
        )
    with torch.no_grad():
        for mod, (wk, bk) in zip(convbn, folded, strict=True):
            conv, bn = mod[0], mod[1]
            conv.weight.copy_(torch.from_numpy(w[wk].copy()))
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(w[bk].copy()))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        for name, t in sd.items():
            if f"m.{name}" in w:
                t.copy_(torch.from_numpy(w[f"m.{name}"].copy()))
        # step: heads by name, the LSTM from the ONNX node's W, R, B
        step, s = _initializers(contract.path("step"))
        for name, t in sd.items():
            if f"m.{name}" in s:
                t.copy_(torch.from_numpy(s[f"m.{name}"].copy()))
        node = next(n for n in step.graph.node if n.op_type == "LSTM")
        wi, ri, bi = (s[x] for x in node.input[1:4])
        h = cfg.lstm_hidden
        model.lstm.weight_ih_l0.copy_(torch.from_numpy(_lstm_gates(wi[0], h)))
        model.lstm.weight_hh_l0.copy_(torch.from_numpy(_lstm_gates(ri[0], h)))
        model.lstm.bias_ih_l0.copy_(torch.from_numpy(_lstm_gates(bi[0, : 4 * h], h)))
        model.lstm.bias_hh_l0.copy_(torch.from_numpy(_lstm_gates(bi[0, 4 * h :], h)))
    return model


def check(model: DualHeadSmileDetector, model_dir: Path) -> dict:
    """Max |torch - ONNX| for features and smile_prob on real validation crops (or noise)."""
    from utjima.export import validation_crops
    from utjima.runtime import SmileModel

    crops = validation_crops(model.cfg)
    if crops is None:
        crops = np.random.default_rng(0).random(
            (64, model.cfg.in_chans, model.cfg.img_size, model.cfg.img_size), dtype=np.float32
        )
    onnx_model = SmileModel(model_dir)
    with torch.no_grad():
        f = model.encode(torch.from_numpy(crops))
        s, e = model.step(f[:, None].expand(-1, model.cfg.n_frames, -1))
    of = onnx_model.encode(crops)
    os_, oe = onnx_model.step(np.repeat(of[:, None], model.cfg.n_frames, 1))
    return {
        "features": float(np.abs(f.numpy() - of).max()),
        "smile_prob": float(np.abs(torch.sigmoid(s).numpy() - os_).max()),
        "emotion_logits": float(np.abs(e.numpy() - oe).max()),
        "n_crops": len(crops),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    ap.add_argument("--out", required=True, help="checkpoint to write")
    a = ap.parse_args(argv)
    model_dir = load_contract(a.model).dir
    model = rebuild(model_dir)
    diff = check(model, model_dir)
    if max(diff["features"], diff["smile_prob"], diff["emotion_logits"]) > 1e-3:
        raise SystemExit(f"rebuilt model differs from the ONNX files: {diff}")
    data = json.loads((model_dir / "model.json").read_text())
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    prov = data.get("provenance", {})
    rebuilt = {"from": "encoder.onnx + step.onnx (BatchNorm folded)",
               "onnx_sha256": {k: data["files"][k]["sha256"] for k in ("encoder", "step")},
               "max_abs_diff_vs_onnx": diff}
    torch.save({"model_config": model.cfg.to_dict(), "model": model.state_dict(),
                # what `utjima export` reads back: the original training config and provenance
                "train_config": prov.get("train_config", {}), "epoch": prov.get("epoch", 0) - 1,
                "provenance": {k: v for k, v in prov.items()
                               if k not in ("train_config", "checkpoint", "epoch")}
                | {"rebuilt": rebuilt}}, out)
    print(json.dumps({"out": str(out), "bytes": out.stat().st_size, "max_abs_diff_vs_onnx": diff}))


if __name__ == "__main__":
    main()
