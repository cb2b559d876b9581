"""Would the emotion head help the judge? Smile scores gated by P(happy), on validation only.

For each way of combining `smile_prob` with the emotion head (P(happy) alone, geometric mean,
product, minimum, smile x (1 - P(laugh-like))): the pooled ROC AUC on SMILEsmileD val + FER+
Valid, and, at the threshold where 3 % of FER+ Valid laugh-like faces (majority sad, fear,
surprise, disgust, angry) score as smiling, the share of FER+ Valid happy faces still scored as
smiling and of neutral ones wrongly so. Product path: BlazeFace + crop policy + ONNX encoder
and step (still = one frame repeated). A human table, then one JSON line last.

    .venv/bin/python benchmarks/bench_gate.py [--model DIR]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from utjima import EMOTIONS, LAUGH_LIKE


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


HAPPY = EMOTIONS.index("happy")
LL = [EMOTIONS.index(e) for e in LAUGH_LIKE]
RULES = {
    "smile_prob (the judge today)": lambda s, e: s,
    "P(happy)": lambda s, e: e[:, HAPPY],
    "geometric mean": lambda s, e: 1 / (1 + np.exp(-(_logit(s) + _logit(e[:, HAPPY])) / 2)),
    "product": lambda s, e: s * e[:, HAPPY],
    "minimum": lambda s, e: np.minimum(s, e[:, HAPPY]),
    "smile x (1 - P(laugh-like))": lambda s, e: s * (1 - e[:, LL].sum(1)),
}


def main(argv=None) -> dict:
    from utjima.data import load_canonical
    from utjima.metrics import capped_fpr_threshold, roc_auc
    from utjima.runtime import SmileModel
    from utjima.utils import to_nchw

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    args = ap.parse_args(argv)
    model = SmileModel(args.model)
    scored = {}
    for spec in ("smilesmiled:val", "ferplus:valid"):
        ds = load_canonical(
            spec,
            size=model.contract.size,
            channels=model.contract.channels,
            training=False,
            progress=False,
        )
        x = to_nchw(ds.images)
        parts = [model.score_crops(x[i : i + 256]) for i in range(0, len(x), 256)]
        scored[spec] = (
            ds,
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
        )
    fer, fs_s, fer_e = scored["ferplus:valid"]
    ll = np.isin(fer.emotion_label, LL) & (fer.smile == 0)
    print(f"model: {model.contract.dir}; validation only (SMILEsmileD val + FER+ Valid)")
    print("| combination | pooled smile AUC | FER+ Valid happy scored smiling "
          "| neutral scored smiling |")
    print("|---|---|---|---|")
    out = {}
    for name, f in RULES.items():
        ys, ps = [], []
        for ds, s, e in scored.values():
            m = ds.smile >= 0
            ys.append(ds.smile[m] == 1)
            ps.append(f(s, e)[m])
        c = f(fs_s, fer_e)
        t = capped_fpr_threshold(c[ll], 0.03)
        r = {
            "auc": roc_auc(np.concatenate(ys), np.concatenate(ps)),
            "threshold_at_3pct": t,
            "happy_recall": float((c[fer.emotion_label == HAPPY] >= t).mean()),
            "neutral_fpr": float((c[fer.emotion_label == EMOTIONS.index("neutral")] >= t).mean()),
        }
        out[name] = r
        print(f"| {name} | {r['auc']:.4f} | {r['happy_recall'] * 100:.1f} % "
              f"| {r['neutral_fpr'] * 100:.1f} % |")
    print("(the last two columns at the threshold where 3 % of FER+ Valid laugh-like faces "
          "score as smiling)")
    print(
        json.dumps({"model": str(model.contract.dir), "laugh_like_n": int(ll.sum()), "rules": out})
    )
    return out


if __name__ == "__main__":
    main()
