"""Evaluation report files: PNG plots (ROC, PR, confusion, reliability) and a small HTML page.

Takes the dict `utjima.evaluate` builds (one entry per evaluated source) and writes
everything next to `report.json`. matplotlib runs headless (Agg).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_binary(name: str, y: np.ndarray, p: np.ndarray, threshold: float, out: Path) -> list[str]:
    from utjima.metrics import ece, pr_curve, roc_curve

    plt = _plt()
    files = []
    fpr, tpr, _ = roc_curve(y, p)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr, lw=2)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {name}")
    files.append(_save(fig, out / f"{name}_roc.png"))

    prec, rec = pr_curve(y, p)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(rec, prec, lw=2)
    ax.set(xlabel="recall", ylabel="precision", title=f"PR: {name}", ylim=(0, 1.02))
    files.append(_save(fig, out / f"{name}_pr.png"))

    _, table = ece(y, p)
    fig, ax = plt.subplots(figsize=(4, 4))
    conf = [r["confidence"] for r in table]
    acc = [r["accuracy"] for r in table]
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.plot(conf, acc, "o-")
    ax.set(xlabel="predicted smile_prob", ylabel="observed smile rate",
           title=f"reliability: {name}")
    files.append(_save(fig, out / f"{name}_reliability.png"))

    pred = p >= threshold
    cm = np.array([[(~pred & ~y).sum(), (pred & ~y).sum()], [(~pred & y).sum(), (pred & y).sum()]])
    files.append(plot_confusion(name, cm, ["no smile", "smile"], out))
    return files


def plot_confusion(name: str, cm: np.ndarray, classes: list[str], out: Path) -> str:
    plt = _plt()
    cm = np.asarray(cm)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * k, 1.0 + 0.7 * k))
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=f"confusion: {name}")
    return _save(fig, out / f"{name}_confusion.png")


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)
    return path.name


def _fmt(v, ci=None) -> str:
    s = f"{v:.4f}" if isinstance(v, float) else html.escape(str(v))
    if ci and all(np.isfinite(ci)):
        s += f" <small>[{ci[0]:.4f}, {ci[1]:.4f}]</small>"
    return s


def write_html(report: dict, out: Path) -> Path:
    rows = []
    for name, r in report["sources"].items():
        rows.append(f"<h2>{html.escape(name)}</h2>"
                    f"<p>{html.escape(r.get('description', ''))} n={r.get('n')}</p>")
        if "smile" in r:
            s = r["smile"]
            ci = s.get("ci95", {})
            keys = ("accuracy", "precision", "recall", "f1", "auc", "ece", "threshold")
            rows.append("<table><tr><th>metric</th><th>value [95% CI]</th></tr>"
                        + "".join(f"<tr><td>{k}</td><td>{_fmt(s[k], ci.get(k))}</td></tr>"
                                  for k in keys if k in s)
                        + f"<tr><td>confusion</td><td>{html.escape(json.dumps(s['confusion']))}"
                        "</td></tr></table>")
        if "emotion" in r:
            e = r["emotion"]
            rows.append(f"<p>7-class accuracy {_fmt(e['accuracy'], e['ci95']['accuracy'])}, "
                        f"balanced {e['balanced_accuracy']:.4f}</p>")
        rows.append("".join(f'<img src="{html.escape(f)}" width="320">'
                            for f in r.get("plots", [])))
    thr = report.get("thresholds")
    thr_html = ""
    if thr:
        thr_html = (f"<h2>thresholds (validation: {html.escape(str(thr.get('selected_on')))})</h2>"
                    f"<pre>{html.escape(json.dumps(thr, indent=2))}</pre>")
    model = html.escape(str(report.get("model")))
    page = f"""<!doctype html><meta charset="utf-8"><title>utjima evaluation</title>
<style>body{{font:14px system-ui;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}img{{margin:4px}}</style>
<h1>utjima evaluation</h1><p>model: {model}</p>{thr_html}{''.join(rows)}"""
    path = out / "report.html"
    path.write_text(page)
    return path
