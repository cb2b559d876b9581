"""Classification metrics in plain numpy: the seed's set plus calibration and intervals.

Binary (smile): accuracy, precision, recall, F1, ROC AUC, confusion matrix, expected
calibration error; thresholds by Youden's J and best F1; 95 % bootstrap intervals.
Multi-class (emotion): accuracy, per-class recall, confusion matrix.
"""

from __future__ import annotations

import numpy as np


def roc_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), thresholds descending; a point per distinct score."""
    y = np.asarray(y, dtype=bool)
    order = np.argsort(-p, kind="mergesort")
    p, y = p[order], y[order]
    distinct = np.r_[np.flatnonzero(np.diff(p)), len(p) - 1]
    tps = np.cumsum(y)[distinct]
    fps = (distinct + 1) - tps
    P, N = max(y.sum(), 1), max((~y).sum(), 1)
    return np.r_[0.0, fps / N], np.r_[0.0, tps / P], np.r_[np.inf, p[distinct]]


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Mann-Whitney U with tie correction; equals the trapezoid area under roc_curve."""
    y = np.asarray(y, dtype=bool)
    n1, n0 = y.sum(), (~y).sum()
    if n1 == 0 or n0 == 0:
        return float("nan")
    # average ranks over ties: a value's rank is the mean of the positions it spans
    _, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse.reshape(-1)]
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def pr_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(precision, recall) at every distinct threshold, recall ascending."""
    y = np.asarray(y, dtype=bool)
    order = np.argsort(-p, kind="mergesort")
    p, y = p[order], y[order]
    distinct = np.r_[np.flatnonzero(np.diff(p)), len(p) - 1]
    tps = np.cumsum(y)[distinct]
    prec = tps / (distinct + 1)
    rec = tps / max(y.sum(), 1)
    return np.r_[1.0, prec], np.r_[0.0, rec]


def binary_at(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    y = np.asarray(y, dtype=bool)
    pred = p >= threshold
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    fn = int((~pred & y).sum())
    tn = int((~pred & ~y).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return {
        "accuracy": (tp + tn) / max(len(y), 1),
        "precision": prec,
        "recall": rec,
        "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }


def ece(y: np.ndarray, p: np.ndarray, bins: int = 15) -> tuple[float, list[dict]]:
    """Expected calibration error (equal-width bins) and the reliability table."""
    y = np.asarray(y, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    table, err = [], 0.0
    for b in range(bins):
        m = idx == b
        if not m.any():
            continue
        conf, acc = float(p[m].mean()), float(y[m].mean())
        err += m.mean() * abs(conf - acc)
        table.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": int(m.sum()),
                      "confidence": conf, "accuracy": acc})
    return float(err), table


def select_thresholds(y: np.ndarray, p: np.ndarray) -> dict:
    """Youden's J (max TPR - FPR) and best-F1 thresholds, for validation data only."""
    fpr, tpr, thr = roc_curve(y, p)
    j = tpr - fpr
    k = int(np.argmax(j[1:]) + 1)  # skip the (0, 0) point whose threshold is +inf
    youden = float(thr[k])
    cands = np.unique(p)
    if len(cands) > 2000:
        cands = np.quantile(p, np.linspace(0, 1, 2001))
    f1s = [binary_at(y, p, t)["f1"] for t in cands]
    best = int(np.argmax(f1s))
    return {"youden": youden, "youden_j": float(j[k]), "best_f1": float(cands[best]),
            "best_f1_value": float(f1s[best])}


def capped_fpr_threshold(p_negative: np.ndarray, max_fpr: float) -> float:
    """The lowest threshold at which at most `max_fpr` of these negatives score >= it."""
    s = np.sort(np.asarray(p_negative))[::-1]  # highest first, in the scores' own precision
    k = int(np.floor(max_fpr * len(s)))  # this many may reach the threshold
    if k >= len(s):
        return 0.0
    # just above the (k+1)-th highest score, representable in the scores' dtype (float32 scores
    # compare against a Python float in float32)
    return float(np.nextafter(s[k], s.dtype.type(np.inf)))


def bootstrap_ci(fn, arrays: tuple[np.ndarray, ...], n: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> tuple[float, float]:
    """Percentile interval of fn(*resampled arrays) over n resamples of the rows."""
    if n <= 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    m = len(arrays[0])
    vals = []
    for _ in range(n):
        i = rng.integers(0, m, m)
        v = fn(*(a[i] for a in arrays))
        if np.isfinite(v):
            vals.append(v)
    if not vals:
        return float("nan"), float("nan")
    lo, hi = np.quantile(vals, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def binary_report(y: np.ndarray, p: np.ndarray, threshold: float, n_boot: int = 1000) -> dict:
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=np.float64)
    r = binary_at(y, p, threshold)
    r["threshold"] = float(threshold)
    r["auc"] = roc_auc(y, p)
    r["ece"], r["reliability"] = ece(y, p)
    r["n"], r["n_pos"] = int(len(y)), int(y.sum())
    r["ci95"] = {
        "accuracy": bootstrap_ci(lambda a, b: float(((b >= threshold) == a).mean()),
                                 (y, p), n_boot),
        "precision": bootstrap_ci(lambda a, b: binary_at(a, b, threshold)["precision"], (y, p),
                                  n_boot),
        "recall": bootstrap_ci(lambda a, b: binary_at(a, b, threshold)["recall"], (y, p), n_boot),
        "f1": bootstrap_ci(lambda a, b: binary_at(a, b, threshold)["f1"], (y, p), n_boot),
        "auc": bootstrap_ci(roc_auc, (y, p), n_boot),
    }
    return r


def multiclass_report(labels: np.ndarray, probs: np.ndarray, classes: list[str],
                      n_boot: int = 1000) -> dict:
    labels = np.asarray(labels)
    pred = probs.argmax(1)
    k = len(classes)
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (labels, pred), 1)
    recall = {c: float(cm[i, i] / cm[i].sum()) if cm[i].sum() else float("nan")
              for i, c in enumerate(classes)}
    per_class = {}
    for i, c in enumerate(classes):
        prec = float(cm[i, i] / cm[:, i].sum()) if cm[:, i].sum() else float("nan")
        f1 = (2 * prec * recall[c] / (prec + recall[c])
              if np.isfinite(prec) and np.isfinite(recall[c]) and prec + recall[c] else 0.0)
        per_class[c] = {"precision": prec, "recall": recall[c], "f1": f1,
                        "support": int(cm[i].sum())}
    return {
        "accuracy": float((pred == labels).mean()),
        "ci95": {"accuracy": bootstrap_ci(lambda a, b: float((a == b).mean()),
                                          (labels, pred), n_boot)},
        "per_class_recall": recall,
        "balanced_accuracy": float(np.nanmean(list(recall.values()))),
        "per_class": per_class,
        "macro_f1": float(np.mean([r["f1"] for r in per_class.values() if r["support"]])),
        "confusion": cm.tolist(),
        "classes": list(classes),
        "n": int(len(labels)),
    }


# --- paired comparisons and grouped resampling (utjima.study) ---------------------------

def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for paired right/wrong outcomes: `b` items only the
    first model got right, `c` only the second. Under no difference each of the n = b + c
    discordant items goes either way with probability 1/2, so
    p = min(1, 2 * P(X <= min(b, c))), X ~ Binomial(n, 1/2); n = 0 gives 1."""
    from math import comb

    if b < 0 or c < 0:
        raise ValueError(f"counts must be >= 0, got b={b}, c={c}")
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(k + 1)) / 2**n
    return float(min(1.0, 2 * tail))


def cluster_resamples(n_groups: int, n: int = 1000, seed: int = 0) -> np.ndarray:
    """(n, n_groups) counts: how often each group (a participant) is drawn in each of `n`
    bootstrap resamples that draw n_groups whole groups with replacement. Weighting
    per-group sums by a row resamples groups, never single items: items of one group are
    not independent."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_groups, (n, n_groups))
    return np.stack([np.bincount(r, minlength=n_groups) for r in idx]).astype(np.float64)
