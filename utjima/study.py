"""`utjima study`: the seed's fine-tuning A/B on clips, run as an experiment that holds.

The seed fine-tuned its model on 170 self-recorded clips (AdamW lr 5e-5, batch 4, train/val
9:1, constant lr), compared 7/10/30/50 epochs on the same 80 held-out clips, kept 10 epochs
and re-chose the threshold on validation. One split, one seed: a 6-clip difference. This
module runs that recipe so that its answer can be trusted, or is seen not to be:

- **Unit.** A clip: one recorded prompt, or for CK+ one neutral -> apex sequence played as a
  webcam shows it (`utjima.data.ckplus.webcam_video`'s timing: the neutral face held
  HOLD_NEUTRAL_MS, the sequence at 30 fps, the apex held HOLD_APEX_MS). Every step of a
  clip is scored with the streaming window (`utjima.streaming`), and the real judge
  (`utjima.judge.segments`, model.json's rules at the arm's threshold) says whether the
  player laughed: a clip is right iff "laughed" equals its label (`clip_smile`; CK+: the
  sequence is happy). Frame figures use each labelled recorded frame once.
- **Folds.** Subject-grouped K-fold: every participant's clips are in exactly one test
  fold, participants with a smile clip dealt first so every fold has smiles
  (`ckplus.subject_folds`). Inside a fold's training participants, per seed, the seed's
  9:1 split holds out participants for validation (clips, when a fold has one participant
  to train on); thresholds are re-chosen there only.
- **Arms.** baseline (the start model at its own threshold), the baseline with its
  threshold re-chosen on inner validation, 7/10/30/50 epochs (at a constant learning rate
  these are points on one run's curve: one run per fold and seed, evaluated after every
  epoch), early stopping on the inner validation loss (patience; the best epoch so far,
  epoch 0 included), the trunk frozen (LSTM + heads, its own run), and the ensemble of a
  fold's models (its seeds' early-stopping models, probabilities averaged).
- **Statistics.** Clip metrics pooled over folds, per seed, averaged over seeds, with 95 %
  intervals from a bootstrap that resamples participants (clips of one person are not
  independent). Paired against the baseline on the same clips: the exact McNemar test per
  seed and a paired participant bootstrap of the accuracy difference. Per-participant
  accuracy, laugh-onset latency (the judge's laugh start minus the apex; for recorded clips
  minus the first labelled smile frame), learning curves and how the inner validation loss
  tracks held-out performance.
- **Outputs** in OUT: `study.json` (folds, per-arm per-seed metrics, p-values, intervals,
  curves, timings, provenance), `predictions.json` (out-of-fold scores per clip and frame,
  for `utjima review`; docs/study.md), `report.html` (the report kit's look; its first
  table is the seed's), `runs/<fold>-<seed>-<kind>/` (each run's metrics.jsonl).
- **Resumable.** A run is finished when its `run.json` exists and is skipped; a run that
  was killed resumes from its `last.pt` (train's `--resume`), which is deleted once the run
  is done. Inputs are checked before any work: a clip folder with problems, a checkpoint
  that does not load, too few participants for K folds, each give one clear error.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from utjima.utils import UtjimaError, atomic_write, sha256_file

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_CKPT = PACKAGE_DIR / "models" / "torch" / "shipped.pt"
SHIPPED_MODEL_JSON = PACKAGE_DIR / "models" / "model.json"
CROP_SIZE = 128  # face crops are stored at this side; the model resizes (as for CK+)
THRESHOLD_RULES = ("youden", "best_f1")
PLAN, RUN_DONE, STUDY_JSON, PREDICTIONS_JSON = "plan.json", "run.json", "study.json", \
    "predictions.json"
FORMAT, PREDICTIONS_FORMAT = "utjima.study/1", "utjima.study-predictions/1"


class StudyError(UtjimaError):
    """Input the study cannot use (data, checkpoint, output folder, grid)."""


@dataclass(frozen=True)
class StudyConfig:
    data: str                                  # clips to study: ckplus[:SPLIT] or clips:DIR
    init_from: str = str(SHIPPED_CKPT)         # the model every arm starts from
    folds: int = 5                             # outer subject-grouped folds (K)
    seeds: tuple[int, ...] = (0, 1, 2)         # repeats of every arm (inner split, sampling,
                                               # augmentation, dropout)
    epochs: tuple[int, ...] = (7, 10, 30, 50)  # fixed-epoch arms, read off one run per fold/seed
    patience: int = 5                          # early stopping: epochs without a lower inner
                                               # validation loss before stopping
    freeze_epochs: int = 10                    # the frozen-trunk arm trains LSTM + heads this long
    val_fraction: float = 0.1                  # the seed's train/val 9:1, by participant
    lr: float = 5e-5                           # the seed's AdamW learning rate, constant
    batch_size: int = 4                        # the seed's batch
    emotion_weight: float = 0.0                # the seed's clips were labelled laughed or not:
                                               # smile loss only (1 also trains the emotion head
                                               # on the clips' emotion labels)
    threshold_rule: str = "youden"             # how inner validation re-chooses the threshold
    baseline_threshold: float | None = None    # the start model's own (None: model.json's)
    n_boot: int = 2000                         # bootstrap resamples (participants)
    jobs: int = 0                              # runs in parallel, one CPU thread each (0 = cores)
    short_captures: bool = False               # keep clips of shortened capture runs (tests)

    def __post_init__(self) -> None:
        checks = [
            (self.folds >= 2, f"folds must be >= 2, got {self.folds}"),
            (len(self.seeds) >= 1 and len(set(self.seeds)) == len(self.seeds),
             f"seeds must be distinct, got {self.seeds}"),
            (len(self.epochs) >= 1 and all(e >= 1 for e in self.epochs),
             f"epochs must be >= 1, got {self.epochs}"),
            (self.patience >= 1, f"patience must be >= 1, got {self.patience}"),
            (self.freeze_epochs >= 1, f"freeze_epochs must be >= 1, got {self.freeze_epochs}"),
            (0 < self.val_fraction < 0.5, f"val_fraction must be in (0, 0.5), got "
                                          f"{self.val_fraction}"),
            (self.lr > 0 and self.batch_size >= 1, "lr must be > 0 and batch_size >= 1"),
            (self.threshold_rule in THRESHOLD_RULES,
             f"threshold_rule must be one of {THRESHOLD_RULES}, got {self.threshold_rule!r}"),
            (self.baseline_threshold is None or 0 < self.baseline_threshold < 1,
             f"baseline_threshold must be in (0, 1), got {self.baseline_threshold}"),
            (self.n_boot >= 100, f"n_boot must be >= 100, got {self.n_boot}"),
            (self.jobs >= 0, f"jobs must be >= 0, got {self.jobs}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise StudyError(msg)
        object.__setattr__(self, "epochs", tuple(sorted(set(self.epochs))))

    @property
    def max_epochs(self) -> int:
        return max(self.epochs)


# The grid for tests and smoke runs: 2 folds, 1 seed, arms at 1 and 2 epochs.
QUICK = dict(folds=2, seeds=(0,), epochs=(1, 2), patience=1, freeze_epochs=1, n_boot=200)


# --- data: clips as the study scores them ----------------------------------------------

@dataclass
class StudyClip:
    """One clip on its evaluation timeline: the steps a camera stream would show."""

    id: str
    subject: str
    label: int                # clip_smile: 1 laughed / 0 did not
    crops: np.ndarray         # (N, S, S, 3) uint8 face crops, one per recorded frame
    frame: np.ndarray         # (M,) timeline step -> recorded frame (holds repeat one)
    times_ms: np.ndarray      # (M,) strictly increasing
    smile: np.ndarray         # (M,) int8 label of the step, -1 masked (holds are masked)
    emotion: np.ndarray       # (M,) int8 index into EMOTIONS, -1 masked
    face: np.ndarray          # (M,) bool: the face was found in this frame (for the judge)
    onset_ms: float | None    # latency reference: CK+ the apex, else the first smile frame
    recorded: np.ndarray      # (M,) bool: the step is a recorded frame's first showing

    @property
    def n_frames(self) -> int:
        return len(self.crops)


@dataclass
class StudyData:
    spec: str
    train: dict               # clip id -> utjima.data.Clip (face crops, recorded frames only)
    clips: list[StudyClip]    # what is scored, in a fixed order
    info: dict = field(default_factory=dict)

    @property
    def subjects(self) -> list[str]:
        return sorted({c.subject for c in self.clips})

    def fingerprint(self) -> str:
        import hashlib

        h = hashlib.sha256()
        for c in self.clips:
            h.update(f"{c.id}|{c.subject}|{c.label}|{c.n_frames}|".encode())
            h.update(np.ascontiguousarray(c.crops[:: max(1, c.n_frames // 4)]).tobytes())
        return h.hexdigest()[:16]


def _capture_scales(folder: Path) -> dict[str, float]:
    """clip id -> the capture protocol's time scale (docs/capture.md; absent = 1)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    out = {}
    for e in manifest.get("clips", []):
        scale = (((e.get("capture") or {}).get("protocol") or {}).get("scale"))
        if isinstance(e, dict) and "id" in e and isinstance(scale, (int, float)):
            out[str(e["id"])] = float(scale)
    return out


def load_data(spec: str, short_captures: bool = False, progress: bool = True) -> StudyData:
    """A clip spec as study clips: face crops (whole camera frames go through the live face
    path first), clips without a clip label or a participant refused or left out."""
    from utjima.data import ClipSet, DatasetError, load, parse_spec
    from utjima.data import clips as clipfmt

    try:
        name, arg = parse_spec(spec)
        if name not in ("ckplus", "clips"):
            raise StudyError(f"the study needs recorded clips: ckplus[:SPLIT] or clips:DIR, "
                             f"got {spec!r}")
        ds = load(spec)
    except DatasetError as e:
        raise StudyError(str(e)) from None
    assert isinstance(ds, ClipSet)
    info: dict = {"source": ds.source, "excluded": {}}
    if name == "clips":
        scales = _capture_scales(Path(arg))
        short = sorted(c.id for c in ds.clips if scales.get(c.id, 1.0) < 1)
        if short and not short_captures:
            info["excluded"]["shortened capture run"] = short
            ds = ClipSet(ds.source, [c for c in ds.clips if c.id not in set(short)], ds.crop,
                         ds.test_only, ds.info)
    nameless = [c.id for c in ds.clips if not c.subject]
    if nameless:
        raise StudyError(f"{spec}: clips {nameless[:5]} have no 'subject' (participant id); the "
                         "study keeps each participant on one side of every split "
                         "(docs/clip_format.md)")
    unlabelled = sorted(c.id for c in ds.clips if c.clip_smile not in (0, 1))
    if unlabelled:  # the covered / leave-the-frame prompts: nothing to score a laugh on
        info["excluded"]["no clip_smile label"] = unlabelled
        ds = ClipSet(ds.source, [c for c in ds.clips if c.clip_smile in (0, 1)], ds.crop,
                     ds.test_only, ds.info)
    face_found: dict = {}
    if ds.crop == "full":
        ds = clipfmt.face_crops(ds, CROP_SIZE, progress=progress)
        face_found = ds.info["face"]
        if ds.info["no_face"]:
            info["excluded"]["no face in any frame"] = ds.info["no_face"]
    if not ds.clips:
        why = "; ".join(f"{k}: {len(v)}" for k, v in info["excluded"].items())
        hint = (" (--short-captures keeps shortened capture runs)"
                if "shortened capture run" in info["excluded"] else "")
        raise StudyError(f"{spec}: no clip left to study ({why or 'no clips'}){hint}")
    clips = []
    for c in ds.clips:
        if name == "ckplus":
            clips.append(_ckplus_timeline(c))
        else:
            found = face_found.get(c.id, np.ones(len(c), bool))
            smile_at = c.times_ms[c.smile == 1]
            clips.append(StudyClip(
                c.id, c.subject, int(c.clip_smile), c.frames, np.arange(len(c)), c.times_ms,
                c.smile, c.emotion_label, np.asarray(found, bool),
                float(smile_at[0]) if len(smile_at) else None, np.ones(len(c), bool)))
    info["unit"] = ("a CK+ sequence played as a webcam shows it (neutral held "
                    f"{_ckplus_holds()[0]:.0f} ms, the sequence at 30 fps, the apex held "
                    f"{_ckplus_holds()[1]:.0f} ms); right iff the judge reports a laugh exactly "
                    "when the sequence is happy" if name == "ckplus" else
                    "a recorded clip; right iff the judge reports a laugh exactly when its "
                    "clip_smile label is 1")
    return StudyData(spec, {c.id: c for c in ds.clips}, clips, info)


def _ckplus_holds() -> tuple[float, float]:
    from utjima.data import ckplus

    return ckplus.HOLD_NEUTRAL_MS, ckplus.HOLD_APEX_MS


def _ckplus_timeline(c) -> StudyClip:
    """A CK+ sequence with the webcam rendering's holds (ckplus.webcam_video), in crop space:
    the same crops, the same times, the apex at the same moment."""
    from utjima.data import ckplus

    n = len(c)
    pre = round(ckplus.HOLD_NEUTRAL_MS * ckplus.FPS / 1000)
    post = round(ckplus.HOLD_APEX_MS * ckplus.FPS / 1000)
    frame = np.r_[np.zeros(pre, int), np.arange(n), np.full(post, n - 1)]
    recorded = np.r_[np.zeros(pre, bool), np.ones(n, bool), np.zeros(post, bool)]
    smile = np.full(len(frame), -1, np.int8)
    emotion = np.full(len(frame), -1, np.int8)
    smile[recorded], emotion[recorded] = c.smile, c.emotion_label
    times = np.arange(len(frame)) * (1000.0 / ckplus.FPS)
    return StudyClip(c.id, c.subject, int(c.clip_smile), c.frames, frame, times, smile, emotion,
                     np.ones(len(frame), bool), float(times[pre + n - 1]), recorded)


# --- the plan: outer folds and inner splits ---------------------------------------------

def outer_folds(clips: Sequence[StudyClip], k: int) -> list[tuple[str, ...]]:
    """K subject folds, stratified by smile (ckplus.subject_folds); every participant in
    exactly one."""
    from utjima.data.ckplus import subject_folds

    subjects = sorted({c.subject for c in clips})
    if len(subjects) < k:
        raise StudyError(f"{k} folds need at least {k} participants; the data has "
                         f"{len(subjects)} ({', '.join(subjects)}): use --folds "
                         f"{max(2, len(subjects))} or more participants")
    if len(subjects) < 2:
        raise StudyError(f"the study needs at least 2 participants; the data has {subjects}")
    return subject_folds(subjects, k, [c.subject for c in clips if c.label == 1])


def inner_split(clips: Sequence[StudyClip], fraction: float, seed: int,
                fold: int) -> dict:
    """The seed's 9:1 split of a fold's training clips: whole participants to validation
    (max(1, round(fraction * n)) of them, drawn among those with a smile clip so the
    threshold can be chosen; one stays to train on), or, with a single participant, a
    stratified share of their clips. Seeded by (seed, fold)."""
    rng = np.random.default_rng([seed, fold])
    subjects = sorted({c.subject for c in clips})
    if len(subjects) >= 2:
        n_val = min(len(subjects) - 1, max(1, round(fraction * len(subjects))))
        smiling = sorted({c.subject for c in clips if c.label == 1})
        pool = smiling if len(smiling) > n_val else subjects
        val = sorted(rng.choice(pool, n_val, replace=False).tolist())
        return {"by": "participant", "val_subjects": val,
                "train_subjects": [s for s in subjects if s not in val],
                "val": [c.id for c in clips if c.subject in val],
                "train": [c.id for c in clips if c.subject not in val]}
    val = []
    for label in (0, 1):
        ids = [c.id for c in clips if c.label == label]
        if len(ids) >= 2:
            val += rng.choice(ids, max(1, round(fraction * len(ids))), replace=False).tolist()
    return {"by": "clip", "val_subjects": subjects, "train_subjects": subjects,
            "val": [c.id for c in clips if c.id in val],
            "train": [c.id for c in clips if c.id not in val]}


def make_plan(data: StudyData, cfg: StudyConfig) -> dict:
    folds = outer_folds(data.clips, cfg.folds)
    out = []
    for k, test in enumerate(folds, 1):
        train_clips = [c for c in data.clips if c.subject not in test]
        out.append({"fold": k, "test_subjects": list(test),
                    "train_subjects": sorted({c.subject for c in train_clips}),
                    "test": [c.id for c in data.clips if c.subject in test],
                    "inner": {str(s): inner_split(train_clips, cfg.val_fraction, s, k)
                              for s in cfg.seeds}})
    return {"data": data.spec, "fingerprint": data.fingerprint(), "folds": out}


# --- scoring timelines with a torch model ------------------------------------------------

class Scorer:
    """Scores clips' timelines with a torch model: each recorded frame's crop is encoded
    once, then the T-step window (the streaming rule) is stepped at every timeline step."""

    def __init__(self, clips: Sequence[StudyClip], model_cfg):
        from utjima.data.augment import plain_frames
        from utjima.streaming import window_indices

        self.ids = [c.id for c in clips]
        c_in = 1 if model_cfg.channels == "gray" else 3
        self.x = (np.concatenate([plain_frames(c.crops, model_cfg.img_size, c_in) for c in clips])
                  if clips else np.zeros((0, c_in, model_cfg.img_size, model_cfg.img_size),
                                         np.float32))                      # (sum N, C, S, S)
        starts = np.cumsum([0] + [c.n_frames for c in clips])
        wins = []
        for c, s in zip(clips, starts, strict=False):
            t = c.times_ms.tolist()
            steps = np.array([window_indices(t[: i + 1], t[i], model_cfg.n_frames,
                                             model_cfg.frame_interval_ms)
                              for i in range(len(t))])                     # (M, T) steps
            wins.append(s + c.frame[steps])                                # -> crop rows
        self.windows = wins

    def __call__(self, model) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """clip id -> (smile_prob (M,), emotion logits (M, 7))."""
        import torch

        model.eval()
        with torch.no_grad():
            x = torch.from_numpy(self.x)
            feats = torch.cat([model.encode(x[i : i + 512]) for i in range(0, len(x), 512)]) \
                if len(x) else torch.zeros(0, model.feature_dim)           # (sum N, F)
            out = {}
            for cid, w in zip(self.ids, self.windows, strict=True):
                s, e = model.step(feats[torch.from_numpy(w)])              # (M, T, F) -> (M,)
                out[cid] = (torch.sigmoid(s).numpy().astype(np.float64), e.numpy())
        return out


def _balanced_weights(y: np.ndarray) -> np.ndarray:
    """Weights that give smiles and non-smiles half each (the training sampler's balance)."""
    w = np.zeros(len(y))
    for v in (0, 1):
        m = y == v
        if m.any():
            w[m] = 1.0 / m.sum()
    return w / max(w.sum(), 1e-12)


def validation_loss(clips: Sequence[StudyClip], scores: dict, emotion_weight: float) -> dict:
    """The training objective on validation clips (unaugmented): smile BCE (+ emotion CE
    times `emotion_weight`) over the labelled recorded frames, smiles and non-smiles
    weighted half each as the training sampler draws them."""
    ys, ps, es, ls = [], [], [], []
    for c in clips:
        p, e = scores[c.id]
        m = c.recorded & ((c.smile >= 0) | (c.emotion >= 0))
        ys.append(c.smile[m])
        ps.append(p[m])
        es.append(c.emotion[m])
        ls.append(e[m])
    if not ys:
        return {"val_loss": math.nan, "val_smile_loss": math.nan}
    y, p, emo, logits = map(np.concatenate, (ys, ps, es, ls))
    lab = y >= 0
    w = np.zeros(len(y))
    w[lab] = _balanced_weights(y[lab])
    eps = 1e-7
    bce = -(np.where(y == 1, np.log(np.clip(p, eps, 1)), np.log(np.clip(1 - p, eps, 1))))
    smile_loss = float((w * bce)[lab].sum()) if lab.any() else math.nan
    em = emo >= 0
    ce_loss = 0.0
    if em.any() and emotion_weight:
        z = logits[em] - logits[em].max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        ce = -logp[np.arange(em.sum()), emo[em]]
        we = np.where(lab[em], w[em], 0.0)
        we = we if we.sum() > 0 else np.ones(em.sum())
        ce_loss = float((we * ce).sum() / we.sum())
    return {"val_loss": smile_loss + emotion_weight * ce_loss, "val_smile_loss": smile_loss}


def select_threshold(clips: Sequence[StudyClip], scores: dict, rule: str,
                     fallback: float) -> tuple[float, str]:
    """The rule's threshold on the validation clips' labelled recorded frames, moved down
    midway to the next lower score: every threshold in between gives the same validation
    figures, and a few dozen frames would otherwise put it on one smile's score.
    `fallback` when validation lacks smiles or non-smiles."""
    from utjima.metrics import select_thresholds

    y = np.concatenate([c.smile[c.recorded & (c.smile >= 0)] for c in clips]) if clips else []
    if len(y) == 0 or len(np.unique(y)) < 2:
        return fallback, "fallback (validation lacks a class)"
    p = np.concatenate([scores[c.id][0][c.recorded & (c.smile >= 0)] for c in clips])
    t = float(select_thresholds(y == 1, p)[rule])
    below = p[p < t]
    return (t + float(below.max())) / 2 if len(below) else t, rule


def epoch_record(scores: dict, test: Sequence[StudyClip], val: Sequence[StudyClip], rule: str,
                 fallback: float, emotion_weight: float) -> dict:
    """What a study keeps of one epoch: inner-validation loss and threshold, and every
    test and validation step's smile_prob."""
    thr, how = select_threshold(val, scores, rule, fallback)
    rec = validation_loss(val, scores, emotion_weight)
    rec.update(threshold=thr, threshold_by=how,
               test={c.id: np.round(scores[c.id][0], 5).tolist() for c in test},
               val={c.id: np.round(scores[c.id][0], 5).tolist() for c in val})
    return rec


# --- runs: one fine-tuning run per (fold, seed, kind) ------------------------------------

@dataclass(frozen=True)
class Task:
    fold: int
    seed: int
    kind: str  # "full": every weight (trunk BatchNorm in eval mode); "frozen": LSTM + heads

    @property
    def name(self) -> str:
        return f"fold{self.fold}-seed{self.seed}-{self.kind}"


def tasks(cfg: StudyConfig) -> list[Task]:
    """Full runs first (the longest), then the frozen-trunk runs."""
    return [Task(k, s, kind) for kind in ("full", "frozen") for k in range(1, cfg.folds + 1)
            for s in cfg.seeds]


def train_config(cfg: StudyConfig, task: Task, n_items: int, threads: int):
    """The seed's fine-tuning recipe (utjima.train.FINETUNE_DEFAULTS: AdamW, constant lr, no
    warmup) for one run."""
    from utjima.train import FINETUNE_DEFAULTS, TrainConfig

    return TrainConfig(**{
        **FINETUNE_DEFAULTS, "val_fraction": 0.0, "data": (cfg.data,), "init_from": cfg.init_from,
        "lr": cfg.lr, "batch_size": cfg.batch_size, "seed": task.seed,
        "emotion_weight": cfg.emotion_weight,
        "epochs": cfg.max_epochs if task.kind == "full" else cfg.freeze_epochs,
        "freeze_trunk": task.kind == "frozen", "frozen_bn": True, "balance_sources": True,
        "epoch_items": n_items, "num_workers": 0, "threads": threads, "progress": False})


def epoch_items(train_clips: Sequence, frame_interval_ms: float, batch_size: int) -> int:
    """Items per epoch: a clip gives a labelled window at every frame, so an epoch draws one
    per model frame interval of labelled clip time (CK+ at 30 fps: a third of its windows;
    10 fps captures: all), which is what "one pass over the clips" means at the model's
    sampling rate."""
    n = 0
    for c in train_clips:
        labelled = int(((c.smile >= 0) | (c.emotion_label >= 0)).sum())
        gap = float(np.median(np.diff(c.times_ms))) if len(c) > 1 else frame_interval_ms
        n += labelled / max(1.0, round(frame_interval_ms / max(gap, 1e-6)))
    return max(batch_size, int(round(n)))


def read_records(run_dir: Path) -> dict[int, dict]:
    """epoch -> its metrics.jsonl line (a resumed run may repeat an epoch: the last counts)."""
    out: dict[int, dict] = {}
    path = run_dir / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                out[int(r["epoch"])] = r
    return out


def run_task(task: Task, cfg: StudyConfig, data: StudyData, plan: dict, out: Path,
             threads: int, tick: Callable[[], None] | None = None) -> dict:
    """Fine-tune one (fold, seed, kind), evaluating the fold's test and inner-validation
    clips after every epoch; returns run.json. A finished run is read back, not redone."""
    from utjima.data import ClipSet
    from utjima.model import load_checkpoint
    from utjima.train import CKPT_LAST, train

    run_dir = out / "runs" / task.name
    fold = plan["folds"][task.fold - 1]
    inner = fold["inner"][str(task.seed)]
    by_id = {c.id: c for c in data.clips}
    train_clips = [data.train[i] for i in inner["train"]]
    model0, _ = load_checkpoint(cfg.init_from)
    tcfg = train_config(cfg, task, epoch_items(train_clips, model0.cfg.frame_interval_ms,
                                               cfg.batch_size), threads)
    done = run_dir / RUN_DONE
    if done.is_file():
        run = json.loads(done.read_text())
        if run["train_config"] != _cfg_dict(tcfg) or run["inner"] != inner:
            raise StudyError(f"{run_dir} was run with another config or split; use a new --out "
                             "(or delete that folder to redo it)")
        return run
    test = [by_id[i] for i in fold["test"]]
    val = [by_id[i] for i in inner["val"]]
    scorer = Scorer(test + val, model0.cfg)
    fallback = baseline_threshold(cfg)

    def on_epoch(model, result: dict) -> dict:
        rec = epoch_record(scorer(model), test, val, cfg.threshold_rule, fallback,
                           cfg.emotion_weight)
        if tick is not None:
            tick()
        return rec

    source = f"{data.spec} fold {task.fold}/{cfg.folds} seed {task.seed} inner train"
    train_set = ClipSet(source, train_clips, crop="face")
    t0 = time.time()
    resume = (run_dir / CKPT_LAST).is_file()
    if resume and tick is not None:
        for _ in read_records(run_dir):
            tick()
    try:
        train(tcfg, run_dir, resume=resume, sets=[train_set], on_epoch=on_epoch)
    except ValueError as e:  # a killed run's checkpoint from another config
        raise StudyError(f"{run_dir}: {e}") from None
    records = read_records(run_dir)
    run = {"task": asdict(task), "train_config": _cfg_dict(tcfg), "inner": inner,
           "epochs": len(records), "wall_s": round(time.time() - t0, 1),
           "train_s": records[max(records)]["elapsed_s"] if records else 0.0,
           "threads": threads, "resumed": resume, "finished_at": time.time()}
    with atomic_write(done) as tmp:
        tmp.write_text(json.dumps(run, indent=1) + "\n")
    (run_dir / CKPT_LAST).unlink(missing_ok=True)  # 13 MB with the optimiser; done is done
    return run


def _cfg_dict(tcfg) -> dict:
    from utjima.train import _cfg_dict as train_cfg_dict

    return train_cfg_dict(tcfg)


def baseline_threshold(cfg: StudyConfig) -> float:
    """The start model's own threshold: given, or the bundled model.json's."""
    if cfg.baseline_threshold is not None:
        return cfg.baseline_threshold
    return float(json.loads(SHIPPED_MODEL_JSON.read_text())["thresholds"]["smile"])


# --- parallel runs with one progress bar --------------------------------------------------

_WORKER: dict = {}


def _worker_init(cfg, data, plan, out, queue) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER.update(cfg=cfg, data=data, plan=plan, out=out, queue=queue)


def _worker_run(task: Task) -> dict:
    w = _WORKER
    return run_task(task, w["cfg"], w["data"], w["plan"], w["out"], threads=1,
                    tick=lambda: w["queue"].put(task.name))


def run_all(cfg: StudyConfig, data: StudyData, plan: dict, out: Path,
            progress: bool = True) -> dict[str, dict]:
    """Every task, skipping finished ones; `jobs` processes (one CPU thread each)."""
    from tqdm import tqdm

    todo = tasks(cfg)
    n_epochs = {t.name: cfg.max_epochs if t.kind == "full" else cfg.freeze_epochs for t in todo}
    done = {t.name: run_task(t, cfg, data, plan, out, threads=1)  # checked, not redone
            for t in todo if (out / "runs" / t.name / RUN_DONE).is_file()}
    pending = [t for t in todo if t.name not in done]
    jobs = min(cfg.jobs or os.cpu_count() or 1, max(1, len(pending)))
    bar = tqdm(total=sum(n_epochs.values()), initial=sum(n_epochs[n] for n in done),
               desc=f"fine-tuning ({len(done)} of {len(todo)} runs done before)", unit="epoch",
               disable=not progress, dynamic_ncols=True)
    try:
        if jobs <= 1:
            for t in pending:
                bar.set_postfix_str(t.name)
                done[t.name] = run_task(t, cfg, data, plan, out, threads=1,
                                        tick=lambda: bar.update(1))
        else:
            _run_parallel(pending, jobs, cfg, data, plan, out, bar, done)
    finally:
        bar.close()
    return done


def _run_parallel(pending, jobs, cfg, data, plan, out, bar, done) -> None:
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")  # no fork after torch and onnxruntime threads started
    q = ctx.Queue()
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init,
                             initargs=(cfg, data, plan, out, q)) as pool:
        futures = {pool.submit(_worker_run, t): t for t in pending}
        try:
            while futures:
                finished, _ = wait(futures, timeout=0.5, return_when=FIRST_COMPLETED)
                while True:
                    try:
                        q.get_nowait()
                    except queue_mod.Empty:
                        break
                    bar.update(1)
                for f in finished:
                    t = futures.pop(f)
                    done[t.name] = f.result()
                    bar.set_postfix_str(f"{len(done)} runs done")
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


# --- arms: predictions read off the runs ------------------------------------------------

@dataclass
class ArmPick:
    """One arm's model for one fold and seed: the held-out steps' smile_prob and the
    threshold chosen on inner validation (or the baseline's)."""

    probs: dict          # clip id -> (M,) smile_prob
    threshold: float
    epoch: int


def early_stop_epoch(val_loss: Sequence[float], patience: int) -> int:
    """Epochs 0..E in order: the best (lowest) validation loss seen before `patience`
    epochs pass without a lower one; ties keep the earlier epoch."""
    best, best_e = math.inf, 0
    for e, v in enumerate(val_loss):
        if v < best:
            best, best_e = v, e
        elif e - best_e >= patience:
            break
    return best_e


def _records(out: Path, plan: dict, cfg: StudyConfig, task: Task, base: dict) -> list[dict]:
    """A run's records for epochs 0..E (0 = the start model, scored once for all runs)."""
    recs = read_records(out / "runs" / task.name)
    return [base[(task.fold, task.seed)]] + [recs[e] for e in sorted(recs)]


def arm_names(cfg: StudyConfig) -> list[str]:
    return (["baseline", "baseline_rethreshold"] + [f"epochs_{e}" for e in cfg.epochs]
            + ["early_stop", "frozen", "ensemble"])


def _epochs(n: int) -> str:
    return f"{n} epoch{'' if n == 1 else 's'}"


def arm_label(name: str, cfg: StudyConfig) -> str:
    if name.startswith("epochs_"):
        return _epochs(int(name[7:]))
    return {"baseline": "baseline (0 epochs)",
            "baseline_rethreshold": "baseline, threshold re-chosen",
            "early_stop": "early stopping",
            "frozen": f"trunk frozen, {_epochs(cfg.freeze_epochs)}",
            "ensemble": "ensemble of a fold's seeds"}[name]


def picks(name: str, cfg: StudyConfig, records: dict, seed) -> dict[int, ArmPick]:
    """fold -> ArmPick of arm `name` for `seed` (the ensemble: seed "all")."""
    out = {}
    for k in range(1, cfg.folds + 1):
        if name == "ensemble":
            members = [picks("early_stop", cfg, records, s)[k] for s in cfg.seeds]
            ids = members[0].probs
            out[k] = ArmPick({i: np.mean([m.probs[i] for m in members], axis=0) for i in ids},
                             float(np.mean([m.threshold for m in members])),
                             int(np.median([m.epoch for m in members])))
            continue
        kind = "frozen" if name == "frozen" else "full"
        recs = records[(k, seed, kind)]
        if name in ("baseline", "baseline_rethreshold"):
            e = 0
        elif name == "frozen":
            e = len(recs) - 1
        elif name == "early_stop":
            e = early_stop_epoch([r["val_loss"] for r in recs], cfg.patience)
        else:
            e = min(int(name[7:]), len(recs) - 1)
        r = recs[e]
        thr = baseline_threshold(cfg) if name == "baseline" else r["threshold"]
        out[k] = ArmPick({i: np.asarray(v) for i, v in r["test"].items()}, thr, e)
    return out


def judge_clip(c: StudyClip, probs: np.ndarray, threshold: float, base_judge) -> dict:
    """The real judge over a clip's timeline at `threshold`: laughed? when did it start?"""
    from utjima.judge import segments

    t = float(np.clip(threshold, 1e-4, 1 - 1e-4))
    cfg = replace(base_judge, threshold=t, release=min(base_judge.release, t / 2))
    samples = [(float(tm), float(p) if f else None, bool(f))
               for tm, p, f in zip(c.times_ms, probs, c.face, strict=True)]
    laughs = segments(samples, cfg)
    start = laughs[0]["start_ms"] if laughs else None
    return {"laugh": bool(laughs), "start_ms": start,
            "latency_ms": None if start is None or c.onset_ms is None else start - c.onset_ms}


def judge_base():
    from utjima.judge import JudgeConfig

    return JudgeConfig.from_dict(json.loads(SHIPPED_MODEL_JSON.read_text())["judge"])


# --- statistics ---------------------------------------------------------------------------

def _binary(tp, fp, fn, tn) -> dict:
    n = tp + fp + fn + tn
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return {"accuracy": (tp + tn) / n if n else math.nan, "precision": prec, "recall": rec,
            "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0}


def _confusions(y: np.ndarray, pred: np.ndarray, groups: np.ndarray,
                subjects: Sequence[str]) -> np.ndarray:
    """(S, G, 4) tp, fp, fn, tn per seed and participant. y (C,), pred (S, C) bool."""
    out = np.zeros((pred.shape[0], len(subjects), 4))
    for g, s in enumerate(subjects):
        m = groups == s
        yy, pp = y[m][None], pred[:, m]
        out[:, g] = np.stack([(pp & yy).sum(1), (pp & ~yy).sum(1), (~pp & yy).sum(1),
                              (~pp & ~yy).sum(1)], axis=1)
    return out


def _resample_weights(n_groups: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """(B, G) how often each participant is drawn in each bootstrap resample."""
    from utjima.metrics import cluster_resamples

    return cluster_resamples(n_groups, n_boot, seed)


def clip_metrics(y: np.ndarray, pred: np.ndarray, groups: np.ndarray, subjects: Sequence[str],
                 n_boot: int) -> dict:
    """Per seed and averaged over seeds, with 95 % intervals from resampling participants."""
    conf = _confusions(y, pred, groups, subjects)          # (S, G, 4)
    per_seed = [_binary(*conf[s].sum(0)) for s in range(len(conf))]
    mean = {k: float(np.mean([m[k] for m in per_seed])) for k in per_seed[0]}
    w = _resample_weights(len(subjects), n_boot)           # (B, G)
    boot = np.einsum("bg,sgk->bsk", w, conf)               # (B, S, 4)
    ci = {}
    for key in mean:
        vals = np.array([[_binary(*boot[b, s])[key] for s in range(boot.shape[1])]
                         for b in range(len(boot))]).mean(1)
        vals = vals[np.isfinite(vals)]
        ci[key] = ([float(v) for v in np.quantile(vals, [0.025, 0.975])] if len(vals)
                   else [math.nan, math.nan])
    total = conf.sum(1)                                    # (S, 4)
    return {**mean, "ci95": ci, "per_seed": per_seed,
            "confusion": {k: float(np.mean(total[:, i])) for i, k in
                          enumerate(("tp", "fp", "fn", "tn"))},
            "n": int(len(y)), "n_pos": int(y.sum())}


def paired_comparison(y: np.ndarray, base_pred: np.ndarray, arm_pred: np.ndarray,
                      groups: np.ndarray, subjects: Sequence[str], n_boot: int) -> dict:
    """Arm vs baseline on the same clips: exact McNemar per seed (the baseline's seed, or
    its only one), and the accuracy difference averaged over seeds with a paired bootstrap
    interval that resamples participants."""
    from utjima.metrics import mcnemar_exact

    s_arm = arm_pred.shape[0]
    base = base_pred if base_pred.shape[0] == s_arm else np.repeat(base_pred[:1], s_arm, 0)
    ok_b, ok_a = base == y[None], arm_pred == y[None]      # (S, C)
    tests = []
    for s in range(s_arm):
        b = int((ok_b[s] & ~ok_a[s]).sum())
        c = int((~ok_b[s] & ok_a[s]).sum())
        tests.append({"baseline_only_right": b, "arm_only_right": c,
                      "p": mcnemar_exact(b, c)})
    diff = ok_a.astype(float) - ok_b.astype(float)         # (S, C)
    per_g = np.stack([diff[:, groups == g].sum(1) for g in subjects], 1)   # (S, G)
    n_g = np.array([(groups == g).sum() for g in subjects], float)        # (G,)
    w = _resample_weights(len(subjects), n_boot, seed=1)                   # (B, G)
    boot = (w @ per_g.T) / (w @ n_g)[:, None]                              # (B, S)
    lo, hi = np.quantile(boot.mean(1), [0.025, 0.975])
    return {"delta_accuracy": float(diff.mean()), "ci95": [float(lo), float(hi)],
            "per_seed_delta": [float(d) for d in diff.mean(1)], "mcnemar": tests,
            "p_max": max(t["p"] for t in tests)}


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return math.nan

    def rank(x):
        _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
        return (np.cumsum(counts) - (counts - 1) / 2)[inv.reshape(-1)]

    ra, rb = rank(a[ok]), rank(b[ok])
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def frame_metrics(items: list[tuple[StudyClip, np.ndarray, float]]) -> dict:
    """Frame figures over the labelled recorded frames of (clip, probs, threshold) items."""
    from utjima.metrics import roc_auc

    ys, ps, preds = [], [], []
    for c, p, thr in items:
        m = c.recorded & (c.smile >= 0)
        ys.append(c.smile[m] == 1)
        ps.append(p[m])
        preds.append(p[m] >= thr)
    y, p, pred = map(np.concatenate, (ys, ps, preds))
    r = _binary(int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum()),
                int((~pred & ~y).sum()))
    r["auc"] = roc_auc(y, p) if 0 < y.sum() < len(y) else math.nan
    r["n"], r["n_pos"] = int(len(y)), int(y.sum())
    return r


# --- analysis: everything in study.json from the runs -------------------------------------

def analyse(cfg: StudyConfig, data: StudyData, plan: dict, out: Path, base: dict) -> dict:
    judge = judge_base()
    by_id = {c.id: c for c in data.clips}
    order = [c.id for c in data.clips]
    y = np.array([by_id[i].label == 1 for i in order])
    groups = np.array([by_id[i].subject for i in order])
    subjects = data.subjects
    fold_of = {i: f["fold"] for f in plan["folds"] for i in f["test"]}
    records = {(t.fold, t.seed, t.kind): _records(out, plan, cfg, t, base) for t in tasks(cfg)}
    arms: dict = {}
    base_pred = None
    verdicts: dict = {}
    for name in arm_names(cfg):
        seeds = ["all"] if name == "ensemble" else list(cfg.seeds)
        preds, thr_all, epochs_all, frames_per_seed, per_clip = [], [], [], [], {}
        for s in seeds:
            pk = picks(name, cfg, records, s)
            row, items = [], []
            for i in order:
                p = pk[fold_of[i]]
                v = judge_clip(by_id[i], p.probs[i], p.threshold, judge)
                row.append(v["laugh"])
                items.append((by_id[i], p.probs[i], p.threshold))
                per_clip.setdefault(i, []).append({**v, "threshold": p.threshold,
                                                   "epoch": p.epoch, "seed": s})
            preds.append(row)
            frames_per_seed.append(frame_metrics(items))
            thr_all += [p.threshold for p in pk.values()]
            epochs_all += [p.epoch for p in pk.values()]
        pred = np.array(preds, bool)                                   # (S, C)
        verdicts[name] = per_clip
        r = {"label": arm_label(name, cfg), "seeds": seeds,
             "clip": clip_metrics(y, pred, groups, subjects, cfg.n_boot),
             "frame": _mean_metrics(frames_per_seed),
             "threshold": {"mean": float(np.mean(thr_all)), "min": float(np.min(thr_all)),
                           "max": float(np.max(thr_all))},
             "epoch": {"median": float(np.median(epochs_all)), "min": int(np.min(epochs_all)),
                       "max": int(np.max(epochs_all))},
             "per_participant": {g: float((pred[:, groups == g] == y[groups == g]).mean())
                                 for g in subjects},
             "latency": _latency(per_clip, by_id)}
        if name == "baseline":
            base_pred = pred
        else:
            r["vs_baseline"] = paired_comparison(y, base_pred, pred, groups, subjects,
                                                 cfg.n_boot)
        arms[name] = r
    curves = learning_curves(cfg, data, plan, records, judge)
    return {"arms": arms, "curves": curves, "val_loss_vs_test": val_loss_vs_test(curves),
            "verdicts": verdicts}


def _mean_metrics(per_seed: list[dict]) -> dict:
    keys = [k for k in per_seed[0] if isinstance(per_seed[0][k], float)]
    out = {k: float(np.mean([m[k] for m in per_seed])) for k in keys}
    out.update(n=per_seed[0]["n"], n_pos=per_seed[0]["n_pos"], per_seed=per_seed)
    return out


def _latency(per_clip: dict, by_id: dict) -> dict:
    """Over seeds: how many happy clips got a laugh, how many before the apex, and the
    median laugh start minus the apex; false laughs on the others."""
    happy = [v for i, vs in per_clip.items() if by_id[i].label == 1 for v in vs]
    other = [v for i, vs in per_clip.items() if by_id[i].label == 0 for v in vs]
    lat = [v["latency_ms"] for v in happy if v["latency_ms"] is not None]
    n_seeds = max(1, len(next(iter(per_clip.values()))))
    return {"happy_clips": len(happy) // n_seeds,
            "happy_with_laugh": sum(v["laugh"] for v in happy) / n_seeds,
            "laugh_before_onset": sum(x < 0 for x in lat) / n_seeds,
            "median_latency_ms": float(np.median(lat)) if lat else None,
            "other_clips": len(other) // n_seeds,
            "false_laughs": sum(v["laugh"] for v in other) / n_seeds}


def learning_curves(cfg: StudyConfig, data: StudyData, plan: dict, records: dict,
                    judge) -> dict:
    """Per kind and epoch, averaged over seeds: train and validation loss (means over folds)
    and held-out figures pooled over folds (frame AUC, frame accuracy and F1 and clip
    accuracy at that epoch's inner-validation threshold). Per run: the same for its fold."""
    by_id = {c.id: c for c in data.clips}
    out: dict = {}
    for kind in ("full", "frozen"):
        n = cfg.max_epochs if kind == "full" else cfg.freeze_epochs
        rows, runs = [], {}
        for e in range(n + 1):
            per_seed = []
            for s in cfg.seeds:
                items, clip_ok, tl, vl = [], [], [], []
                for k in range(1, cfg.folds + 1):
                    recs = records[(k, s, kind)]
                    r = recs[min(e, len(recs) - 1)]
                    fold_items = [(by_id[i], np.asarray(p), r["threshold"])
                                  for i, p in r["test"].items()]
                    fold_ok = [judge_clip(c, p, t, judge)["laugh"] == (c.label == 1)
                               for c, p, t in fold_items]
                    items += fold_items
                    clip_ok += fold_ok
                    vl.append(r["val_loss"])
                    tl.append(r.get("train_loss", math.nan))
                    run = runs.setdefault(f"fold{k}-seed{s}", {"val_loss": [], "test_auc": [],
                                                               "test_clip_accuracy": []})
                    run["val_loss"].append(r["val_loss"])
                    run["test_auc"].append(frame_metrics(fold_items)["auc"])
                    run["test_clip_accuracy"].append(float(np.mean(fold_ok)))
                fm = frame_metrics(items)
                per_seed.append({"train_loss": float(np.nanmean(tl)) if e else math.nan,
                                 "val_loss": float(np.nanmean(vl)), "test_auc": fm["auc"],
                                 "test_accuracy": fm["accuracy"], "test_f1": fm["f1"],
                                 "test_clip_accuracy": float(np.mean(clip_ok))})
            row = {"epoch": e}
            for key in per_seed[0]:
                vals = [p[key] for p in per_seed]
                row[key] = float(np.mean(vals)) if np.isfinite(vals).all() else None
            rows.append(row)
        out[kind] = {"epochs": rows, "runs": runs}
    return out


def val_loss_vs_test(curves: dict) -> dict:
    """The seed's "val loss going down != test performance going up", measured per run
    (full fine-tuning, epochs 0..E): rank correlation of validation loss with held-out AUC
    and clip accuracy (negative = they move together the way one hopes), the share of
    epochs where validation loss fell but held-out AUC fell too, and where the lowest
    validation loss and the best held-out AUC fall. A run whose held-out AUC never moves
    (a fold at the ceiling, 1.0 at every epoch) has no rank correlation and no best epoch:
    it is counted apart, not read as agreement or as a gap."""
    rho_auc, rho_acc, share, gaps, flat = [], [], [], [], 0
    for run in curves["full"]["runs"].values():
        v, a, acc = (np.asarray(run[k], float) for k in ("val_loss", "test_auc",
                                                          "test_clip_accuracy"))
        rho_auc.append(spearman(v, a))
        rho_acc.append(spearman(v, acc))
        fin = a[np.isfinite(a)]
        if len(fin) and np.ptp(fin) == 0:
            flat += 1
            continue
        dv, da = np.diff(v), np.diff(a)
        down = (dv < 0) & np.isfinite(da)
        share.append(float((da[down] < 0).mean()) if down.any() else math.nan)
        if len(fin):
            gaps.append(int(np.nanargmin(v)) - int(np.nanargmax(a)))

    def med(x):
        x = [v for v in x if np.isfinite(v)]
        return float(np.median(x)) if x else None

    return {"runs": len(rho_auc), "runs_test_auc_constant": flat,
            "spearman_val_loss_test_auc_median": med(rho_auc),
            "spearman_val_loss_test_auc": rho_auc,
            "spearman_val_loss_test_clip_accuracy_median": med(rho_acc),
            "share_val_down_test_auc_down_median": med(share),
            "epoch_min_val_loss_minus_epoch_best_test_auc_median": med(gaps)}


# --- the study -----------------------------------------------------------------------------

def check_inputs(cfg: StudyConfig, out: Path, progress: bool = True) -> tuple[StudyData, dict]:
    """Everything that can be wrong before any run starts: the output folder, the
    checkpoint, the data and the grid. Returns the data and the plan."""
    from utjima.model import CheckpointError, load_checkpoint

    if out.exists() and not out.is_dir():
        raise StudyError(f"--out {out} is a file; give a folder")
    if not Path(cfg.init_from).is_file():
        raise StudyError(f"checkpoint {cfg.init_from} does not exist")
    try:
        load_checkpoint(cfg.init_from)
    except CheckpointError as e:
        raise StudyError(f"the start model does not load: {e}") from None
    data = load_data(cfg.data, cfg.short_captures, progress)
    plan = make_plan(data, cfg)
    plan["init_from"] = {"path": _shown(cfg.init_from), "sha256": sha256_file(cfg.init_from)}
    saved = out / PLAN
    if saved.is_file():
        old = json.loads(saved.read_text())
        same = {k: old.get(k) == plan.get(k) for k in ("data", "fingerprint", "init_from")}
        old_folds = [{k: v for k, v in f.items() if k != "inner"} for f in old["folds"]]
        new_folds = [{k: v for k, v in f.items() if k != "inner"} for f in plan["folds"]]
        if not all(same.values()) or old_folds != new_folds:
            raise StudyError(f"{out} holds a study of other data, folds or start model "
                             f"({', '.join(k for k, v in same.items() if not v) or 'folds'}); "
                             "use a new --out")
        for f_old, f_new in zip(old["folds"], plan["folds"], strict=True):
            for s, split in f_old["inner"].items():  # a seed run before keeps its split
                if s in f_new["inner"] and f_new["inner"][s] != split:
                    raise StudyError(f"{out}: the inner split of seed {s} changed; use a new "
                                     "--out")
    return data, plan


def _shown(path) -> str:
    """A path as people read it: relative to the working folder when inside it."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def study(cfg: StudyConfig, out: str | Path, progress: bool = True,
          command: str | None = None) -> dict:
    """Run (or finish) the study in `out`; returns study.json's content."""
    import torch

    out = Path(out)
    t_start = time.time()
    load_start = os.getloadavg()[0]
    data, plan = check_inputs(cfg, out, progress)
    t_data = time.time() - t_start
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / PLAN) as tmp:
        tmp.write_text(json.dumps(plan, indent=1) + "\n")
    # epoch 0 of every run: the start model, scored once on every clip
    from utjima.model import load_checkpoint

    model0, _ = load_checkpoint(cfg.init_from)
    torch.set_num_threads(1)
    scores0 = Scorer(data.clips, model0.cfg)(model0)
    by_id = {c.id: c for c in data.clips}
    base = {}
    for f in plan["folds"]:
        test = [by_id[i] for i in f["test"]]
        for s, inner in f["inner"].items():
            base[(f["fold"], int(s))] = epoch_record(scores0, test,
                                                     [by_id[i] for i in inner["val"]],
                                                     cfg.threshold_rule, baseline_threshold(cfg),
                                                     cfg.emotion_weight)
    t_runs = time.time()
    runs = run_all(cfg, data, plan, out, progress)
    t_analysis = time.time()
    result = analyse(cfg, data, plan, out, base)
    verdicts = result.pop("verdicts")
    timings = {"total_s": None, "data_s": round(t_data, 1),
               "runs_s": round(t_analysis - t_runs, 1),
               "analysis_s": None,
               "runs": {n: {"wall_s": r["wall_s"], "train_s": r["train_s"], "epochs": r["epochs"]}
                        for n, r in runs.items()},
               "jobs": min(cfg.jobs or os.cpu_count() or 1, len(runs)),
               "cpu_cores": os.cpu_count(), "load_average_at_start": round(load_start, 2),
               "load_average_at_end": round(os.getloadavg()[0], 2),
               "runs_this_time": sorted(n for n, r in runs.items()
                                        if r.get("finished_at", 0) >= t_start)}
    doc = {"format": FORMAT, "config": _config_dict(cfg),
           "data": {"spec": data.spec, "unit": data.info.get("unit"),
                    "clips": len(data.clips), "clips_laughed": int(sum(c.label for c in
                                                                       data.clips)),
                    "recorded_frames": int(sum(c.n_frames for c in data.clips)),
                    "participants": data.subjects, "excluded": data.info.get("excluded", {}),
                    "fingerprint": plan["fingerprint"]},
           "folds": plan["folds"], **result,
           "ship": ship_decision(result["arms"]),
           "timings": timings,
           "provenance": provenance(cfg, plan, command)}
    write_predictions(out / PREDICTIONS_JSON, cfg, data, plan, result["arms"], verdicts,
                      scores0, out, base)
    timings["analysis_s"] = round(time.time() - t_analysis, 1)
    timings["total_s"] = round(time.time() - t_start, 1)
    timings["invocations"] = _earlier_invocations(out) + [{
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t_start)),
        "total_s": timings["total_s"], "runs_done": len(timings["runs_this_time"]),
        "load_average_at_start": timings["load_average_at_start"],
        "load_average_at_end": timings["load_average_at_end"]}]
    timings["wall_s_all_invocations"] = round(sum(i["total_s"]
                                                  for i in timings["invocations"]), 1)
    with atomic_write(out / STUDY_JSON) as tmp:
        tmp.write_text(json.dumps(_strict(doc), indent=1, allow_nan=False) + "\n")
    write_report(doc, out / "report.html")
    return doc


def _earlier_invocations(out: Path) -> list[dict]:
    """The timings of the invocations before this one (a resumed or re-analysed study),
    from the study.json they left; [] when there is none to read."""
    try:
        t = json.loads((out / STUDY_JSON).read_text())["timings"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if isinstance(t.get("invocations"), list):
        return t["invocations"]
    keys = ("total_s", "load_average_at_start", "load_average_at_end")
    if not all(isinstance(t.get(k), (int, float)) for k in keys):
        return []
    return [{"started": None, **{k: t[k] for k in keys},
             "runs_done": len(t.get("runs_this_time") or [])}]


def ship_decision(arms: dict) -> dict:
    """A fine-tuned arm is a candidate only if it beats the baseline on held-out
    participants with significance: a higher clip accuracy, a participant-bootstrap
    interval of the difference above 0, and McNemar p < 0.05 in every seed. The external
    test sets (GENKI-4K, FER+ Test, SMILEsmileD test) are checked separately before
    anything ships (benchmarks/bench_accuracy.py, bench_negatives.py)."""
    winners = []
    for name, a in arms.items():
        v = a.get("vs_baseline")
        if name.startswith("baseline") or v is None:
            continue
        if v["delta_accuracy"] > 0 and v["ci95"][0] > 0 and v["p_max"] < 0.05:
            winners.append(name)
    best = max(arms, key=lambda n: arms[n].get("vs_baseline", {}).get("delta_accuracy", -1)
               if not n.startswith("baseline") else -1)
    return {"significant_arms": winners, "best_arm": best,
            "best_delta_accuracy": arms[best].get("vs_baseline", {}).get("delta_accuracy"),
            "rule": "delta accuracy > 0, its participant-bootstrap 95 % interval above 0, "
                    "McNemar p < 0.05 in every seed",
            "ship": bool(winners)}


def provenance(cfg: StudyConfig, plan: dict, command: str | None) -> dict:
    import platform

    import torch

    from utjima import __version__

    return {"start_model": plan["init_from"], "baseline_threshold": baseline_threshold(cfg),
            "judge": json.loads(SHIPPED_MODEL_JSON.read_text())["judge"],
            "recipe": {"optimiser": "AdamW", "lr": f"{cfg.lr:g}",
                       "schedule": "constant, no warmup",
                       "batch_size": cfg.batch_size, "inner_split": f"{1 - cfg.val_fraction:.0%}"
                       f":{cfg.val_fraction:.0%} by participant",
                       "sampling": "smiles and non-smiles drawn equally often",
                       "augmentation": "utjima.data.augment (strength 1)",
                       "trunk_batchnorm": "eval mode (folded at export)",
                       "loss": "smile BCE" + (f" + {cfg.emotion_weight:g} x emotion CE"
                                              if cfg.emotion_weight else " only")},
            "command": command or " ".join(sys.argv),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": {"utjima": __version__, "torch": torch.__version__,
                         "numpy": np.__version__, "python": platform.python_version()}}


def write_predictions(path: Path, cfg: StudyConfig, data: StudyData, plan: dict, arms: dict,
                      verdicts: dict, scores0: dict, out: Path, base: dict) -> None:
    """Out-of-fold scores for `utjima review`'s suspects queue (docs/study.md): per clip and
    recorded frame, the baseline's and the early-stopping arm's smile_prob (mean over seeds),
    every one from a model that never saw the clip's participant."""
    records = {(t.fold, t.seed, t.kind): _records(out, plan, cfg, t, base) for t in tasks(cfg)}
    fold_of = {i: f["fold"] for f in plan["folds"] for i in f["test"]}
    es = [picks("early_stop", cfg, records, s) for s in cfg.seeds]
    clips = []
    for c in data.clips:
        k = fold_of[c.id]
        rec = c.recorded
        first = np.array([np.flatnonzero(c.recorded & (c.frame == i))[0]
                          for i in range(c.n_frames)])                 # recorded frame -> step
        es_p = np.mean([p[k].probs[c.id] for p in es], axis=0)
        clips.append({
            "id": c.id, "subject": c.subject, "fold": k, "clip_smile": c.label,
            "n_frames": c.n_frames,
            "frame_scores": {"baseline": np.round(scores0[c.id][0][first], 4).tolist(),
                             "early_stop": np.round(es_p[first], 4).tolist()},
            "peak": {"baseline": round(float(scores0[c.id][0].max()), 4),
                     "early_stop": round(float(es_p.max()), 4)},
            "threshold": {"baseline": baseline_threshold(cfg),
                          "early_stop": float(np.mean([p[k].threshold for p in es]))},
            "laugh": {name: [v["laugh"] for v in verdicts[name][c.id]]
                      for name in ("baseline", "early_stop")},
        })
        assert rec.sum() == c.n_frames
    doc = {"format": PREDICTIONS_FORMAT, "data": data.spec, "folds": cfg.folds,
           "seeds": list(cfg.seeds), "arms": ["baseline", "early_stop"],
           "about": "out-of-fold smile_prob per recorded frame (mean over seeds); laugh: the "
                    "judge's verdict per seed", "clips": clips}
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(_strict(doc), allow_nan=False) + "\n")


def summary_lines(doc: dict) -> list[str]:
    """The seed's table in the console: clip figures per arm (mean over seeds, 95 % interval
    over participants), the threshold, and the paired comparison with the baseline."""
    def pct(v):
        return "    –" if v is None or not np.isfinite(v) else f"{100 * v:5.1f}"

    d = doc["data"]
    lines = [f"{d['spec']}: {d['clips']} clips ({d['clips_laughed']} laughed), "
             f"{len(d['participants'])} participants, {doc['config']['folds']} folds x "
             f"{len(doc['config']['seeds'])} seeds",
             f"{'arm':30s} {'acc %':>5s} {'[95 % CI]':>13s} {'prec':>5s} {'rec':>5s} "
             f"{'F1':>5s} {'thr':>6s} {'Δacc vs base [95 % CI]':>24s} {'McNemar p':>9s}"]
    for a in doc["arms"].values():
        c = a["clip"]
        lo, hi = c["ci95"]["accuracy"]
        v = a.get("vs_baseline")
        vs = (f"{100 * v['delta_accuracy']:+5.1f} [{100 * v['ci95'][0]:+5.1f}, "
              f"{100 * v['ci95'][1]:+5.1f}]" if v else "")
        p = f"{v['p_max']:9.3f}" if v else ""
        lines.append(f"{a['label']:30s} {pct(c['accuracy'])} [{pct(lo)}, {pct(hi)}] "
                     f"{pct(c['precision'])} {pct(c['recall'])} {pct(c['f1'])} "
                     f"{a['threshold']['mean']:6.3f} {vs:>24s} {p}")
    ship = doc["ship"]
    lines.append(f"significant over the baseline: {', '.join(ship['significant_arms']) or 'none'}"
                 f" ({ship['rule']}); wall time {_wall_time(doc['timings'])}")
    return lines


def _config_dict(cfg: StudyConfig) -> dict:
    d = asdict(cfg)
    d["seeds"], d["epochs"] = list(cfg.seeds), list(cfg.epochs)
    return d


def _strict(o):
    """JSON that every parser reads: numpy values as Python ones, NaN and infinities as null."""
    if isinstance(o, dict):
        return {str(k): _strict(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_strict(v) for v in o]
    if isinstance(o, np.ndarray):
        return _strict(o.tolist())
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o



# --- the HTML report (utjima.report's look) -----------------------------------------------

# The seed's own result (its §6): the 10-epoch model on its 80 held-out clips.
SEED_RESULT = {"tp": 28, "fp": 10, "fn": 12, "tn": 30, "threshold": 0.2820}


def _wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    z = 1.959964
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return c - h, c + h


def _seed_row() -> dict:
    tp, fp, fn, tn = (SEED_RESULT[k] for k in ("tp", "fp", "fn", "tn"))
    m = _binary(tp, fp, fn, tn)
    ci = {"accuracy": _wilson(tp + tn, tp + fp + fn + tn), "precision": _wilson(tp, tp + fp),
          "recall": _wilson(tp, tp + fn)}
    return {**m, "ci95": ci, "n": tp + fp + fn + tn, "n_pos": tp + fn,
            "threshold": SEED_RESULT["threshold"]}


def write_report(doc: dict, path: Path) -> None:
    """report.html: the seed's table first, then the paired comparisons, curves, frames,
    participants, onset, folds, timing and provenance."""
    from utjima import report as rk

    arms, cfg, d = doc["arms"], doc["config"], doc["data"]
    n_seeds = len(cfg["seeds"])
    page = rk.Page("Fine-tuning study",
                   subtitle=f"{d['spec']}: the seed's epoch A/B with subject-grouped "
                            f"{cfg['folds']}-fold cross-validation and {n_seeds} "
                            f"seed{'s' if n_seeds > 1 else ''}",
                   meta={"clips": f"{d['clips']} ({d['clips_laughed']} laughed)",
                         "participants": len(d["participants"]),
                         "start model": Path(doc["provenance"]["start_model"]["path"]).name,
                         "wall time": _wall_time(doc["timings"])})
    cols = (*rk.BINARY_COLUMNS[:4], ("threshold", "Threshold", False))
    rows = []
    for name, a in arms.items():
        m = {**a["clip"], "threshold": a["threshold"]["mean"]}
        m["ci95"] = {**m["ci95"], "threshold": (a["threshold"]["min"], a["threshold"]["max"])
                     if a["threshold"]["max"] > a["threshold"]["min"] else (math.nan, math.nan)}
        note = {"baseline": "the start model at its own threshold",
                "early_stop": f"epoch {a['epoch']['min']}–{a['epoch']['max']} (median "
                              f"{a['epoch']['median']:g}), lowest inner-validation loss",
                "ensemble": "mean smile_prob of a fold's early-stopping models"}.get(name, "")
        rows.append(rk.Row(a["label"], m, note=note))
    rows.append(rk.Row("the seed, 10 epochs", _seed_row(),
                       note="as reported: its own 80 clips, one split, one seed (Wilson "
                            "intervals); not these clips"))
    page.section("The seed's table", rk.headline_table(rows, columns=cols), intro=(
        f"Unit: {d['unit']}. Each clip is scored once per seed by a model that never saw its "
        f"participant; figures are pooled over the {cfg['folds']} folds and averaged over the "
        f"seeds. Small grey figures: 95 % intervals from {cfg['n_boot']:,} bootstrap "
        "resamples of participants (threshold: its range over folds and seeds, re-chosen "
        "on each inner validation split)."))

    comp = []
    for a in arms.values():
        v = a.get("vs_baseline")
        if v is None:
            continue
        tests = "; ".join(f"{t['arm_only_right']}:{t['baseline_only_right']}, p = "
                          f"{rk.fmt(t['p'])}" for t in v["mcnemar"])
        comp.append([a["label"], rk.Est(v["delta_accuracy"], *v["ci95"]),
                     ", ".join(f"{100 * x:+.1f}" for x in v["per_seed_delta"]), tests,
                     rk.fmt(v["p_max"])])
    ship = doc["ship"]
    verdict = (f"Significant over the baseline: {', '.join(ship['significant_arms'])}."
               if ship["significant_arms"] else
               "No arm beats the baseline with significance (rule: " + ship["rule"] + ").")
    page.section("Against the baseline", rk.callout(verdict, "" if ship["ship"] else "warn"),
                 rk.table(["arm", "Δ accuracy %", "per seed, points",
                           "McNemar per seed (only arm right : only baseline right)",
                           "largest p"], comp, percent_cols=[1]),
                 intro="The same held-out clips, paired: the accuracy difference with a paired "
                       "bootstrap over participants, and the exact McNemar test per seed.")

    page.section("Learning curves", *_curve_blocks(doc), intro=(
        "Full fine-tuning, epoch 0 = the start model; means over seeds (losses: over folds "
        "too; held-out figures pooled over the folds at each epoch's inner-validation "
        "threshold). Dashed verticals: the fixed-epoch arms."))

    frows = [rk.Row(a["label"], {**a["frame"], "threshold": a["threshold"]["mean"]})
             for a in arms.values()]
    page.section("Frames", rk.headline_table(frows, columns=(*rk.BINARY_COLUMNS[:5],)), intro=(
        "Every labelled recorded frame once (holds excluded), scored with the streaming "
        "window; frames of one clip are far from independent, so no intervals here."))

    subjects = d["participants"]
    prow = [[s, *[arms[n]["per_participant"][s] for n in arms]] for s in subjects]
    page.section("Participants", rk.table(["participant", *[_short(n) for n in arms]],
                                          prow, percent_cols=list(range(1, len(arms) + 1))),
                 intro="Clip accuracy per participant (mean over seeds), in the fold that "
                       "held them out.")

    lrows = []
    for a in arms.values():
        lat = a["latency"]
        lrows.append([a["label"], f"{_count(lat['happy_with_laugh'])} of {lat['happy_clips']}",
                      _count(lat["laugh_before_onset"]),
                      None if lat["median_latency_ms"] is None
                      else int(round(lat["median_latency_ms"])),
                      f"{_count(lat['false_laughs'])} of {lat['other_clips']}"])
    page.section("Laugh onset", rk.table(
        ["arm", "laughed clips with a laugh", "laugh before the onset",
         "median laugh start − onset, ms", "false laughs"], lrows),
        intro="Through the real judge (model.json's rules at the arm's threshold), mean over "
              "seeds. Onset: the apex frame for CK+ (as benchmarks/bench_negatives.py "
              "measures it), else the first frame labelled smiling; negative = before it.")

    tenth = f"epochs_{10 if 10 in cfg['epochs'] else cfg['epochs'][0]}"
    cms = [rk.confusion_matrix(_int_confusion(arms[n]["clip"]["confusion"]),
                               ("no laugh", "laughed"), title=arms[n]["label"])
           for n in ("baseline", tenth, "early_stop") if n in arms]
    page.section("Clip confusion", rk.grid(*cms),
                 intro="Clips, mean over seeds (rounded): rows the label, columns the judge; "
                       "the other arms' counts are in the tables above.")

    frows2 = [[f["fold"], ", ".join(f["test_subjects"]), ", ".join(f["train_subjects"]),
               "; ".join(f"seed {s}: {', '.join(i['val_subjects'])}"
                         + ("" if i["by"] == "participant" else " (a share of clips)")
                         for s, i in f["inner"].items())] for f in doc["folds"]]
    page.section("Folds", rk.table(["fold", "test participants", "training participants",
                                    "inner validation"], frows2),
                 intro="Every participant is tested in exactly one fold; inner validation "
                       "participants are drawn per seed among the fold's training ones.")

    t = doc["timings"]
    runs = t["runs"]
    page.section("Timing", rk.table(["", "value"], [
        ["total wall time", _wall_time(t)],
        *[[f"invocation {k}" + (f", {i['started']}" if i["started"] else ""),
           f"{i['total_s'] / 60:.1f} min, {i['runs_done']} runs trained, load average "
           f"{i['load_average_at_start']} → {i['load_average_at_end']}"]
          for k, i in enumerate(t["invocations"], 1)],
        ["fine-tuning runs", f"{len(runs)} ({t['jobs']} at a time, one CPU thread each, "
                             f"{t['cpu_cores']} cores)"],
        ["run wall time, median / max", f"{np.median([r['wall_s'] for r in runs.values()]):.0f}"
                                        f" / {max(r['wall_s'] for r in runs.values()):.0f} s"]]))
    pv = doc["provenance"]
    page.section("Provenance", rk.provenance({
        "Start model": {"checkpoint": pv["start_model"]["path"],
                        "sha256": pv["start_model"]["sha256"],
                        "baseline threshold": pv["baseline_threshold"]},
        "Recipe": pv["recipe"],
        "Data": {"spec": d["spec"], "clips": d["clips"], "recorded frames": d["recorded_frames"],
                 "excluded": {k: len(v) for k, v in d["excluded"].items()} or "none",
                 "fingerprint": d["fingerprint"]},
        "Run": {"command": pv["command"], "time": pv["time"], **pv["versions"]}}))
    page.write(path)


def _count(v: float) -> str:
    """A clip count averaged over seeds: whole when it is, else one decimal."""
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:.1f}"


def _wall_time(t: dict) -> str:
    """The study's wall time: every invocation's (a resumed study ran in parts)."""
    n = len(t["invocations"])
    return (f"{t['wall_s_all_invocations'] / 60:.1f} min"
            + (f" in {n} invocations" if n > 1 else ""))


def _short(name: str) -> str:
    """An arm's name for a table column."""
    if name.startswith("epochs_"):
        return f"{name[7:]} ep."
    return {"baseline": "baseline", "baseline_rethreshold": "re-thresh.",
            "early_stop": "early stop", "frozen": "frozen", "ensemble": "ensemble"}[name]


def _int_confusion(c: dict) -> dict:
    return {k: int(round(c[k])) for k in ("tn", "fp", "fn", "tp")}


def _curve_blocks(doc: dict) -> list:
    from utjima import report as rk

    rows = doc["curves"]["full"]["epochs"]
    frozen = doc["curves"]["frozen"]["epochs"]
    e = [r["epoch"] for r in rows]
    ef = [r["epoch"] for r in frozen]
    marks = doc["config"]["epochs"]

    def col(rs, key):
        return [math.nan if r[key] is None else r[key] for r in rs]

    loss = rk.line_chart([rk.Line("train loss", e, col(rows, "train_loss")),
                          rk.Line("inner-validation loss", e, col(rows, "val_loss")),
                          rk.Line("validation, trunk frozen", ef, col(frozen, "val_loss"),
                                  dash="5 4")],
                         "Loss", "epoch", "loss (smile BCE)", marks=marks)
    held = rk.line_chart([rk.Line("frame AUC", e, col(rows, "test_auc")),
                          rk.Line("clip accuracy (judge)", e, col(rows, "test_clip_accuracy")),
                          rk.Line("frame F1", e, col(rows, "test_f1")),
                          rk.Line("clip accuracy, trunk frozen", ef,
                                  col(frozen, "test_clip_accuracy"), dash="5 4")],
                         "Held-out participants", "epoch", "", marks=marks)
    v = doc["val_loss_vs_test"]
    stats = rk.table(["how validation loss tracked held-out performance (per run)", "median"], [
        ["Spearman ρ, validation loss vs held-out frame AUC (−1: perfectly together)",
         v["spearman_val_loss_test_auc_median"]],
        ["Spearman ρ, validation loss vs held-out clip accuracy",
         v["spearman_val_loss_test_clip_accuracy_median"]],
        ["share of epochs where validation loss fell and held-out AUC fell too",
         v["share_val_down_test_auc_down_median"]],
        ["epoch of the lowest validation loss − epoch of the best held-out AUC",
         v["epoch_min_val_loss_minus_epoch_best_test_auc_median"]],
        ["runs whose held-out frame AUC never moved, left out of the AUC rows (– when "
         "no run is left)", f"{v['runs_test_auc_constant']} of {v['runs']}"]])
    return [rk.grid(loss, held, cls="charts"), rk.titled(f"{v['runs']} runs", stats)]
