"""The review sidecar: label changes made in `utjima review`, kept beside a clip folder's
`manifest.json` (which is never rewritten), with an audit log of who changed what, when.

`DIR/review.json` (docs/review.md):

    {"format": "utjima.review/1",
     "clips": {"p01-...-05-big_smile": {
                 "edits": [{"start_ms": 1000.0, "end_ms": 2400.0, "smile": 1, "emotion": "happy"}],
                 "clip_smile": 0,        # optional: overrides the manifest's (-1: unknown)
                 "excluded": true,       # optional: left out of training and evaluation
                 "flag": "blurry"}},     # optional: marked for another look ("" = no note)
     "log": [{"n": 1, "at": "2026-11-30T10:02:11Z", "who": "mina", "clip": "p01-...",
              "action": "relabel", "start_ms": 1000.0, "end_ms": 2400.0,
              "old": [{"start_ms": 1000.0, "end_ms": 1800.0, "smile": 0, "emotion": null}, ...],
              "new": {"smile": 1, "emotion": "happy"}}, ...]}

Edits apply in order on top of the manifest's per-frame labels; each sets the frames with
`start_ms <= t < end_ms` (the keys it has: `smile` 1/0/null, `emotion` a name or null), and
later edits win, as later segments do in a manifest. `apply` turns a `ClipSet` into the one
every reader should see (`utjima.data.clips.load` calls it): relabelled frames, overridden
clip labels, excluded clips left out.

Actions (`ACTIONS`): relabel, clip_label, exclude, include, flag, unflag, and undo, which
reverts the clip's latest action that is not yet undone: the log keeps both, and the state
is rebuilt by replaying the log (`replay`). Only `utjima review` writes the file; `read`
refuses a file that is not this format with one message and never changes it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from utjima import EMOTIONS
from utjima.data.cache import DatasetError
from utjima.utils import atomic_write

FORMAT = "utjima.review/1"
SIDECAR = "review.json"
ACTIONS = ("relabel", "clip_label", "exclude", "include", "flag", "unflag", "undo")
MAX_NAME = 64  # a reviewer's name, characters
MAX_NOTE = 500  # a flag's note, characters


class SidecarError(DatasetError):
    """review.json is not what `utjima review` writes, or a change to it is not valid."""


class Labelled(Protocol):
    """What the sidecar needs of a clip (a `Clip` or a `ClipRef`)."""

    id: str
    times_ms: np.ndarray
    smile: np.ndarray
    emotion_label: np.ndarray
    clip_smile: int


@dataclass
class ClipReview:
    """The reviewed state of one clip."""

    edits: list[dict] = field(default_factory=list)  # {start_ms, end_ms, smile?, emotion?}
    clip_smile: int | None = None  # None: the manifest's; else 1 / 0 / -1 (unknown)
    excluded: bool = False
    flag: str | None = None  # None: not flagged; else the note ("" for none)

    def is_empty(self) -> bool:
        return not self.edits and self.clip_smile is None and not self.excluded \
            and self.flag is None

    def to_json(self) -> dict:
        out: dict[str, Any] = {"edits": self.edits} if self.edits else {}
        if self.clip_smile is not None:
            out["clip_smile"] = self.clip_smile
        if self.excluded:
            out["excluded"] = True
        if self.flag is not None:
            out["flag"] = self.flag
        return out


@dataclass
class Review:
    """review.json in memory: per-clip state and the audit log."""

    clips: dict[str, ClipReview] = field(default_factory=dict)
    log: list[dict] = field(default_factory=list)

    def of(self, clip_id: str) -> ClipReview:
        return self.clips.get(clip_id) or ClipReview()

    def to_json(self) -> dict:
        return {"format": FORMAT,
                "clips": {k: v.to_json() for k, v in sorted(self.clips.items())
                          if not v.is_empty()},
                "log": self.log}

    # --- changes: each appends one log entry and returns it ------------------------------

    def _entry(self, clip_id: str, action: str, who: str, at: str, **rest) -> dict:
        entry = {"n": (self.log[-1]["n"] + 1) if self.log else 1, "at": at,
                 "who": check_name(who), "clip": clip_id, "action": action, **rest}
        self.log.append(entry)
        return entry

    def relabel(self, clip: Labelled, start_ms: float, end_ms: float, who: str, at: str,
                **labels) -> dict:
        """Set `smile` and/or `emotion` (keyword arguments; None = unknown) of the frames of
        `clip` in [start_ms, end_ms)."""
        who = check_name(who)  # before any change, so a refused change leaves no trace
        edit = check_edit({"start_ms": start_ms, "end_ms": end_ms, **labels},
                          f"relabel of {clip.id!r}")
        smile, emotion, _ = labels_of(clip, self.of(clip.id))
        inside = _inside(clip.times_ms, edit["start_ms"], edit["end_ms"])
        if not inside.any():
            raise SidecarError(f"relabel of {clip.id!r}: no frame in "
                               f"[{edit['start_ms']}, {edit['end_ms']}) ms")
        old = runs(clip.times_ms, smile, emotion, inside, edit["end_ms"])
        self.clips.setdefault(clip.id, ClipReview()).edits.append(edit)
        new = {k: v for k, v in edit.items() if k in ("smile", "emotion")}
        return self._entry(clip.id, "relabel", who, at, start_ms=edit["start_ms"],
                           end_ms=edit["end_ms"], old=old, new=new)

    def set_clip_label(self, clip: Labelled, value: int | None, who: str, at: str) -> dict:
        """The clip-level label (did the player laugh in this clip): 1, 0 or None (unknown)."""
        who, value = check_name(who), _smile(value, f"clip label of {clip.id!r}")
        old = labels_of(clip, self.of(clip.id))[2]
        self.clips.setdefault(clip.id, ClipReview()).clip_smile = -1 if value is None else value
        return self._entry(clip.id, "clip_label", who, at, old=_public(old), new=_public(value))

    def set_excluded(self, clip: Labelled, excluded: bool, who: str, at: str) -> dict:
        who = check_name(who)
        cr = self.clips.setdefault(clip.id, ClipReview())
        old, cr.excluded = cr.excluded, bool(excluded)
        return self._entry(clip.id, "exclude" if excluded else "include", who, at, old=old,
                           new=cr.excluded)

    def set_flag(self, clip: Labelled, note: str | None, who: str, at: str) -> dict:
        """Flag with `note` ("" for none), or unflag with None."""
        who = check_name(who)
        if note is not None:
            note = check_note(note)
        cr = self.clips.setdefault(clip.id, ClipReview())
        old, cr.flag = cr.flag, note
        return self._entry(clip.id, "flag" if note is not None else "unflag", who, at, old=old,
                           new=note)

    def undo(self, clip: Labelled, who: str, at: str) -> dict:
        """Revert the clip's latest action that is not undone yet."""
        who = check_name(who)
        undone = {e["undoes"] for e in self.log if e["action"] == "undo"}
        todo = [e for e in self.log if e["clip"] == clip.id and e["action"] != "undo"
                and e["n"] not in undone]
        if not todo:
            raise SidecarError(f"{clip.id!r}: nothing to undo")
        last = todo[-1]
        before = self.of(clip.id)
        self.clips = replay(self.log, skip={last["n"]} | undone).clips
        after = self.of(clip.id)
        return self._entry(clip.id, "undo", who, at, undoes=last["n"],
                           old=summary(clip, before), new=summary(clip, after))


# --- reading labels ----------------------------------------------------------------------

def _inside(times_ms: np.ndarray, start_ms: float, end_ms: float) -> np.ndarray:
    return (times_ms >= start_ms) & (times_ms < end_ms)  # [start, end)


def labels_of(clip: Labelled, cr: ClipReview) -> tuple[np.ndarray, np.ndarray, int]:
    """(smile, emotion_label, clip_smile) of `clip` after its review `cr`."""
    smile, emotion = clip.smile.copy(), clip.emotion_label.copy()
    for e in cr.edits:
        inside = _inside(clip.times_ms, e["start_ms"], e["end_ms"])
        if "smile" in e:
            smile[inside] = -1 if e["smile"] is None else e["smile"]
        if "emotion" in e:
            emotion[inside] = -1 if e["emotion"] is None else EMOTIONS.index(e["emotion"])
    clip_smile = clip.clip_smile if cr.clip_smile is None else cr.clip_smile
    return smile, emotion, clip_smile


def _public(v: int) -> int | None:
    return None if v is None or v < 0 else int(v)


def runs(times_ms: np.ndarray, smile: np.ndarray, emotion: np.ndarray,
         mask: np.ndarray | None = None, end_ms: float | None = None) -> list[dict]:
    """Maximal runs of consecutive frames with equal (smile, emotion) among the frames in
    `mask` (default: all), as [{start_ms, end_ms, smile, emotion}] (smile None = unknown). A
    run ends at the next frame's time, the clip's last one a frame interval after it; no run
    ends after `end_ms`."""
    n = len(times_ms)
    keep = np.ones(n, bool) if mask is None else mask
    step = float(np.median(np.diff(times_ms))) if n > 1 else 1.0
    out: list[dict] = []
    prev = None
    for i in range(n):
        if not keep[i]:
            prev = None
            continue
        label = (_public(int(smile[i])), None if emotion[i] < 0 else EMOTIONS[emotion[i]])
        if label == prev:
            out[-1]["last"] = i
        else:
            out.append({"start_ms": round(float(times_ms[i]), 3), "end_ms": 0.0,
                        "smile": label[0], "emotion": label[1], "last": i})
        prev = label
    for r in out:
        j = r.pop("last")
        end = float(times_ms[j + 1]) if j + 1 < n else float(times_ms[j]) + step
        r["end_ms"] = round(end if end_ms is None else min(end, end_ms), 3)
    return out


def summary(clip: Labelled, cr: ClipReview) -> dict:
    """A clip's reviewed state in a few fields (the undo log's old -> new)."""
    smile, emotion, clip_smile = labels_of(clip, cr)
    return {"edits": len(cr.edits), "clip_smile": _public(clip_smile), "excluded": cr.excluded,
            "flag": cr.flag,
            "smile_frames": int((smile == 1).sum()), "non_smile_frames": int((smile == 0).sum())}


def replay(log: Sequence[dict], skip: set[int] = frozenset()) -> Review:
    """The state the log's actions give, leaving out the entries numbered in `skip`."""
    state: dict[str, ClipReview] = {}
    for e in log:
        if e["n"] in skip or e["action"] == "undo":
            continue
        cr = state.setdefault(e["clip"], ClipReview())
        a = e["action"]
        if a == "relabel":
            cr.edits.append({"start_ms": e["start_ms"], "end_ms": e["end_ms"], **e["new"]})
        elif a == "clip_label":
            cr.clip_smile = -1 if e["new"] is None else e["new"]
        elif a in ("exclude", "include"):
            cr.excluded = a == "exclude"
        else:  # flag / unflag
            cr.flag = e["new"] if a == "flag" else None
    return Review(state, list(log))


# --- checking ----------------------------------------------------------------------------

def check_name(who: Any) -> str:
    """A reviewer's name: 1..MAX_NAME printable characters."""
    if not isinstance(who, str) or not who.strip():
        raise SidecarError("a reviewer name is needed (utjima review --reviewer NAME, or type "
                           "it on the page)")
    who = who.strip()
    if len(who) > MAX_NAME or not who.isprintable():
        raise SidecarError(f"a reviewer name is 1 to {MAX_NAME} printable characters")
    return who


def check_note(note: Any) -> str:
    if not isinstance(note, str) or len(note) > MAX_NOTE or not note.replace("\n", " ") \
            .isprintable():
        raise SidecarError(f"a flag note is text of at most {MAX_NOTE} characters")
    return note.strip()


def _smile(v: Any, where: str) -> int | None:
    if v is None or (v in (0, 1, -1) and not isinstance(v, bool)):
        return None if v is None or v == -1 else int(v)
    raise SidecarError(f"{where}: smile must be 1, 0 or null, got {v!r}")


def _ms(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SidecarError(f"{where}: times must be finite numbers (ms), got {v!r}")
    return round(float(v), 3)


def check_edit(edit: Any, where: str) -> dict:
    """{start_ms, end_ms, smile?, emotion?} with valid values, normalised."""
    if not isinstance(edit, dict) or not {"start_ms", "end_ms"} <= set(edit) \
            or not set(edit) <= {"start_ms", "end_ms", "smile", "emotion"}:
        raise SidecarError(f"{where}: an edit is {{start_ms, end_ms, smile?, emotion?}}, got "
                           f"{edit!r}")
    out: dict[str, Any] = {"start_ms": _ms(edit["start_ms"], where),
                           "end_ms": _ms(edit["end_ms"], where)}
    if out["end_ms"] <= out["start_ms"]:
        raise SidecarError(f"{where}: end_ms must be after start_ms")
    if "smile" not in edit and "emotion" not in edit:
        raise SidecarError(f"{where}: an edit sets smile and/or emotion")
    if "smile" in edit:
        out["smile"] = _smile(edit["smile"], where)
    if "emotion" in edit:
        e = edit["emotion"]
        if e is not None and e not in EMOTIONS:
            raise SidecarError(f"{where}: emotion {e!r} is not one of {list(EMOTIONS)} (or null)")
        out["emotion"] = e
    return out


def _check_log(log: Any, path: Path) -> list[dict]:
    if not isinstance(log, list):
        raise SidecarError(f"{path}: 'log' must be a list")
    need = {"n", "at", "who", "clip", "action"}
    for k, e in enumerate(log):
        where = f"{path}: log[{k}]"
        if not isinstance(e, dict) or not need <= set(e):
            raise SidecarError(f"{where} needs {sorted(need)}")
        if e["action"] not in ACTIONS:
            raise SidecarError(f"{where}: action {e['action']!r} is not one of {list(ACTIONS)}")
        if not isinstance(e["n"], int) or (k and e["n"] <= log[k - 1]["n"]):
            raise SidecarError(f"{where}: entries are numbered 1, 2, ... in order")
        if e["action"] == "relabel":
            check_edit({"start_ms": e.get("start_ms"), "end_ms": e.get("end_ms"),
                        **(e.get("new") or {})}, where)
    return log


def _check_clip(cid: str, d: Any, path: Path) -> ClipReview:
    where = f"{path}: clips[{cid!r}]"
    if not isinstance(d, dict) or not set(d) <= {"edits", "clip_smile", "excluded", "flag"}:
        raise SidecarError(f"{where} must be an object with edits, clip_smile, excluded, flag")
    edits = d.get("edits", [])
    if not isinstance(edits, list):
        raise SidecarError(f"{where}: 'edits' must be a list")
    cr = ClipReview(edits=[check_edit(e, f"{where} edits[{k}]") for k, e in enumerate(edits)])
    if "clip_smile" in d:
        v = _smile(d["clip_smile"], f"{where} clip_smile")
        cr.clip_smile = -1 if v is None else v
    if not isinstance(d.get("excluded", False), bool):
        raise SidecarError(f"{where}: 'excluded' must be true or false")
    cr.excluded = d.get("excluded", False)
    if "flag" in d:
        cr.flag = check_note(d["flag"]) if d["flag"] is not None else None
    return cr


def read(folder: str | Path) -> Review | None:
    """`folder`/review.json, checked; None when there is none."""
    path = Path(folder) / SIDECAR
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SidecarError(f"{path}: not valid JSON ({e}); it holds the labels changed in "
                           "`utjima review`: repair or move it, nothing was changed") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise SidecarError(f"{path}: format is {got!r}, expected {FORMAT!r}")
    extra = set(data) - {"format", "clips", "log"}
    if extra:
        raise SidecarError(f"{path}: unknown keys {sorted(extra)}")
    clips = data.get("clips", {})
    if not isinstance(clips, dict):
        raise SidecarError(f"{path}: 'clips' must be an object keyed by clip id")
    return Review({cid: _check_clip(cid, d, path) for cid, d in clips.items()},
                  _check_log(data.get("log", []), path))


def write(folder: str | Path, review: Review) -> Path:
    """Replace `folder`/review.json in one rename (one log entry a line, for readable diffs)."""
    path = Path(folder) / SIDECAR
    data = review.to_json()
    log = ",\n  ".join(json.dumps(e, ensure_ascii=False) for e in data["log"])
    log = f"\n  {log}\n " if log else ""
    clips = json.dumps(data["clips"], indent=1, ensure_ascii=False).replace("\n", "\n ")
    text = f'{{\n "format": {json.dumps(FORMAT)},\n "clips": {clips},\n "log": [{log}]\n}}\n'
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# --- applying ----------------------------------------------------------------------------

def apply(cs, review: Review | None):
    """The `ClipSet` with the review applied (a new one; `cs` is unchanged): relabelled
    frames and clip labels, excluded clips left out. `info["review"]` says what changed."""
    if review is None:
        return cs
    from utjima.data.clips import Clip, ClipSet

    kept, changed, excluded = [], [], []
    for c in cs.clips:
        cr = review.of(c.id)
        if cr.excluded:
            excluded.append(c.id)
            continue
        if cr.edits or cr.clip_smile is not None:
            smile, emotion, clip_smile = labels_of(c, cr)
            c = Clip(c.id, c.frames, c.times_ms, smile, emotion, clip_smile, c.subject, c.split)
            changed.append(c.id)
        kept.append(c)
    ids = {c.id for c in cs.clips}
    info = {**cs.info, "review": {
        "relabelled": changed, "excluded": excluded,
        "flagged": sorted(k for k, v in review.clips.items() if v.flag is not None and k in ids),
        "unknown_clips": sorted(set(review.clips) - ids), "log_entries": len(review.log)}}
    return ClipSet(cs.source, kept, cs.crop, cs.test_only, info)
