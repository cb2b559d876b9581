"""`utjima evaluate`: measure a model on labelled data; write report.json and report.html.

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
chosen threshold is what `utjima export --report` writes into model.json. Every input is
checked (`check_inputs`) before any data is read.

report.html is built with the report kit (utjima.report): headline table with intervals,
the threshold and how it was chosen, ROC / PR / reliability charts with the operating
point, confusion heat maps, per-framing and per-class tables, the worst errors as face
thumbnails (false laughs first) and the provenance of model and data.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from utjima import EMOTIONS, LAUGH_LIKE
from utjima.data import ClipSet, FaceSet, load_canonical
from utjima.utils import UtjimaError, to_nchw

MAX_LAUGH_LIKE_FPR = 0.03  # the issue-11 target for false smiles on laugh-like faces
RULES = {"youden": "Youden's J (max TPR - FPR)", "best_f1": "best F1",
         "youden_laugh_like": "Youden's J, raised until at most "
                              f"{MAX_LAUGH_LIKE_FPR:.0%} of laugh-like faces score as smiling"}
THRESHOLD_RULES = tuple(RULES)


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




class EvaluateError(UtjimaError, ValueError):
    """Evaluation inputs that cannot work: a spec, a selection set, a rule, a folder."""


def check_inputs(specs: list[str], out: str | Path, *, model_dir=None, checkpoint=None,
                 select_on: list[str] | None = None, rule: str = "youden") -> None:
    """Everything `evaluate` is given, checked before any work (no data or model is read
    beyond model.json): each spec parses and its data is there, the selection specs are
    validation data, the rule exists, `out` is not a file, the model folder or checkpoint
    is there. Raises a UtjimaError naming the valid choices."""
    from utjima.data import check_spec

    if not specs:
        raise EvaluateError("nothing to evaluate: give at least one --data SPEC")
    for spec in [*specs, *(select_on or [])]:
        check_spec(spec)
    _check_selection(select_on or [], rule)
    if Path(out).exists() and not Path(out).is_dir():
        raise EvaluateError(f"--out {out} is a file; give a folder for the report")
    if checkpoint is not None:
        if not Path(checkpoint).is_file():
            raise EvaluateError(f"checkpoint {checkpoint} does not exist")
    else:
        from utjima.contract import load_contract

        load_contract(model_dir)


def _check_selection(specs: list[str], rule: str) -> None:
    """Thresholds come from validation data by a known rule."""
    from utjima.data import held_out

    bad = [s for s in specs if held_out(s)]
    if bad:
        raise EvaluateError(f"{', '.join(bad)}: a held-out test set; thresholds are chosen on "
                            "validation data, never on a test set (use e.g. smilesmiled:val, "
                            "ferplus:valid)")
    if rule not in RULES:
        raise EvaluateError(f"unknown threshold rule {rule!r}; valid: {', '.join(RULES)}")


def select_threshold(specs: list[str], scorer: Scorer, rule: str, limit, progress) -> dict:
    from utjima.metrics import capped_fpr_threshold, select_thresholds

    _check_selection(specs, rule)
    ys, ps, hard = [], [], []
    for spec in specs:
        ds = _load(spec, scorer, limit, progress)
        if ds.test_only:
            raise EvaluateError(f"{spec} is a held-out test set: thresholds are chosen on "
                                "validation data only")
        y, p, _, _, _ = _smile_scores(ds, scorer)
        ys.append(y)
        ps.append(p)
        if isinstance(ds, FaceSet):  # laugh-like faces: majority sad, fear, surprise, ...
            like = np.isin(ds.emotion_label, [EMOTIONS.index(e) for e in LAUGH_LIKE])
            hard.append(p[like[ds.smile >= 0] & ~y])
    y = np.concatenate(ys)
    t = select_thresholds(y, np.concatenate(ps))
    if rule == "youden_laugh_like":
        hard_p = np.concatenate(hard) if hard else np.zeros(0)
        if not len(hard_p):
            raise EvaluateError(f"rule youden_laugh_like needs a validation spec with emotion "
                                f"labels (e.g. ferplus:valid) among {specs}")
        cap = capped_fpr_threshold(hard_p, MAX_LAUGH_LIKE_FPR)
        t["youden_laugh_like"] = max(t["youden"], cap)
        t["laugh_like"] = {"n": int(len(hard_p)), "max_fpr": MAX_LAUGH_LIKE_FPR, "cap": cap,
                           "fpr_at_youden": float((hard_p >= t["youden"]).mean()),
                           "fpr_at_selected": float((hard_p >= t["youden_laugh_like"]).mean())}
    t.update(rule=rule, selected=t[rule], selected_on=specs, n=int(len(y)), n_pos=int(y.sum()))
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


def worst_errors(y: np.ndarray, p: np.ndarray, threshold: float,
                 n: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the `n` surest false laughs (non-smiles scored highest) and the `n`
    surest misses (smiles scored lowest)."""
    fp = np.flatnonzero(~y & (p >= threshold))
    fn = np.flatnonzero(y & (p < threshold))
    return fp[np.argsort(-p[fp], kind="stable")][:n], fn[np.argsort(p[fn], kind="stable")][:n]


@dataclass
class _Scored:
    """What the HTML page needs of one source beyond report.json: scores and where they came
    from (`rows`: the FaceSet index of every scored face; None for clips)."""

    spec: str
    ds: FaceSet | ClipSet
    y: np.ndarray
    p: np.ndarray
    rows: np.ndarray | None


def evaluate(specs: list[str], out: str | Path, model_dir=None, checkpoint=None,
             select_on: list[str] | None = None, rule: str = "youden", n_boot: int = 1000,
             limit: int | None = None, progress: bool = True, html: bool = True,
             int8: bool = False, n_errors: int = 20, command: str | None = None) -> dict:
    """Score `specs`, write `out`/report.json and `out`/report.html (self-contained);
    `n_errors` = worst errors per source kept (ids in the JSON, thumbnails in the page)."""
    from utjima.metrics import binary_report, multiclass_report

    check_inputs(specs, out, model_dir=model_dir, checkpoint=checkpoint, select_on=select_on,
                 rule=rule)
    t0 = time.time()
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    scorer = Scorer(model_dir, checkpoint, int8=int8)  # a bad checkpoint fails before `out` exists
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"model": scorer.name, "created": created, "command": command,
                    "bootstrap": n_boot, "sources": {}}
    if select_on:
        report["thresholds"] = select_threshold(select_on, scorer, rule, limit, progress)
        threshold = report["thresholds"]["selected"]
    else:
        threshold = getattr(scorer, "model_threshold", 0.5)
        where = "model.json" if checkpoint is None else "default 0.5"
        report["thresholds"] = {"selected": threshold, "selected_on": where}
    scored = []
    for spec in specs:
        ds = _load(spec, scorer, limit, progress)
        r: dict = {"spec": spec, "n": len(ds), "description": ds.describe()}
        framing = ds.info.get("framing")
        if framing:
            r["face_found"] = framing["found"] / max(framing["n"], 1)
            r["framing_policy"] = framing.get("policy")
        y, p, el, ep, c = _smile_scores(ds, scorer)
        rows = np.flatnonzero(ds.smile >= 0) if isinstance(ds, FaceSet) else None
        if len(y) and 0 < y.sum() < len(y):
            r["smile"] = binary_report(y, p, threshold, n_boot)
            if framing and "found_mask" in framing and not framing["found_mask"].all():
                found = framing["found_mask"][ds.smile >= 0]
                r["smile_by_framing"] = by_framing(y, p, found, threshold)
            if rows is not None:
                fp, fn = worst_errors(y, p, threshold, n_errors)
                r["worst_errors"] = {
                    key: [{"id": str(ds.ids[rows[i]]), "smile_prob": round(float(p[i]), 4)}
                          for i in pos] for key, pos in (("false_laughs", fp), ("missed", fn))}
        if len(el):
            r["emotion"] = multiclass_report(el, ep, list(EMOTIONS), n_boot)
        if c is not None and 0 < c["clip_y"].sum() < len(c["clip_y"]):
            r["clip_smile"] = binary_report(c["clip_y"], c["clip_p"], threshold, n_boot)
        report["sources"][spec] = r
        scored.append(_Scored(spec, ds, y, p, rows))
    report["elapsed_s"] = round(time.time() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    if html:
        report_page(report, scored, scorer, n_errors).write(out / "report.html")
    return report


# --- the HTML page (utjima.report's kit) ----------------------------------------------

NAMES = {"genki4k": "GENKI-4K", "ferplus": "FER+", "smilesmiled": "SMILEsmileD",
         "ckplus": "CK+", "clips": "clips", "images": "images"}


def _pretty(spec: str) -> str:
    name, _, arg = spec.partition(":")
    split = {"val": "validation", "valid": "validation", "all": "all"}.get(arg, arg)
    return f"{NAMES.get(name, name)} {split}".strip()


def _rel(path) -> str:
    """A path as the user would type it: relative to the working folder when inside it."""
    p = Path(str(path).split(" (")[0]).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(p)


def _threshold_text(thr: dict) -> str:
    where = thr.get("selected_on")
    if isinstance(where, list):
        return f"rule {thr.get('rule')} on {' + '.join(where)}"
    return f"from {where}"


def report_page(report: dict, scored: list[_Scored], scorer: Scorer, n_errors: int = 20):
    """The evaluation report as a `utjima.report.Page`."""
    from utjima import report as rk

    thr = report["thresholds"]
    t = thr["selected"]
    contract = getattr(getattr(scorer, "onnx", None), "contract", None)
    model_name = contract.data.get("name", "") if contract else Path(scorer.name).name
    specs = list(report["sources"])
    page = rk.Page("Smile detector evaluation",
                   subtitle=f"{model_name} on {', '.join(_pretty(s) for s in specs)}",
                   meta={"model": _rel(scorer.name) + (" (int8 encoder)" if "int8" in scorer.name
                                                      else ""),
                         "threshold": f"{rk.fmt(t)}, {_threshold_text(thr)}",
                         "written": _when(report["created"])})
    srcs = report["sources"]
    smile = [s for s in scored if "smile" in srcs[s.spec]]

    # headline
    rows = [rk.Row(_pretty(s.spec), srcs[s.spec]["smile"], note=s.spec,
                   extra={"faces found %": srcs[s.spec].get("face_found")}) for s in smile]
    blocks = [rk.headline_table(rows, extra_columns=["faces found %"])] if rows else []
    emo = [(spec, r["emotion"]) for spec, r in srcs.items() if "emotion" in r]
    if emo:
        blocks.append(rk.Html("<h3 style='margin-top:18px'>Emotion, 7 classes</h3>"))
        blocks.append(rk.table(
            ["", "n", "accuracy %", "balanced accuracy %", "macro F1 %"],
            [[_pretty(spec), e["n"], rk.Est(e["accuracy"], *e["ci95"]["accuracy"]),
              rk.Est(e["balanced_accuracy"]), rk.Est(e["macro_f1"])] for spec, e in emo],
            percent_cols=(2, 3, 4), cls="headline compact"))
    page.section("Headline", *blocks, intro=(
        f"Smile decision at smile_prob ≥ {rk.fmt(t)}. Small grey figures: 95 % bootstrap "
        f"intervals ({report['bootstrap']:,} resamples); under n, the number of smiling "
        "faces. Faces found: the share BlazeFace located; the rest are scored on the whole "
        "crop (see By framing). ECE: expected calibration error, 0 = smile_prob is a true "
        "probability."))

    # threshold
    if isinstance(thr.get("selected_on"), list):
        scores = {"youden": f"J = {rk.fmt(thr['youden_j'])}",
                  "best_f1": f"F1 = {rk.fmt(thr['best_f1_value'])}"}
        if "laugh_like" in thr:
            ll = thr["laugh_like"]
            scores["youden_laugh_like"] = (
                f"laugh-like faces over it: {rk.fmt(ll['fpr_at_selected'], percent=True)} % "
                f"(at Youden's: {rk.fmt(ll['fpr_at_youden'], percent=True)} %, n = {ll['n']:,})")
        cand = [[RULES[r], thr[r], scores[r], "✓ used" if thr["rule"] == r else ""]
                for r in RULES if r in thr]
        if contract is not None:
            cand.append(["model.json (shipped)", contract.smile_threshold, "", ""])
        page.section("Threshold", rk.table(["rule", "threshold", "on validation", ""], cand),
                     intro=rk.Html(
                         f"Chosen on {rk.esc(' + '.join(thr['selected_on']))} only "
                         f"({thr['n']:,} faces, {thr['n_pos']:,} smiling); test sets never "
                         "choose anything. <code>--threshold-rule</code> picks the rule, "
                         "<code>utjima export --report</code> writes the threshold into "
                         "model.json."))
    else:
        page.section("Threshold", rk.callout(
            f"{rk.fmt(t)}, taken {_threshold_text(thr)}: no --select-threshold given."))

    # curves and confusion
    if smile:
        series = [rk.Series(_pretty(s.spec), s.y, s.p, t) for s in smile]
        page.section("Curves", rk.curve_panel(series), intro=(
            "Every test set on one chart; the ringed dot is where the threshold puts the "
            "detector. A false laugh in the game is a round lost without laughing."))
        cms = [rk.confusion_matrix(srcs[s.spec]["smile"]["confusion"],
                                   title=f"{_pretty(s.spec)} (n = {len(s.y):,})") for s in smile]
        page.section("Smile confusion", rk.grid(*cms), intro=(
            "Rows: the label; columns: the decision. Large: share of the row; small: count. "
            "Top right: false laughs; bottom left: missed smiles."))
    framing = [(spec, r["smile_by_framing"]) for spec, r in srcs.items()
               if "smile_by_framing" in r]
    if framing:
        page.section("By framing", rk.table(
            ["", "face found: n", "accuracy %", "AUC", "whole-crop fallback: n", "accuracy %",
             "AUC"],
            [[_pretty(spec), f.get("found", {}).get("n"), f.get("found", {}).get("accuracy"),
              f.get("found", {}).get("auc"), f.get("fallback", {}).get("n"),
              f.get("fallback", {}).get("accuracy"), f.get("fallback", {}).get("auc")]
             for spec, f in framing], percent_cols=(2, 5)),
            intro="The product only scores faces it finds; test faces BlazeFace misses are "
                  "scored on the whole crop so every test image counts. A weak fallback "
                  "shows here instead of hiding in the total.")
    for spec, e in emo:
        classes = e["classes"]
        per = e["per_class"]
        page.section(f"Emotions: {_pretty(spec)}", rk.grid(
            rk.confusion_matrix(e["confusion"], classes, title=f"{_pretty(spec)}, 7 classes "
                                f"(n = {e['n']:,})"),
            rk.titled("Per class", rk.table(
                ["class", "precision %", "recall %", "F1 %", "n"],
                [[c, per[c]["precision"], per[c]["recall"], per[c]["f1"], per[c]["support"]]
                 for c in classes], percent_cols=(1, 2, 3)))),
            intro="Majority label of the annotators against the model's top class.")
    clip = [(spec, r["clip_smile"]) for spec, r in srcs.items() if "clip_smile" in r]
    if clip:
        page.section("Clips", rk.headline_table([rk.Row(_pretty(s), m, note=s) for s, m in clip]),
                     intro="One decision per clip: did the peak smile_prob reach the threshold?")

    # worst errors
    fps, fns = [], []
    for s in smile:
        if s.rows is None:
            continue
        fp, fn = worst_errors(s.y, s.p, t, n_errors)
        fps += [(float(s.p[i]), s, i) for i in fp]
        fns += [(float(s.p[i]), s, i) for i in fn]
    if any(s.rows is not None for s in smile):
        def thumbs(items, tone):
            out = []
            for p, s, i in items:
                found = s.ds.info.get("framing", {}).get("found_mask")
                tag = "" if found is None or found[s.rows[i]] else "no face found"
                out.append(rk.Thumb(s.ds.images[s.rows[i]], rk.fmt(p, 3),
                                    f"{_pretty(s.spec)}\n{Path(str(s.ds.ids[s.rows[i]])).name}",
                                    tone, tag))
            return out

        fps = sorted(fps, key=lambda e: -e[0])[:n_errors]
        fns = sorted(fns, key=lambda e: e[0])[: max(n_errors // 2, 1)]
        page.section(
            "Worst errors",
            rk.Html("<h3>False laughs: not smiling, scored highest</h3>"),
            rk.thumbnail_grid(thumbs(fps, "false_laugh"), research=True, empty="none"),
            rk.Html("<h3 style='margin-top:16px'>Missed smiles: smiling, scored lowest</h3>"),
            rk.thumbnail_grid(thumbs(fns, "missed"), research=True, empty="none"),
            intro="The crops exactly as the model sees them (the product's face framing), "
                  "across every test set, with their smile_prob. Some are label errors in "
                  "the data, some are framing misses (tagged when BlazeFace found no face "
                  "and the whole crop was scored). These images come from research datasets: "
                  "keep them out of anything committed or published.")
    page.section("Provenance", rk.provenance(_provenance(report, scored, scorer, contract),
                                             wide=("Data",)))
    return page


def _when(iso: str) -> str:
    return iso.replace("T", " ")[:16] + " UTC"


def _provenance(report: dict, scored: list[_Scored], scorer: Scorer, contract) -> dict:
    import platform

    from utjima import __version__
    from utjima import report as rk
    from utjima.data import SPECS, parse_spec
    from utjima.data.cache import info

    model: dict = {"folder": _rel(scorer.name)}
    if contract is not None:
        d = contract.data
        mc = d.get("model_config", {})
        model.update({
            "name": d.get("name"), "exported": d.get("created"),
            "network": f"{mc.get('trunk')}, {mc.get('img_size')} px {mc.get('channels')}, "
                       f"{mc.get('n_frames')}-frame window",
            "encoder sha256": d["files"]["encoder"]["sha256"][:16] + "…",
            "step sha256": d["files"]["step"]["sha256"][:16] + "…",
            "threshold in model.json": contract.smile_threshold})
        prov = d.get("provenance") or {}
        if prov:
            model["trained on"] = prov.get("train")
            model["selected on"] = prov.get("val")
            epochs = (prov.get("train_config") or {}).get("epochs")
            if epochs:
                model["epochs"] = epochs
    else:
        model["checkpoint"] = _rel(scorer.name)
    rows = []
    for s in scored:
        r = report["sources"][s.spec]
        name, _ = parse_spec(s.spec)
        a = info(name) if SPECS[name] is not None else None
        rows.append([rk.Html(f"<code>{rk.esc(s.spec)}</code>"), r["n"], r.get("face_found"),
                     a.file if a else _rel(s.spec.partition(":")[2]),
                     a.sha256[:16] + "…" if a else "", r.get("framing_policy", ""),
                     r["description"].partition(": ")[2]])
    data = rk.table(["spec", "faces", "found %", "archive", "sha256", "framing key",
                     "labels"], rows, percent_cols=(2,))
    import onnxruntime

    run = {"command": report.get("command") or "evaluate()", "started": _when(report["created"]),
           "took": f"{report['elapsed_s']:.0f} s", "bootstrap": f"{report['bootstrap']:,}",
           "utjima": __version__, "python": platform.python_version(),
           "numpy": np.__version__, "onnxruntime": onnxruntime.__version__}
    return {"Model": model, "Run": run, "Data": data}


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def summary_lines(report: dict) -> list[str]:
    """The console summary: one aligned row per source, percentages with 95 % intervals."""
    def pct(v, ci) -> str:
        if not np.isfinite(ci).all():  # --bootstrap 0
            return f"{v * 100:5.1f}"
        return f"{v * 100:5.1f} [{ci[0] * 100:5.1f}, {ci[1] * 100:5.1f}]"

    w = max([len(s) for s in report["sources"]] + [8])
    lines = [f"{'data':{w}s}  {'n':>6s}  {'faces':>6s}  {'smile accuracy %':20s}  "
             f"{'AUC':21s}  {'F1 %':>5s}  7-class accuracy %"]
    for spec, r in report["sources"].items():
        s, e = r.get("smile"), r.get("emotion")
        face = f"{r['face_found'] * 100:5.1f}%" if "face_found" in r else "     –"
        acc = pct(s["accuracy"], s["ci95"]["accuracy"]) if s else "–"
        auc = "–"
        if s:
            lo, hi = s["ci95"]["auc"]
            auc = f"{s['auc']:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if np.isfinite([lo, hi]).all()
                                       else "")
        f1 = f"{s['f1'] * 100:5.1f}" if s else "    –"
        emo = pct(e["accuracy"], e["ci95"]["accuracy"]) if e else "–"
        lines.append(f"{spec:{w}s}  {r['n']:6d}  {face:>6s}  {acc:20s}  {auc:21s}  {f1}  {emo}")
    return lines
