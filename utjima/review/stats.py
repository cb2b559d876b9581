"""Dataset statistics for `utjima review`: clips, frames and labels per participant, lighting,
prompt and label, with the model's agreement where it has scored them. Pure numpy.

Frames of excluded clips are not counted (training and evaluation leave them out); the
`excluded` column says how many clips a group lost. Agreement = the share of labelled frames
with a face where the model's decision at the threshold equals the label.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from utjima import EMOTIONS


@dataclass(frozen=True, eq=False)
class Row:
    """One clip, as reviewed."""

    clip: str
    subject: str | None
    prompt: str | None
    lighting: str | None
    times_ms: np.ndarray  # (N,)
    smile: np.ndarray  # (N,) 1 / 0 / -1
    emotion: np.ndarray  # (N,) index into EMOTIONS, -1 unknown
    clip_smile: int
    excluded: bool
    flagged: bool
    edited: bool
    probs: np.ndarray | None  # (N,) NaN = no face; None = not scored yet


def _duration_s(t: np.ndarray) -> float:
    step = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    return (float(t[-1] - t[0]) + step) / 1000 if len(t) else 0.0


def _agg(rows: Sequence[Row], threshold: float) -> dict:
    used = [r for r in rows if not r.excluded]
    smile = np.concatenate([r.smile for r in used]) if used else np.zeros(0, np.int8)
    scored = [r for r in used if r.probs is not None]
    y = np.concatenate([r.smile for r in scored]) if scored else np.zeros(0, np.int8)
    p = np.concatenate([r.probs for r in scored]) if scored else np.zeros(0)
    face = np.isfinite(p)
    ok = (y >= 0) & face
    agree = (p[ok] >= threshold) == (y[ok] == 1)
    return {
        "clips": len(rows), "excluded": sum(r.excluded for r in rows),
        "flagged": sum(r.flagged for r in rows), "edited": sum(r.edited for r in rows),
        "frames": int(len(smile)), "seconds": round(sum(_duration_s(r.times_ms) for r in used), 1),
        "smile": int((smile == 1).sum()), "non_smile": int((smile == 0).sum()),
        "unknown": int((smile < 0).sum()),
        "laughed_clips": sum(r.clip_smile == 1 for r in used),
        "face_share": round(float(face.mean()), 4) if len(p) else None,
        "agreement": round(float(agree.mean()), 4) if ok.any() else None,
        "agreement_frames": int(ok.sum()),
    }


def _by(rows: Sequence[Row], key: Callable[[Row], str | None], threshold: float) -> list[dict]:
    groups: dict[str | None, list[Row]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    order = sorted(groups, key=lambda k: (k is None, str(k)))
    return [{"key": k, **_agg(groups[k], threshold)} for k in order]


def _clip_label(r: Row) -> str:
    return {1: "laughed", 0: "did_not_laugh"}.get(r.clip_smile, "unknown")


def summarise(rows: Sequence[Row], threshold: float) -> dict:
    """{"overall", "by": {participant, lighting, prompt, clip_label: [group rows]},
    "emotion": frames per emotion label, "threshold"}."""
    used = [r for r in rows if not r.excluded]
    emo = np.concatenate([r.emotion for r in used]) if used else np.zeros(0, np.int8)
    return {
        "threshold": threshold,
        "overall": {**_agg(rows, threshold),
                    "participants": len({r.subject for r in rows if r.subject is not None})},
        "by": {"participant": _by(rows, lambda r: r.subject, threshold),
               "lighting": _by(rows, lambda r: r.lighting, threshold),
               "prompt": _by(rows, lambda r: r.prompt, threshold),
               "clip_label": _by(rows, _clip_label, threshold)},
        "emotion": [{"key": name, "frames": int((emo == i).sum())}
                    for i, name in enumerate(EMOTIONS)] +
                   [{"key": None, "frames": int((emo < 0).sum())}],
    }


def table(groups: Sequence[dict], title: str) -> list[str]:
    """A group list as aligned text lines (`utjima review --stats`)."""
    cols = ("clips", "frames", "seconds", "smile", "non_smile", "unknown", "excluded",
            "flagged", "edited", "agreement")
    width = max([len(title)] + [len(str(g["key"] or "-")) for g in groups])
    lines = [f"{title:<{width}}  " + "  ".join(f"{c:>9}" for c in cols)]
    for g in groups:
        cells = []
        for c in cols:
            v = g.get(c)
            cells.append(f"{'-' if v is None else (f'{v:.1%}' if c == 'agreement' else v):>9}")
        lines.append(f"{str(g['key'] or '-'):<{width}}  " + "  ".join(cells))
    return lines
