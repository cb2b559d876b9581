"""`utjima evaluate`: measure a model on labelled data; write report.json, plots, report.html.

Every still goes through the product's own path: BlazeFace + the crop policy
(utjima.data.framing), then the exported ONNX encoder + step (or a torch checkpoint).
Faces BlazeFace misses keep a whole-crop fallback, so a test set is scored in full; the
report gives the detection rate too. Clip folders are scored per frame with the streaming
window, and per clip by the judge (did the player laugh?).

Thresholds are chosen only on validation specs (`--select-threshold`); test specs and
GENKI-4K are refused there. Rules: `youden` (max TPR - FPR), `best_f1`, and
`youden_laugh_like`: Youden's threshold, raised when needed so that at most
MAX_LAUGH_LIKE_FPR of the validation faces whose majority emotion is laugh-like (sad, fear,
surprise, disgust, angry: what the judge must never call a laugh) score as smiling. The
chosen threshold is what `utjima export --report` writes into model.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from utjima import EMOTIONS, LAUGH_LIKE
from utjima.data import ClipSet, FaceSet, load_canonical
from utjima.utils import to_nchw

TEST_SPECS = ("genki4k", "ferplus:test", "smilesmiled:test")
THRESHOLD_RULES = ("youden", "best_f1", "youden_laugh_like")
MAX_LAUGH_LIKE_FPR = 0.03  # the issue-11 target for false smiles on laugh-like faces


class Scorer:
    """Still crops -> (smile_prob, emotion probs); frames -> features -> windows for clips."""

    def __init__(self, model_dir=None, checkpoint=None, int8: bool = False):
        self.torch_model = None
        if checkpoint:
            from utjima.model import load_checkpoint

            self.torch_model, _ = load_checkpoint(checkpoint)
            self.torch_model.eval()
            cfg = self.torch_model.cfg
            self.size, self.channels = cfg.img_size, cfg.channels
            self.n_frames, self.interval = cfg.n_frames, cfg.frame_interval_ms
            self.name = str(checkpoint)
        else:
            from utjima.runtime import SmileModel

            self.onnx = SmileModel(model_dir, int8=int8)
            c = self.onnx.contract
            self.size, self.channels = c.size, c.channels
            self.n_frames = int(c.streaming["n_frames"])
            self.interval = float(c.streaming["frame_interval_ms"])
            self.name = f"{c.dir}{' (int8 encoder)' if int8 else ''}"
            self.model_threshold = c.smile_threshold

    def stills(self, images_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.torch_model is not None:
            from utjima.model import predict_stills

            return predict_stills(self.torch_model, images_u8)
        x = to_nchw(images_u8)  # (N, S, S[, 3]) -> (N, C, S, S)
        out_s, out_e = [], []
        for i in range(0, len(x), 256):
            s, e = self.onnx.score_crops(x[i : i + 256])
            out_s.append(s)
            out_e.append(e)
        return np.concatenate(out_s), np.concatenate(out_e)

    def encode(self, crops: np.ndarray) -> np.ndarray:
        if self.torch_model is not None:
            import torch

            with torch.no_grad():
                return self.torch_model.encode(torch.from_numpy(crops)).numpy()
        return self.onnx.encode(crops)

    def step(self, windows: np.ndarray) -> np.ndarray:
        if self.torch_model is not None:
            import torch

            with torch.no_grad():
                return torch.sigmoid(self.torch_model.step(torch.from_numpy(windows))[0]).numpy()
        return self.onnx.step(windows)[0]


def _load(spec: str, scorer: Scorer, limit: int | None, progress: bool) -> FaceSet | ClipSet:
    return load_canonical(spec, size=scorer.size, channels=scorer.channels, training=False,
                          limit=limit, progress=progress)


def score_clips(cs, scorer: Scorer) -> dict:
    """Per-frame smile_prob with the streaming window; clip score = the judge's verdict."""
    from utjima.data.augment import plain_frames
    from utjima.streaming import window_indices

    c = 1 if scorer.channels == "gray" else 3
    if cs.crop == "full" and scorer.torch_model is not None:
        raise ValueError(f"{cs.source} holds whole camera frames: "
                         "evaluate it with an exported model (--model)")
    frame_y, frame_p, clip_y, clip_p = [], [], [], []
    for clip in cs.clips:
        if cs.crop == "full":  # the live path: detect, crop, stream; no face = not smiling
            stream = scorer.onnx.stream()
            probs = np.array([stream.process(t, f)["smile_prob"] or 0.0
                              for t, f in zip(clip.times_ms, clip.frames, strict=True)])
        else:
            crops = plain_frames(clip.frames, scorer.size, c)            # (N, C, S, S)
            feats = scorer.encode(crops)                                 # (N, F)
            times = list(clip.times_ms)
            idx = np.array([window_indices(times[: i + 1], times[i], scorer.n_frames,
                                           scorer.interval)
                            for i in range(len(times))])                 # (N, T)
            probs = scorer.step(feats[idx])                              # (N, T, F) -> (N,)
        m = clip.smile >= 0
        frame_y.append(clip.smile[m] == 1)
        frame_p.append(probs[m])
        if clip.clip_smile >= 0:
            clip_y.append(clip.clip_smile == 1)
            clip_p.append(float(probs.max()))
    return {"frame_y": np.concatenate(frame_y) if frame_y else np.zeros(0, bool),
            "frame_p": np.concatenate(frame_p) if frame_p else np.zeros(0),
            "clip_y": np.array(clip_y, bool), "clip_p": np.array(clip_p)}


def _smile_scores(ds: FaceSet | ClipSet, scorer: Scorer):
    """-> (y bool, p float, emotion labels, emotion probs, per-clip scores or None); clips are
    scored once, per frame and per clip (`score_clips`)."""
    if isinstance(ds, FaceSet):
        sp, ep = scorer.stills(ds.images)
        m = ds.smile >= 0
        e = ds.emotion_label >= 0
        return ds.smile[m] == 1, sp[m], ds.emotion_label[e], ep[e], None
    r = score_clips(ds, scorer)
    return r["frame_y"], r["frame_p"], np.zeros(0, int), np.zeros((0, len(EMOTIONS))), r


def select_threshold(specs: list[str], scorer: Scorer, rule: str, limit, progress) -> dict:
    from utjima.metrics import capped_fpr_threshold, select_thresholds

    bad = [s for s in specs if s in TEST_SPECS or s.startswith("genki4k")]
    if bad:
        raise ValueError(f"{bad}: thresholds are chosen on validation data, never on a test set "
                         f"(use e.g. smilesmiled:val, ferplus:valid)")
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"threshold rule must be one of {', '.join(THRESHOLD_RULES)}, "
                         f"got {rule!r}")
    ys, ps, hard = [], [], []
    for spec in specs:
        ds = _load(spec, scorer, limit, progress)
        if ds.test_only:
            raise ValueError(f"{spec} is a held-out test set: thresholds are chosen on validation "
                             f"data only")
        y, p, _, _, _ = _smile_scores(ds, scorer)
        ys.append(y)
        ps.append(p)
        if isinstance(ds, FaceSet):  # laugh-like faces: majority sad, fear, surprise, ...
            like = np.isin(ds.emotion_label, [EMOTIONS.index(e) for e in LAUGH_LIKE])
            hard.append(p[like[ds.smile >= 0] & ~y])
    t = select_thresholds(np.concatenate(ys), np.concatenate(ps))
    if rule == "youden_laugh_like":
        hard_p = np.concatenate(hard) if hard else np.zeros(0)
        if not len(hard_p):
            raise ValueError(f"rule youden_laugh_like needs a validation spec with emotion labels "
                             f"(e.g. ferplus:valid) among {specs}")
        cap = capped_fpr_threshold(hard_p, MAX_LAUGH_LIKE_FPR)
        t["youden_laugh_like"] = max(t["youden"], cap)
        t["laugh_like"] = {"n": int(len(hard_p)), "max_fpr": MAX_LAUGH_LIKE_FPR, "cap": cap,
                           "fpr_at_youden": float((hard_p >= t["youden"]).mean()),
                           "fpr_at_selected": float((hard_p >= t["youden_laugh_like"]).mean())}
    t["rule"] = rule
    t["selected"] = t[rule]
    t["selected_on"] = specs
    return t


def by_framing(y: np.ndarray, p: np.ndarray, found: np.ndarray, threshold: float) -> dict:
    """Smile figures split by whether BlazeFace found the face: a weak fallback (whole crop)
    shows up here instead of hiding in the total."""
    from utjima.metrics import binary_at, roc_auc

    out = {}
    for name, m in (("found", found), ("fallback", ~found)):
        if m.any():
            auc = roc_auc(y[m], p[m])
            out[name] = {"n": int(m.sum()),
                         "accuracy": binary_at(y[m], p[m], threshold)["accuracy"],
                         "auc": None if np.isnan(auc) else auc, "positive_rate": float(y[m].mean())}
    return out


def evaluate(specs: list[str], out: str | Path, model_dir=None, checkpoint=None,
             select_on: list[str] | None = None, rule: str = "youden", n_boot: int = 1000,
             limit: int | None = None, progress: bool = True, plots: bool = True,
             int8: bool = False) -> dict:
    from utjima.metrics import binary_report, multiclass_report
    from utjima.report import plot_binary, plot_confusion, write_html

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    scorer = Scorer(model_dir, checkpoint, int8=int8)
    report: dict = {"model": scorer.name, "sources": {}}
    if select_on:
        report["thresholds"] = select_threshold(select_on, scorer, rule, limit, progress)
        threshold = report["thresholds"]["selected"]
    else:
        threshold = getattr(scorer, "model_threshold", 0.5)
        where = "model.json" if checkpoint is None else "default 0.5"
        report["thresholds"] = {"selected": threshold, "selected_on": where}
    for spec in specs:
        ds = _load(spec, scorer, limit, progress)
        name = spec.replace(":", "_").replace("/", "_")
        r: dict = {"spec": spec, "n": len(ds), "description": ds.describe()}
        framing = ds.info.get("framing")
        if framing:
            r["face_found"] = framing["found"] / max(framing["n"], 1)
        y, p, el, ep, c = _smile_scores(ds, scorer)
        r["plots"] = []
        if len(y) and 0 < y.sum() < len(y):
            r["smile"] = binary_report(y, p, threshold, n_boot)
            if plots:
                r["plots"] += plot_binary(name, y, p, threshold, out)
            if framing and "found_mask" in framing and not framing["found_mask"].all():
                found = framing["found_mask"][ds.smile >= 0]
                r["smile_by_framing"] = by_framing(y, p, found, threshold)
        if len(el):
            r["emotion"] = multiclass_report(el, ep, list(EMOTIONS), n_boot)
            if plots:
                cm = np.array(r["emotion"]["confusion"])
                r["plots"].append(plot_confusion(f"{name}_emotion", cm, list(EMOTIONS), out))
        if c is not None and 0 < c["clip_y"].sum() < len(c["clip_y"]):
            r["clip_smile"] = binary_report(c["clip_y"], c["clip_p"], threshold, n_boot)
        report["sources"][spec] = r
    report["elapsed_s"] = round(time.time() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    write_html(report, out)
    return report


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def summary_lines(report: dict) -> list[str]:
    lines = []
    for spec, r in report["sources"].items():
        parts = [f"{spec:22s} n={r['n']:5d}"]
        if "face_found" in r:
            parts.append(f"face {r['face_found']:.1%}")
        if "smile" in r:
            s = r["smile"]
            lo, hi = s["ci95"]["accuracy"]
            parts.append(f"smile acc {s['accuracy']:.4f} [{lo:.4f}, {hi:.4f}] "
                         f"AUC {s['auc']:.4f} F1 {s['f1']:.4f}")
        if "emotion" in r:
            e = r["emotion"]
            lo, hi = e["ci95"]["accuracy"]
            parts.append(f"7-class acc {e['accuracy']:.4f} [{lo:.4f}, {hi:.4f}]")
        lines.append("  ".join(parts))
    return lines
