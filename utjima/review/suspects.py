"""The suspects queue: labels that out-of-sample predictions most disagree with, by
confident learning (Northcutt, Jiang & Chuang 2021, "Confident Learning: Estimating
Uncertainty in Dataset Labels"), for the binary smile label.

- Per-class thresholds are the mean self-confidence of each class: t_1 = mean p over the
  frames labelled smiling, t_0 = mean (1 - p) over the frames labelled not smiling.
- A frame labelled y goes into the confident joint's cell (y, j) for the class j with the
  larger probability among the classes whose probability reaches their threshold; it is a
  label issue when j != y (no class reaches its threshold: not counted).
- Spans (runs of consecutive frames with one smile label) are ranked by the share of their
  scored frames that are issues, then by their mean self-confidence (lower first); clips by
  their clip label judged the same way on clip scores (the highest frame score, what
  `utjima evaluate` calls the clip's score), then by their share of issue frames.

Frames without a face (NaN score) and unlabelled frames are left out. The predictions
must be out-of-sample (a model that never saw these clips, or out-of-fold scores from a
study), else the model has learnt the very labels it is asked to doubt. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Scored:
    """One clip's labels and scores, what the queue reads."""

    clip: str
    times_ms: np.ndarray  # (N,)
    smile: np.ndarray  # (N,) 1 / 0 / -1 unknown (the reviewed labels)
    probs: np.ndarray  # (N,) smile_prob, NaN = no face
    clip_smile: int = -1


def thresholds(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(t_0, t_1): mean self-confidence per class; inf for a class without examples (then
    nothing is assigned to it)."""
    y, p = np.asarray(y), np.asarray(p, np.float64)
    t0 = float(np.mean(1 - p[y == 0])) if (y == 0).any() else np.inf
    t1 = float(np.mean(p[y == 1])) if (y == 1).any() else np.inf
    return t0, t1


def confident_class(p: np.ndarray, t: tuple[float, float]) -> np.ndarray:
    """(N,) the confident joint's column per example: 1, 0, or -1 (no class reaches its
    threshold)."""
    p = np.asarray(p, np.float64)
    q1, q0 = p >= t[1], (1 - p) >= t[0]
    out = np.full(len(p), -1, np.int8)
    out[q0] = 0
    out[q1 & (~q0 | (p > 0.5))] = 1  # both reach: the more probable class
    return out


def label_issues(y: np.ndarray, p: np.ndarray, t: tuple[float, float] | None = None
                 ) -> np.ndarray:
    """(N,) bool: the label disagrees with the confident class (off-diagonal of the joint)."""
    y = np.asarray(y)
    t = thresholds(y, p) if t is None else t
    j = confident_class(p, t)
    return (j >= 0) & (j != y)


def self_confidence(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(N,) the probability the model gives the given label."""
    p = np.asarray(p, np.float64)
    return np.where(np.asarray(y) == 1, p, 1 - p)


def _spans(smile: np.ndarray, ok: np.ndarray) -> list[tuple[int, int]]:
    """[first, last] frame indices of runs of one smile label (0/1) among `ok` frames."""
    out: list[tuple[int, int]] = []
    start = None
    for i in range(len(smile) + 1):
        same = start is not None and i < len(smile) and ok[i] and smile[i] == smile[start]
        if same:
            continue
        if start is not None:
            out.append((start, i - 1))
            start = None
        if i < len(smile) and ok[i]:
            start = i
    return out


def rank(clips: Sequence[Scored], limit: int = 200) -> dict:
    """{"thresholds", "frames", "spans": ranked suspect spans, "clips": ranked suspect clips}."""
    ys = [c.smile[(c.smile >= 0) & np.isfinite(c.probs)] for c in clips]
    ps = [c.probs[(c.smile >= 0) & np.isfinite(c.probs)] for c in clips]
    y = np.concatenate(ys) if ys else np.zeros(0, np.int8)
    p = np.concatenate(ps) if ps else np.zeros(0)
    t = thresholds(y, p)
    issues_all = label_issues(y, p, t)
    spans, per_clip = [], {}
    for c in clips:
        labelled = c.smile >= 0
        scored = labelled & np.isfinite(c.probs)
        issue = np.zeros(len(c.smile), bool)
        issue[scored] = label_issues(c.smile[scored], c.probs[scored], t)
        conf = self_confidence(c.smile, np.nan_to_num(c.probs))
        for first, last in _spans(c.smile, labelled):
            sl = slice(first, last + 1)
            n_scored = int(scored[sl].sum())
            n_issue = int(issue[sl].sum())
            if not n_issue:
                continue
            nxt = c.times_ms[last + 1] if last + 1 < len(c.times_ms) else c.times_ms[last] + (
                float(np.median(np.diff(c.times_ms))) if len(c.times_ms) > 1 else 1.0)
            spans.append({
                "clip": c.clip, "first": first, "last": last,
                "start_ms": round(float(c.times_ms[first]), 3), "end_ms": round(float(nxt), 3),
                "smile": int(c.smile[first]), "frames": last - first + 1, "scored": n_scored,
                "issues": n_issue, "share": round(n_issue / n_scored, 4),
                "mean_prob": round(float(np.mean(c.probs[sl][scored[sl]])), 4),
                "self_confidence": round(float(np.mean(conf[sl][scored[sl]])), 4)})
        per_clip[c.clip] = (int(issue.sum()), int(scored.sum()))
    spans.sort(key=lambda s: (-s["share"], s["self_confidence"], s["clip"], s["first"]))
    # clip labels: the clip's score is its highest frame score
    cl = [c for c in clips if c.clip_smile in (0, 1) and np.isfinite(c.probs).any()]
    cy = np.array([c.clip_smile for c in cl], np.int8)
    cp = np.array([np.nanmax(c.probs) for c in cl])
    ct = thresholds(cy, cp)
    c_issue = label_issues(cy, cp, ct) if len(cl) else np.zeros(0, bool)
    ranked = []
    in_cl = {c.clip for c in cl}
    for k, c in enumerate(cl + [c for c in clips if c.clip not in in_cl]):
        n_issue, n_scored = per_clip[c.clip]
        label_issue = bool(k < len(cl) and c_issue[k])
        if not (n_issue or label_issue):
            continue
        ranked.append({"clip": c.clip, "issues": n_issue, "scored": n_scored,
                       "share": round(n_issue / n_scored, 4) if n_scored else 0.0,
                       "clip_smile": c.clip_smile, "clip_label_issue": label_issue,
                       "clip_prob": round(float(cp[k]), 4) if k < len(cl) else None})
    ranked.sort(key=lambda r: (not r["clip_label_issue"], -r["share"], r["clip"]))
    return {"thresholds": {"non_smile": _finite(t[0]), "smile": _finite(t[1]),
                           "clip_non_smile": _finite(ct[0]), "clip_smile": _finite(ct[1])},
            "frames": {"scored": int(len(y)), "issues": int(issues_all.sum())},
            "spans": spans[:limit], "clips": ranked[:limit]}


def _finite(v: float) -> float | None:
    return round(float(v), 4) if np.isfinite(v) else None
