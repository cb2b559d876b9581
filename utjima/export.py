"""Export a checkpoint to the ONNX files every runtime uses, plus `model.json`.

One folder holds:
  smile_detector.onnx   the seed's contract: frames (1, 5, 3, 224, 224) RGB 0..1 ->
                        smile_prob (1,), emotion_logits (1, 7). For a face-crop preset the
                        grey conversion and resize happen inside this graph, so a front end
                        written against the seed spec runs unchanged (it should still feed
                        face crops: the model was trained on faces).
  encoder.onnx          crop (N, C, S, S) 0..1 -> features (N, F); once per camera frame
  encoder.int8.onnx     the same with int8 weights (float32 compute): the browser's download
  step.onnx             window (N, T, F) -> smile_prob (N,), emotion_logits (N, 7)
  face_detector_*.onnx  BlazeFace, copied from the bundled model (see LICENSE-blazeface.txt)
  model.json            the contract: see utjima/contract.py
Parity of every graph against torch is checked here and recorded in model.json.
"""

from __future__ import annotations

import json
import shutil
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from utjima import EMOTIONS
from utjima.contract import (
    MODEL_JSON,
    SCHEMA,
    default_model_dir,
    file_entry,
    load_contract,
    validate,
)
from utjima.data import DatasetError, load_canonical
from utjima.model import CheckpointError, DualHeadSmileDetector, ModelConfig, load_checkpoint
from utjima.onnx_weights import rewrite_initializers
from utjima.utils import UtjimaError, atomic_write, ort_session, to_nchw

OPSET = 17
SEED_FRAMES, SEED_SIZE = 5, 224  # the seed front end's input: (1, 5, 3, 224, 224)
GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma, also used by faces.crop_face
PARITY_TOL = 1e-4
# Re-run BlazeFace at most this often; frames in between reuse the last face (tracking).
# Measured in headless Chromium, 1 WASM thread: 8.0-8.8 ms p50 per frame detecting every
# frame, 3.1-4.2 ms at 100 ms; the carried box is off by ~1 % of the face at 60 px/s.
DETECT_INTERVAL_MS = 100.0
RESEARCH_DATA = ("smilesmiled", "ferplus", "genki4k")
RESEARCH_TERMS = ("trained on research datasets (SMILEsmileD: no licence file; FER2013 pixels "
                  "with FER+ labels, labels MIT by Microsoft); none clearly grants redistribution "
                  "or commercial use of the images or of models trained on them: research use "
                  "only, see MODEL_CARD.md")
FACE_DETECTOR_FILES = ("face_detector_short.onnx", "face_detector_full.onnx",
                       "LICENSE-blazeface.txt")


class _Encoder(nn.Module):
    def __init__(self, m: DualHeadSmileDetector):
        super().__init__()
        self.m = m

    def forward(self, crop: torch.Tensor) -> torch.Tensor:
        return self.m.encode(crop)


class _Step(nn.Module):
    def __init__(self, m: DualHeadSmileDetector):
        super().__init__()
        self.m = m

    def forward(self, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        smile_logit, emotion_logits = self.m.step(window)
        return torch.sigmoid(smile_logit), emotion_logits


class SeedCompat(nn.Module):
    """(1, 5, 3, 224, 224) RGB 0..1 -> the model's native input -> (smile_prob, emotion_logits)."""

    def __init__(self, m: DualHeadSmileDetector):
        super().__init__()
        self.m = m
        self.register_buffer("gray_w", torch.tensor(GRAY_WEIGHTS).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.m.cfg
        b, t = frames.shape[:2]
        x = frames.flatten(0, 1)  # (B, T, 3, H, W) -> (B*T, 3, H, W)
        if cfg.channels == "gray":
            x = (x * self.gray_w).sum(1, keepdim=True)  # (B*T, 3, H, W) -> (B*T, 1, H, W)
        if x.shape[-1] != cfg.img_size:
            # Box-average by the integer factor first so a 224 -> 64 downscale does not alias.
            k = x.shape[-1] // cfg.img_size
            if k > 1:
                x = nn.functional.avg_pool2d(x, k)
            x = nn.functional.interpolate(x, size=(cfg.img_size, cfg.img_size), mode="bilinear",
                                          align_corners=False)
        feats = self.m.encode(x).view(b, t, -1)  # (B*T, F) -> (B, T, F)
        smile_logit, emotion_logits = self.m.step(feats)
        return torch.sigmoid(smile_logit), emotion_logits


def _onnx_export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
                 dynamic: dict | None, opset: int) -> None:
    # The TorchScript exporter emits one ONNX LSTM node and takes under a second;
    # its deprecation warnings are noise here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=opset, dynamo=False)


def quantize_weights(src: Path, dst: Path, min_size: int = 256) -> int:
    """int8 weights, float32 compute: every Conv/Gemm weight becomes int8 with a float scale
    per output channel (symmetric), restored by Cast + Mul nodes that onnxruntime folds into
    constants when the session loads. The file is ~4x smaller; the graph then computes in
    float32 exactly as encoder.onnx does, so Python and the browser (WASM) agree to float
    rounding, unlike activation quantization, whose int8 kernels differ between platforms
    (we measured 0.015 smile_prob apart). Returns how many weights were quantized."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    weights = {n.input[1] for n in model.graph.node
               if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1}

    def to_int8(name: str, a: np.ndarray):
        if name not in weights or a.dtype != np.float32 or a.size < min_size:
            return None
        shape = (a.shape[0],) + (1,) * (a.ndim - 1)  # one scale per output channel
        peak = np.abs(a.reshape(a.shape[0], -1)).max(1)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32).reshape(shape)
        q = np.clip(np.round(a / scale), -127, 127).astype(np.int8)
        return ([numpy_helper.from_array(q, name + "_int8"),
                 numpy_helper.from_array(scale, name + "_scale")],
                [helper.make_node("Cast", [name + "_int8"], [name + "_f32"], to=TensorProto.FLOAT),
                 helper.make_node("Mul", [name + "_f32", name + "_scale"], [name])])

    n = rewrite_initializers(model.graph, to_int8)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return n


def write_int8_encoder(out: Path, sample: np.ndarray, *, real_crops: bool) -> dict[str, Any]:
    """encoder.int8.onnx from `out`/encoder.onnx (int8 weights, the convs on the last small
    maps as matrix products: onnx_weights.small_maps_as_matmul), compared with encoder.onnx
    on `sample` crops through step.onnx; returns its model.json files entry."""
    import onnx

    from utjima.onnx_weights import small_maps_as_matmul

    p = out / "encoder.int8.onnx"
    n_q = quantize_weights(out / "encoder.onnx", p)
    graph = onnx.load(str(p))
    n_mm = small_maps_as_matmul(graph)
    onnx.checker.check_model(graph)
    onnx.save(graph, str(p))
    fp = ort_session(out / "encoder.onnx").run(None, {"crop": sample})[0]
    q = ort_session(p).run(None, {"crop": sample})[0]
    # What matters is the smile_prob after the step, for a still (window = repeated feature).
    st = ort_session(out / "step.onnx")
    t = st.get_inputs()[0].shape[1]  # window (N, T, F)
    sp_fp = st.run(None, {"window": np.repeat(fp[:, None], t, 1)})[0]
    sp_q = st.run(None, {"window": np.repeat(q[:, None], t, 1)})[0]
    return file_entry(
        p, out, inputs={"crop": ["n", *sample.shape[1:]]}, outputs={"features": ["n", fp.shape[1]]},
        scheme=f"weight-only int8, one scale per output channel ({n_q} weights); "
               "Cast+Mul folded at load, float32 compute; "
               f"{n_mm} convs on maps of <= 16 pixels as MatMul/Gemm (same weights)",
        max_abs_diff_features=float(np.abs(q - fp).max()),
        max_abs_diff_smile_prob=float(np.abs(sp_q - sp_fp).max()),
        compared_on="real face crops" if real_crops else "synthetic smooth noise",
    )


def sample_crops(cfg: ModelConfig, crops: np.ndarray | None, n: int = 128) -> np.ndarray:
    """Inputs to trace the encoder with and to compare graphs on: the given face crops, else
    smooth random images."""
    if crops is not None:
        return np.ascontiguousarray(crops[:n], dtype=np.float32)
    rng = np.random.default_rng(0)
    x = rng.random((n, cfg.in_chans, 8, 8)).astype(np.float32)
    t = torch.nn.functional.interpolate(torch.from_numpy(x), size=(cfg.img_size, cfg.img_size),
                                        mode="bilinear")
    return t.numpy()


def export_model(model: DualHeadSmileDetector, out: str | Path, *, threshold: float | None = None,
                 metrics: dict | None = None, provenance: dict | None = None, int8: bool = True,
                 crops: np.ndarray | None = None, opset: int = OPSET, name: str | None = None,
                 extra: dict | None = None) -> dict[str, Any]:
    """Write every file + model.json into `out`; returns the model.json dict."""
    from utjima.faces import LIVE, CropPolicy
    from utjima.judge import JudgeConfig

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    cfg = model.cfg
    c, s, t, f = cfg.in_chans, cfg.img_size, cfg.n_frames, model.feature_dim
    rng = np.random.default_rng(0)
    files: dict[str, dict] = {}
    parity: dict[str, float] = {}

    # encoder.onnx: one face crop (or N, for group photos) -> features
    sample = sample_crops(cfg, crops)
    p = out / "encoder.onnx"
    _onnx_export(_Encoder(model), (torch.from_numpy(sample[:8]),), p, ["crop"], ["features"],
                 {"crop": {0: "n"}, "features": {0: "n"}}, opset)
    with torch.no_grad():
        ref = model.encode(torch.from_numpy(sample)).numpy()
    got = ort_session(p).run(None, {"crop": sample})[0]
    parity["encoder"] = float(np.abs(got - ref).max())
    files["encoder"] = file_entry(p, out, inputs={"crop": ["n", c, s, s]},
                                  outputs={"features": ["n", f]})

    # step.onnx: the T-step LSTM over a window of features
    window = torch.from_numpy(rng.standard_normal((3, t, f)).astype(np.float32))
    window = window * torch.from_numpy(ref.std(0) + 1e-3) + torch.from_numpy(ref.mean(0))
    p = out / "step.onnx"
    _onnx_export(_Step(model), (window,), p, ["window"], ["smile_prob", "emotion_logits"],
                 {"window": {0: "n"}, "smile_prob": {0: "n"}, "emotion_logits": {0: "n"}}, opset)
    with torch.no_grad():
        ref_s, ref_e = _Step(model)(window)
    got_s, got_e = ort_session(p).run(None, {"window": window.numpy()})
    parity["step"] = float(max(np.abs(got_s - ref_s.numpy()).max(),
                               np.abs(got_e - ref_e.numpy()).max()))
    files["step"] = file_entry(p, out, inputs={"window": ["n", t, f]},
                               outputs={"smile_prob": ["n"],
                                        "emotion_logits": ["n", len(EMOTIONS)]})

    # smile_detector.onnx: the seed contract, whole 5-frame clip in one call
    frames = torch.rand(1, SEED_FRAMES, 3, SEED_SIZE, SEED_SIZE)
    p = out / "smile_detector.onnx"
    seed = SeedCompat(model)
    _onnx_export(seed, (frames,), p, ["frames"], ["smile_prob", "emotion_logits"], None, opset)
    with torch.no_grad():
        ref_s, ref_e = seed(frames)
    got_s, got_e = ort_session(p).run(None, {"frames": frames.numpy()})
    parity["seed"] = float(max(np.abs(got_s - ref_s.numpy()).max(),
                               np.abs(got_e - ref_e.numpy()).max()))
    files["seed"] = file_entry(p, out, inputs={"frames": [1, SEED_FRAMES, 3, SEED_SIZE, SEED_SIZE]},
                               outputs={"smile_prob": [1], "emotion_logits": [1, len(EMOTIONS)]})
    if cfg.n_frames != SEED_FRAMES:
        raise ValueError(f"the seed contract needs n_frames={SEED_FRAMES}, "
                         f"model has {cfg.n_frames}")

    worst = max(parity.values())
    if worst > PARITY_TOL:
        raise RuntimeError(f"ONNX differs from torch by {worst:.2e} > {PARITY_TOL:.0e}: {parity}")

    # encoder.int8.onnx: int8 weights (what the browser downloads), float32 compute
    if int8:
        files["encoder_int8"] = write_int8_encoder(out, sample, real_crops=crops is not None)

    # BlazeFace, from the bundled model folder, so every model folder stands alone.
    src = default_model_dir()
    for fname in FACE_DETECTOR_FILES:
        if (src / fname).resolve() != (out / fname).resolve():
            shutil.copyfile(src / fname, out / fname)
    files["face_detector"] = file_entry(out / "face_detector_short.onnx", out, range="short")
    files["face_detector_full"] = file_entry(out / "face_detector_full.onnx", out, range="full")

    policy = CropPolicy.default(size=s)
    smile_threshold = float(threshold if threshold is not None else 0.5)
    data = {
        "schema": SCHEMA,
        "name": name or f"utjima-{cfg.trunk}-{s}{cfg.channels}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model_config": cfg.to_dict(),
        "classes": list(EMOTIONS),
        "input": {"size": s, "channels": cfg.channels, "range": [0.0, 1.0],
                  "gray_weights": list(GRAY_WEIGHTS),
                  "normalisation": "inside the graph: feed 0..1 pixels"},
        "crop": policy.to_json(),
        "streaming": {"n_frames": t, "frame_interval_ms": cfg.frame_interval_ms, "feature_dim": f,
                      "detect_interval_ms": DETECT_INTERVAL_MS, "live": LIVE.to_json(),
                      "rule": "window = for k in 0..T-1 the latest frame at or before "
                              "t_ms - (T-1-k)*frame_interval_ms, else the first frame; "
                              "re-run step.onnx on the window at every frame (utjima/streaming.py)",
                      "reset": "clear the window when the face is lost"},
        "files": files,
        "thresholds": {"smile": smile_threshold},
        "judge": JudgeConfig(threshold=smile_threshold).to_dict(),
        "browser": {"encoder": "encoder_int8" if int8 else "encoder"},
        "opset": opset,
        "parity_max_abs_diff": parity,
        "metrics": metrics or {},
        "provenance": provenance or {},
        **(extra or {}),
    }
    validate(data, str(out / MODEL_JSON))
    (out / MODEL_JSON).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    load_contract(out)  # re-read: sha256s and schema must check out
    return data


def validation_crops(cfg: ModelConfig, n: int = 256) -> np.ndarray | None:
    """Real face crops (canonical framing, validation splits) to trace and compare graphs on;
    None when the research archives are not on this machine."""
    try:
        sets = [load_canonical(spec, size=cfg.img_size, channels=cfg.channels, training=True,
                               progress=False) for spec in ("smilesmiled:val", "ferplus:valid")]
    except DatasetError:
        return None
    rng = np.random.default_rng(0)
    images = np.concatenate([s.images[rng.choice(len(s), n // 2, replace=False)] for s in sets])
    return to_nchw(images)  # (N, S, S[, 3]) -> (N, C, S, S)


def metrics_from_report(report: dict) -> dict:
    """The headline figures of an evaluation report.json, for model.json["metrics"]."""
    if not report:
        return {}
    out: dict = {"threshold": report.get("thresholds", {})}
    for spec, r in report.get("sources", {}).items():
        m: dict = {"n": r["n"]}
        if "face_found" in r:
            m["face_found"] = r["face_found"]
        if "smile" in r:
            s = r["smile"]
            m.update({k: s[k] for k in ("accuracy", "precision", "recall", "f1", "auc", "ece")})
            m["ci95"] = s["ci95"]
        if "emotion" in r:
            m["emotion_accuracy"] = r["emotion"]["accuracy"]
            m["emotion_accuracy_ci95"] = r["emotion"]["ci95"]["accuracy"]
        out[spec] = m
    return out


class ExportError(UtjimaError):
    """A checkpoint or report that cannot be exported."""


def export_checkpoint(checkpoint: str | Path, out: str | Path, *, threshold: float | None = None,
                      report: str | Path | None = None, int8: bool = True,
                      opset: int = OPSET) -> dict[str, Any]:
    """A `utjima train` checkpoint -> a model folder. The threshold is `threshold`, else the one
    an evaluation `report` (report.json) selected on validation data, else 0.5; the report's
    metrics and the checkpoint's provenance go into model.json. Returns the model.json dict."""
    ckpt_path = Path(checkpoint)
    if not ckpt_path.is_file():
        raise ExportError(f"checkpoint {ckpt_path} does not exist")
    try:
        model, ckpt = load_checkpoint(ckpt_path)
    except CheckpointError:
        raise
    except (ValueError, RuntimeError, KeyError) as e:
        raise ExportError(f"cannot load {ckpt_path}: {e}") from e
    rep = {}
    if report:
        try:
            rep = json.loads(Path(report).read_text())
        except (OSError, ValueError) as e:
            raise ExportError(f"cannot read the report {report}: {e}") from e
    if threshold is None:
        threshold = rep.get("thresholds", {}).get("selected")
    provenance = {**ckpt.get("provenance", {}), "train_config": ckpt.get("train_config", {}),
                  "checkpoint": ckpt_path.name, "epoch": ckpt.get("epoch", -1) + 1}
    if any(str(spec).split(":")[0] in RESEARCH_DATA for spec in provenance.get("train", [])):
        provenance["terms"] = RESEARCH_TERMS
    return export_model(model, out, threshold=threshold, metrics=metrics_from_report(rep),
                        provenance=provenance, int8=int8, opset=opset,
                        crops=validation_crops(model.cfg))


def seed_reference(cache: str | Path | None = None) -> Path:
    """The seed design's own graph for speed comparisons: the `seed` preset (MobileNetV3-Small
    on five whole 224x224 RGB frames + LSTM), random weights, exported once with the seed
    contract into `cache` (default <repo>/.cache/seed_reference). Timing only: its weights
    are untrained."""
    repo = Path(__file__).resolve().parents[1]
    out = Path(cache) if cache else repo / ".cache" / "seed_reference"
    p = out / "smile_detector.onnx"
    if not p.is_file():
        from utjima.model import get_config

        out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        m = DualHeadSmileDetector(get_config("seed")).eval()
        with atomic_write(p) as tmp:
            _onnx_export(SeedCompat(m), (torch.rand(1, SEED_FRAMES, 3, SEED_SIZE, SEED_SIZE),), tmp,
                         ["frames"], ["smile_prob", "emotion_logits"], None, OPSET)
    return p
