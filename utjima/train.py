"""Training: one plain function, `train(cfg)`, for pretraining and fine-tuning alike.

    setup -> for each epoch: train on augmented clips, evaluate on validation, log a line
    to metrics.jsonl, atomically save last.pt (and best.pt) -> done

Multi-task with missing labels: SMILEsmileD gives smile only, FER+ gives emotion votes
(and smile = majority "happiness"); each loss is masked where its label is absent.
Stills become 5-frame clips: `distinct_frames` jittered views of the still spread over the
T steps (utjima.data.augment), so the CNN runs K times per clip instead of T (K=2: 2.5x
faster) while the LSTM still sees the temporal jitter. Recorded clips use all T frames.
Fine-tuning (`init_from`) is the same function with the seed's defaults; a study
(utjima.study) passes its folds' clips in memory (`sets`) and evaluates held-out clips after
every epoch (`on_epoch`). Distillation
(`teacher`): a bigger model's predictions on the clean stills are computed once at start
and every augmented view learns them too (offline knowledge distillation); where a source
lacks a label (emotion on SMILEsmileD) the teacher's answer is the only signal.
`--resume` reloads last.pt (model, optimiser, schedule, RNG, epoch) and goes on from the
next epoch, so a killed run loses at most the epoch it was in.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from utjima.data import ClipSet, FaceSet, load_canonical
from utjima.model import (
    PRESETS,
    DualHeadSmileDetector,
    ModelConfig,
    get_config,
    load_checkpoint,
    predict_stills,
    save_checkpoint,
    still_logits,
)

CKPT_LAST, CKPT_BEST, METRICS = "last.pt", "best.pt", "metrics.jsonl"


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "face64"                 # model preset (utjima.model.PRESETS)
    model: dict = field(default_factory=dict)  # ModelConfig overrides, e.g. {"width_mult": 0.75}
    data: tuple[str, ...] = ("smilesmiled:train", "ferplus:train")  # training specs
    val: tuple[str, ...] = ("smilesmiled:val", "ferplus:valid")  # selection specs, never a test set
    val_fraction: float = 0.0              # >0: hold out this share of `data` as validation
                                           # (fine-tuning: 9:1)
    epochs: int = 20
    batch_size: int = 128
    lr: float = 2e-3                       # peak learning rate (AdamW)
    trunk_lr_mult: float = 1.0             # trunk lr = lr * this (lower for a pretrained trunk)
    weight_decay: float = 0.05
    schedule: str = "cosine"               # "cosine" | "step" | "constant", after a linear warmup
    warmup_frac: float = 0.05              # share of all steps spent warming up
    smile_weight: float = 1.0              # loss = smile_weight * BCE + emotion_weight * soft CE
    emotion_weight: float = 1.0
    label_smoothing: float = 0.0           # smile targets pulled to eps/2 .. 1-eps/2
    aug_strength: float = 1.0              # utjima.data.augment strength (0 = none)
    distinct_frames: int = 2               # K jittered views per still clip (1..T)
    balance_sources: bool = False          # sample each source (and smile/non-smile) equally often;
                                           # off: FER+'s 7 classes need all of FER+
    teacher: str | None = None             # checkpoint whose predictions the model also learns
                                           # (distillation)
    kd_weight: float = 0.5                 # loss = (1 - kd_weight) * labels + kd_weight * teacher
    kd_temperature: float = 2.0            # softening of the teacher's emotion logits
    hard_negative_weight: float = 1.0      # a non-smile face whose majority emotion is laugh-like
                                           # (sad, fear, surprise, disgust, angry: the judge's false
                                           # laughs) counts this many times in the smile loss
    clip_share: float = 0.0                # >0: this share of each epoch's items are recorded-clip
                                           # windows (ckplus), the rest stills (else a few hundred
                                           # windows drown among 40k stills)
    device: str = "cpu"                    # "cpu" or "cuda" (a GPU run; the recipe is the same)
    freeze_trunk: bool = False             # fine-tuning: train only LSTM + heads
    freeze_encoder: bool = False           # train the step only (LSTM + heads, not the trunk's
                                           # projection either): the exported encoder.onnx and
                                           # its int8 file stay byte-identical
    splice_share: float = 0.0              # this share of each batch's windows begin with another
                                           # item's frames (an expression changing mid-window);
                                           # the label stays the last frames': the LSTM learns to
                                           # follow an onset instead of lagging behind it
    frozen_bn: bool = False                # keep the trunk's BatchNorm in eval mode while its
                                           # weights train (a checkpoint whose BatchNorm was folded
                                           # at export, like shipped.pt: batch statistics would
                                           # undo it)
    epoch_items: int = 0                   # items drawn per epoch (0 = the training set's size);
                                           # a recorded clip gives a window per frame, so a study
                                           # may draw fewer (one per model frame interval)
    init_from: str | None = None           # checkpoint to start from (fine-tuning)
    seed: int = 0
    threads: int = 0                       # torch CPU threads (0 = all cores)
    num_workers: int = 1                   # DataLoader workers making augmented clips
    max_steps: int | None = None           # stop early (smoke tests)
    limit: int | None = None               # at most this many samples per source
    progress: bool = True                  # tqdm bars

    def __post_init__(self) -> None:
        if self.init_from is None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; valid: {sorted(PRESETS)}")
        if not 0 <= self.splice_share <= 1:
            raise ValueError(f"splice_share must be in [0, 1], got {self.splice_share}")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


FINETUNE_DEFAULTS = dict(lr=5e-5, batch_size=4, val_fraction=0.1, epochs=10, warmup_frac=0.0,
                         schedule="constant", distinct_frames=5, val=())


def _set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state()}


def _set_rng_state(s: dict) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])


def lr_factor(step: int, total: int, cfg: TrainConfig) -> float:
    warm = int(cfg.warmup_frac * total)
    if step < warm:
        return (step + 1) / warm
    if cfg.schedule == "constant":
        return 1.0
    t = (step - warm) / max(1, total - warm)
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    if cfg.schedule == "step":  # /10 at 60 % and 85 %
        return 1.0 if t < 0.6 else 0.1 if t < 0.85 else 0.01
    raise ValueError(f"unknown schedule {cfg.schedule!r}; valid: cosine, step, constant")


def validation_scores(model: DualHeadSmileDetector, sets: list[FaceSet]) -> dict:
    """Per-source smile AUC/accuracy and 7-class accuracy, plus `score` for model selection:
    the mean of every smile AUC and every 7-class accuracy available."""
    from utjima.metrics import binary_at, roc_auc

    out, parts = {}, []
    for fs in sets:
        sp, ep = predict_stills(model, fs.images)
        r = {"n": len(fs)}
        m = fs.smile >= 0
        if m.any() and len(np.unique(fs.smile[m])) == 2:
            r["smile_auc"] = roc_auc(fs.smile[m] == 1, sp[m])
            r["smile_acc@0.5"] = binary_at(fs.smile[m] == 1, sp[m], 0.5)["accuracy"]
            parts.append(r["smile_auc"])
        m = fs.emotion_label >= 0
        if m.any():
            r["emotion_acc"] = float((ep[m].argmax(1) == fs.emotion_label[m]).mean())
            parts.append(r["emotion_acc"])
        out[fs.source] = r
    out["score"] = float(np.mean(parts)) if parts else float("nan")
    return out


def _split_val(sets, fraction: float, seed: int):
    """Fine-tuning's train/val 9:1: a seeded split of every training source."""
    tr, va = [], []
    rng = np.random.default_rng(seed)
    for fs in sets:
        idx = rng.permutation(len(fs))
        k = max(1, int(round(fraction * len(fs))))
        va_set = fs.subset(np.sort(idx[:k]))
        va_set.source = fs.source + "#val"
        tr.append(fs.subset(np.sort(idx[k:])))
        va.append(va_set)
    return tr, va


def train(cfg: TrainConfig, out: str | Path, resume: bool = False, sets=None,
          on_epoch=None) -> dict:
    """Train into `out`; returns the last epoch's metrics. `sets`: training FaceSets/ClipSets
    already in memory, used instead of loading `cfg.data`; `on_epoch(model, result) -> dict`:
    called after each epoch's validation, its dict joins the epoch's line in metrics.jsonl."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    _set_seed(cfg.seed)

    # --- model -------------------------------------------------------------------
    ckpt, init_ckpt = None, None
    if resume:
        if not (out / CKPT_LAST).is_file():
            raise FileNotFoundError(f"--resume: no {CKPT_LAST} in {out}")
        ckpt = torch.load(out / CKPT_LAST, map_location="cpu", weights_only=False)
        saved = ckpt["train_config"]
        if saved != _cfg_dict(cfg):
            diff = {k: (saved.get(k), v) for k, v in _cfg_dict(cfg).items() if saved.get(k) != v}
            raise ValueError(f"--resume with a different config than {out / CKPT_LAST}: {diff}")
        model = DualHeadSmileDetector(replace(ModelConfig.from_dict(ckpt["model_config"]),
                                              pretrained=False))
        model.load_state_dict(ckpt["model"])
    elif cfg.init_from:
        model, init_ckpt = load_checkpoint(cfg.init_from)
    else:
        model = DualHeadSmileDetector(get_config(cfg.preset, **cfg.model))
    mcfg = model.cfg
    dev = torch.device(cfg.device)
    torch.backends.cudnn.benchmark = dev.type == "cuda"
    model = model.to(dev, memory_format=torch.channels_last)  # 2.5x faster convs on CPU here
    if cfg.freeze_trunk or cfg.freeze_encoder:
        for p in model.trunk.parameters():
            p.requires_grad_(False)
    if cfg.freeze_encoder:
        for p in model.proj.parameters():
            p.requires_grad_(False)

    # --- data --------------------------------------------------------------------
    from torch.utils.data import DataLoader, RandomSampler, WeightedRandomSampler

    from utjima.data.torchdata import FaceClipDataset, make_sampler

    def load_sets(specs):
        return [load_canonical(spec, size=mcfg.img_size, channels=mcfg.channels, training=True,
                               limit=cfg.limit, seed=cfg.seed, progress=cfg.progress)
                for spec in specs]

    train_sets = list(sets) if sets is not None else load_sets(cfg.data)
    if cfg.val_fraction > 0:
        train_sets, val_sets = _split_val(train_sets, cfg.val_fraction, cfg.seed)
    else:
        val_sets = load_sets(cfg.val)
    has_clips = any(isinstance(s, ClipSet) for s in train_sets)
    k = mcfg.n_frames if has_clips else max(1, min(cfg.distinct_frames, mcfg.n_frames))
    ds = FaceClipDataset(train_sets, n_frames=k, size=mcfg.img_size, channels=mcfg.in_chans,
                         strength=cfg.aug_strength, train=True, seed=cfg.seed,
                         frame_interval_ms=mcfg.frame_interval_ms)
    n_per_epoch = cfg.epoch_items or len(ds)
    kd, t_ckpt = None, None
    if cfg.teacher:  # one load: its predictions now, its metadata for the provenance below
        teacher, t_ckpt = load_checkpoint(cfg.teacher)
        kd = tuple(t.to(dev) for t in teacher_targets(teacher.to(dev), ds))
        del teacher
    smile_w = torch.from_numpy(hard_negative_weights(ds, cfg.hard_negative_weight)).to(dev)
    steps_per_epoch = max(1, n_per_epoch // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)

    # --- optimiser ---------------------------------------------------------------
    trunk = [p for n, p in model.named_parameters() if n.startswith("trunk.") and p.requires_grad]
    rest = [p for n, p in model.named_parameters()
            if not n.startswith("trunk.") and p.requires_grad]
    groups = [{"params": rest, "lr": cfg.lr}]
    if trunk:
        groups.append({"params": trunk, "lr": cfg.lr * cfg.trunk_lr_mult})
    for g in groups:
        g["base_lr"] = g["lr"]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)

    start_epoch, step, best = 0, 0, -float("inf")
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
        start_epoch, step, best = ckpt["epoch"] + 1, ckpt["step"], ckpt["best_score"]
        _set_rng_state(ckpt["rng"])
    if ckpt is None and (out / METRICS).exists():
        (out / METRICS).unlink()  # a fresh run starts a fresh log

    provenance = {"train": list(cfg.data),
                  "val": list(cfg.val) if cfg.val_fraction <= 0
                  else f"{cfg.val_fraction:.0%} of train",
                  "counts": {s.source: len(s) for s in train_sets},
                  "framing": {s.source: s.info.get("framing", {}).get("dropped", 0)
                              for s in train_sets}}
    if init_ckpt is not None:  # a fine-tune: its weights' own history stays on record
        provenance["init_from"] = {"checkpoint": str(cfg.init_from),
                                   "provenance": init_ckpt.get("provenance"),
                                   "train_config": init_ckpt.get("train_config")}
    if t_ckpt is not None:
        provenance["teacher"] = {"checkpoint": str(cfg.teacher),
                                 "model_config": t_ckpt.get("model_config"),
                                 "provenance": t_ckpt.get("provenance"), "val": t_ckpt.get("val")}
    result = {}
    t_start = time.time()
    for epoch in range(start_epoch, cfg.epochs):
        if cfg.max_steps and step >= cfg.max_steps:
            break
        ds.set_epoch(epoch)
        # a sampler seeded by (seed, epoch): a resumed run draws exactly what it would have
        g_seed = cfg.seed * 100_003 + epoch
        if cfg.clip_share > 0:
            w_clip = torch.from_numpy(clip_share_weights(ds, cfg.clip_share))
            sampler = WeightedRandomSampler(w_clip, n_per_epoch,
                                            generator=torch.Generator().manual_seed(g_seed))
        elif cfg.balance_sources:
            sampler = make_sampler(ds, num_samples=n_per_epoch, seed=g_seed)
        else:
            sampler = RandomSampler(ds, num_samples=cfg.epoch_items or None,
                                    generator=torch.Generator().manual_seed(g_seed))
        loader = DataLoader(_Indexed(ds), batch_size=cfg.batch_size, sampler=sampler,
                            drop_last=True, num_workers=cfg.num_workers, persistent_workers=False,
                            pin_memory=dev.type == "cuda",
                            worker_init_fn=_worker_init if cfg.num_workers else None)
        model.train()
        if cfg.freeze_trunk or cfg.freeze_encoder or cfg.frozen_bn:
            model.trunk.eval()  # frozen BN statistics too
        sums = {"loss": 0.0, "smile": 0.0, "emotion": 0.0, "n": 0}
        t0 = time.time()
        bar = tqdm(loader, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not cfg.progress, leave=False)
        for clip, smile, emotion, emask, idx in bar:
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * lr_factor(step, total, cfg)
            clip, smile, emotion, emask, idx = (t.to(dev, non_blocking=True)
                                                for t in (clip, smile, emotion, emask, idx))
            targets = None if kd is None else tuple(t[idx] for t in kd)
            loss, ls, le = _loss(model, clip, smile, emotion, emask, cfg, k, targets, smile_w[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            step += 1
            sums["loss"] += loss.item()
            sums["smile"] += ls
            sums["emotion"] += le
            sums["n"] += 1
            bar.set_postfix(loss=f"{sums['loss'] / sums['n']:.3f}")
            if cfg.max_steps and step >= cfg.max_steps:
                break
        n = max(sums["n"], 1)
        val = validation_scores(model, val_sets)  # on the training device (still_logits follows it)
        is_best = val["score"] > best
        best = max(best, val["score"])
        result = {"epoch": epoch + 1, "step": step, "lr": opt.param_groups[0]["lr"],
                  "train_loss": sums["loss"] / n, "train_smile_loss": sums["smile"] / n,
                  "train_emotion_loss": sums["emotion"] / n, "val": val, "best": is_best,
                  "epoch_s": round(time.time() - t0, 1),
                  "elapsed_s": round(time.time() - t_start, 1)}
        if on_epoch is not None:
            result.update(on_epoch(model, result) or {})
        with open(out / METRICS, "a") as f:
            f.write(json.dumps(result) + "\n")
        state = {"train_config": _cfg_dict(cfg), "epoch": epoch, "step": step, "best_score": best,
                 "val": val, "provenance": provenance}
        save_checkpoint(out / CKPT_LAST, model, optimizer=opt.state_dict(),
                        rng=_rng_state(), **state)
        if is_best:
            save_checkpoint(out / CKPT_BEST, model, **state)
        if cfg.progress:
            print(f"epoch {epoch + 1}/{cfg.epochs}  loss {result['train_loss']:.4f}  "
                  f"val score {val['score']:.4f}{' (best)' if is_best else ''}  "
                  f"{result['epoch_s']:.0f}s  "
                  + "  ".join(f"{s}: " + ", ".join(f"{k}={v:.4f}" for k, v in r.items() if k != "n")
                              for s, r in val.items() if isinstance(r, dict)), flush=True)
    return result


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)


class _Indexed(torch.utils.data.Dataset):
    """Items with their index, to look up per-item teacher targets."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        return (*self.ds[i], i)


@torch.no_grad()
def teacher_targets(teacher: DualHeadSmileDetector,
                    ds) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The teacher's smile_prob (N,), emotion logits (N, 7) and a mask (N,) for every still
    item of `ds` (recorded-clip windows get mask 0: the teacher saw no such input)."""
    teacher = teacher.to(memory_format=torch.channels_last)
    n = len(ds)
    smile, emo, mask = torch.zeros(n), torch.zeros(n, teacher.cfg.n_emotions), torch.zeros(n)
    for k, s in enumerate(ds.sets):
        if not isinstance(s, FaceSet):
            continue
        rows = np.flatnonzero((ds.rows[:, 0] == k) & (ds.rows[:, 2] == -1))
        s_logit, e_logit = still_logits(teacher, s.images[ds.rows[rows, 1]], resize=True)
        r = torch.from_numpy(rows)
        smile[r], emo[r], mask[r] = torch.sigmoid(s_logit), e_logit, 1.0
    return smile, emo, mask


def hard_negative_weights(ds, weight: float) -> np.ndarray:
    """(N,) smile-loss weights: `weight` for non-smiles whose (majority) emotion is laugh-like."""
    from utjima import EMOTIONS, LAUGH_LIKE

    hard = (ds.smile == 0) & np.isin(ds.emotion_label, [EMOTIONS.index(e) for e in LAUGH_LIKE])
    return np.where(hard, weight, 1.0).astype(np.float32)


def clip_share_weights(ds, share: float) -> np.ndarray:
    """(N,) sampling weights: recorded-clip windows together get `share`, stills the rest."""
    is_clip = ds.rows[:, 2] >= 0
    if not 0 < share < 1 or not is_clip.any() or is_clip.all():
        raise ValueError(f"clip_share={share} needs 0 < share < 1 and both recorded clips "
                         f"(e.g. ckplus) and stills in --data")
    return np.where(is_clip, share / is_clip.sum(), (1 - share) / (~is_clip).sum())


def splice(feats: torch.Tensor, share: float) -> torch.Tensor:
    """(B, T, F) windows -> the same, where a `share` of them begin with another item's first
    1..T-1 steps: a face changing expression inside the window, labelled by its last frames.
    Draws come from torch's CPU generator, so a seeded run repeats on any device."""
    b, t = feats.shape[:2]
    chosen = torch.rand(b) < share                                  # (B,)
    other = torch.randperm(b)                                       # (B,) whose frames come first
    cut = torch.randint(1, t, (b,))                                 # (B,) steps taken from `other`
    early = (torch.arange(t)[None] < cut[:, None]) & chosen[:, None]  # (B, T)
    early = early.to(feats.device)[..., None]
    return torch.where(early, feats[other.to(feats.device)], feats)


def _loss(model, clip, smile, emotion, emask, cfg: TrainConfig, k: int, teacher=None, smile_w=None):
    """Masked multi-task loss (+ distillation). clip (B, K, C, S, S): K distinct views spread
    over T steps. `smile_w` (B,): per-item smile-loss weights (hard negatives)."""
    b = clip.shape[0]
    t = model.cfg.n_frames
    x = clip.flatten(0, 1).contiguous(memory_format=torch.channels_last)  # -> (B*K, C, S, S)
    feats = model.encode(x).view(b, k, -1)                                # (B*K, F) -> (B, K, F)
    if k < t:
        # each clip switches views at random steps: (B, K, F) -> (B, T, F), views in order
        if k > 1:
            cuts = torch.sort(torch.randint(1, t, (b, k - 1)), dim=1).values  # (B, K-1)
        else:
            cuts = torch.empty(b, 0, dtype=torch.long)
        cuts = cuts.to(clip.device)  # drawn on the CPU generator: the same draws on any device
        steps = torch.arange(t, device=clip.device)
        idx = (steps[None, :, None] >= cuts[:, None, :]).sum(-1)              # (B, T) in 0..K-1
        feats = torch.gather(feats, 1, idx[..., None].expand(-1, -1, feats.shape[-1]))
    if cfg.splice_share > 0:
        feats = splice(feats, cfg.splice_share)
    s_logit, e_logit = model.step(feats)
    m = smile >= 0
    target = smile.clamp(min=0) * (1 - cfg.label_smoothing) + cfg.label_smoothing / 2
    w = torch.ones_like(target) if smile_w is None else smile_w
    if m.any():
        bce = F.binary_cross_entropy_with_logits(s_logit[m], target[m], reduction="none")
        ls = (bce * w[m]).mean()
    else:
        ls = s_logit.sum() * 0
    ce = -(emotion * F.log_softmax(e_logit, 1)).sum(1)                                        # (B,)
    le = (ce * emask).sum() / emask.sum().clamp(min=1)
    loss = cfg.smile_weight * ls + cfg.emotion_weight * le
    if teacher is not None:
        t_smile, t_emo, t_mask = teacher
        tau = cfg.kd_temperature
        ks = (F.binary_cross_entropy_with_logits(s_logit, t_smile, reduction="none") * t_mask).sum()
        kl = F.kl_div(F.log_softmax(e_logit / tau, 1), F.log_softmax(t_emo / tau, 1),
                      log_target=True, reduction="none").sum(1) * tau * tau
        ke = (kl * t_mask).sum()
        n = t_mask.sum().clamp(min=1)
        kd = cfg.smile_weight * ks + cfg.emotion_weight * ke
        loss = (1 - cfg.kd_weight) * loss + cfg.kd_weight * kd / n
    return loss, ls.item(), le.item()


def _cfg_dict(cfg: TrainConfig) -> dict:
    d = asdict(cfg)
    d.pop("progress")  # display only: a resumed run may turn bars off
    d["data"], d["val"] = list(d["data"]), list(d["val"])
    return d
