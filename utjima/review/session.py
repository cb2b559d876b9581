"""A review session: a clip folder (or a research sequence set, read-only), its review
sidecar, the model's per-frame scores, and the changes a reviewer makes.

    s = ReviewSession.open("recordings/", reviewer="mina")
    s.start_scoring()                       # a background thread; s.progress() says how far
    s.clip_view("p01-...-05-big_smile")     # what the page draws
    s.relabel("p01-...", first=12, last=30, smile=1, who="mina")   # -> review.json

Clips are read lazily (times, labels and frame paths at open, pixels when shown or
scored), so a whole collection fits in memory. A clip the folder cannot give (a manifest
entry off the format, overlapping segments, no frames) is listed with its one error and
everything else stays reviewable. Changes go to `review.json` only (utjima.data.sidecar),
written atomically while `.review.lock` keeps a second `utjima review` out of the folder.

Scores: the bundled (or `--model`) ONNX model through `SmileModel.clip_probs` (the live path
for `crop: full` clips), cached per folder and model in the utjima cache; out-of-fold scores
(`--oof`, e.g. from `utjima study`) take their place where they cover a clip.
"""

from __future__ import annotations

import copy
import datetime as dt
import fcntl
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from utjima import EMOTIONS
from utjima.data import clips as clipfmt
from utjima.data import sidecar
from utjima.data.cache import DatasetError, cache_dir
from utjima.review import stats as review_stats
from utjima.review import suspects
from utjima.utils import UtjimaError, atomic_write

LOCK = ".review.lock"
OOF_FORMAT = "utjima.oof/1"
STUDY_FORMAT, STUDY_PREDICTIONS = "utjima.study-predictions/1", "predictions.json"  # utjima study
RESEARCH = ("ckplus",)  # clip sets from research archives: shown, never changed


class ReviewError(UtjimaError):
    """A request the session refuses; `status` is its HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class MemoryRef(clipfmt.ClipRef):
    """A clip whose frames are already in memory (research sets)."""

    frames: np.ndarray | None = None  # (N, H, W, 3) uint8

    def read_frames(self, indices=None) -> np.ndarray:
        return self.frames if indices is None else self.frames[list(indices)]


@dataclass
class Item:
    """One clip of the session: its reference, or the one error that keeps it out."""

    id: str
    ref: clipfmt.ClipRef | None
    entry: dict = field(default_factory=dict)  # manifest entry (capture fields) / research info
    error: str | None = None


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def overlapping_segments(entry: dict, where: str) -> str | None:
    """The first pair of segments that overlap, said in one line; None when none do."""
    segs = entry.get("segments") if isinstance(entry, dict) else None
    if not isinstance(segs, list):
        return None
    spans = []
    for k, s in enumerate(segs):
        try:
            spans.append((float(s["start_ms"]), float(s["end_ms"]), k))
        except (KeyError, TypeError, ValueError):
            return None  # scan_entry says what is wrong with it
    spans.sort()
    for (s0, e0, k0), (s1, e1, k1) in zip(spans, spans[1:], strict=False):
        if s1 < e0:
            a, b = sorted([(k0, s0, e0), (k1, s1, e1)])
            return (f"{where}: segments[{b[0]}] [{b[1]:g}, {b[2]:g}) ms overlaps "
                    f"segments[{a[0]}] [{a[1]:g}, {a[2]:g}) ms; review needs segments that do "
                    "not overlap (fix manifest.json)")
    return None


def _git_root(path: Path) -> Path | None:
    for p in [path, *path.parents]:
        if (p / ".git").exists():
            return p
    return None


class ReviewSession:
    """See the module docstring. `open` is the constructor to use."""

    def __init__(self, name: str, items: list[Item], crop: str, *, folder: Path | None,
                 review: sidecar.Review | None, read_only: bool, model_dir=None,
                 reviewer: str | None = None, oof: dict | None = None,
                 research_note: str = "", clock: Callable[[], str] = utc_now) -> None:
        self.name = name  # what the page's title shows: the folder or the spec
        self.items = {it.id: it for it in items}
        self.crop = crop
        self.folder = folder
        self.review = review or sidecar.Review()
        self.read_only = read_only
        self.reviewer = sidecar.check_name(reviewer) if reviewer else None
        self.research_note = research_note
        self.clock = clock
        self.model_dir = model_dir
        self._model = None
        self.oof = oof or {}
        self.scores: dict[str, np.ndarray] = {}
        self.score_source: dict[str, str] = {}
        self._lock = threading.RLock()
        self._frames_cache: tuple[str, np.ndarray] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lockfile = None
        self.scoring_error: str | None = None

    # --- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, source: str, *, model_dir=None, reviewer: str | None = None,
             oof: str | Path | None = None, lock: bool = True,
             clock: Callable[[], str] = utc_now) -> ReviewSession:
        """A clip folder (`DIR` or `clips:DIR`) or a research clip set (`ckplus[:SPLIT]`,
        read-only). Raises a one-line UtjimaError for a folder it cannot review."""
        oof_scores = read_oof(oof) if oof else None
        name, _, arg = str(source).partition(":")
        if name in RESEARCH:
            return cls._research(name, arg or "all", model_dir, oof_scores, clock)
        folder = Path(arg if name == "clips" and arg else source)
        if not folder.is_dir():
            raise ReviewError(f"{folder} is not a folder; review a clip folder (DIR with "
                              f"manifest.json) or a research set: {', '.join(RESEARCH)}")
        manifest = clipfmt.read_manifest(folder)
        review = sidecar.read(folder)  # a garbage sidecar: one error, the file untouched
        items: list[Item] = []
        seen: set[str] = set()
        for k, entry in enumerate(manifest.get("clips", [])):
            cid = str(entry.get("id", f"clips[{k}]")) if isinstance(entry, dict) else f"clips[{k}]"
            where = f"{folder / clipfmt.MANIFEST} clip {cid!r}"
            error = overlapping_segments(entry, where)
            ref = None
            if cid in seen:
                error, cid = f"{where}: the id is used twice", f"{cid}#{k}"
            if error is None:
                try:
                    ref = clipfmt.scan_entry(folder, entry, k)
                except DatasetError as e:
                    error = str(e)
            seen.add(cid)
            items.append(Item(cid, ref, entry if isinstance(entry, dict) else {}, error))
        s = cls(str(folder), items, manifest.get("crop", "face"), folder=folder, review=review,
                read_only=False, model_dir=model_dir, reviewer=reviewer, oof=oof_scores,
                clock=clock)
        if lock:
            s._take_lock()
        return s

    @classmethod
    def _research(cls, name: str, split: str, model_dir, oof, clock) -> ReviewSession:
        from utjima.data import load

        cs = load(f"{name}:{split}")
        emotion = cs.info.get("emotion", {})
        items = []
        for c in cs.clips:
            ref = MemoryRef(id=c.id, times_ms=c.times_ms, smile=c.smile,
                            emotion_label=c.emotion_label, clip_smile=c.clip_smile,
                            subject=c.subject, split=c.split,
                            entry={"prompt": emotion.get(c.id)}, frames=c.frames)
            items.append(Item(c.id, ref, ref.entry))
        note = (f"{cs.source}: a research set, shown read-only (its terms forbid copying the "
                "frames: nothing is written, contact sheets stay out of the repository)")
        return cls(cs.source, items, cs.crop, folder=None, review=None, read_only=True,
                   model_dir=model_dir, oof=oof, research_note=note, clock=clock)

    def _take_lock(self) -> None:
        assert self.folder is not None
        f = open(self.folder / LOCK, "a")  # noqa: SIM115 (held for the session's life)
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise ReviewError(f"{self.folder} is already open in another `utjima review`; "
                              "close that one first (one reviewer writes review.json at a "
                              "time)", 409) from None
        self._lockfile = f

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._lockfile is not None:
            self._lockfile.close()
            self._lockfile = None

    # --- the model and its scores --------------------------------------------------------

    @property
    def model(self):
        if self._model is None:
            from utjima.runtime import SmileModel

            self._model = SmileModel(self.model_dir)
        return self._model

    @property
    def threshold(self) -> float:
        return self.model.contract.smile_threshold

    def model_info(self) -> dict:
        c = self.model.contract
        trained = list(c.data.get("provenance", {}).get("train", []))
        name = self.name.split(":")[0]
        in_sample = any(t == self.name or t.split(":")[0] == name for t in trained) \
            if self.folder is None else any(t == f"clips:{self.folder}" for t in trained)
        return {"name": c.data.get("name", ""), "threshold": c.smile_threshold,
                "trained_on": trained, "in_sample": in_sample}

    def _cache_path(self) -> Path:
        files = self.model.contract.data["files"]
        key = "|".join([str(Path(self.name).resolve()) if self.folder else self.name,
                        files["encoder"]["sha256"], files["step"]["sha256"]])
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return cache_dir() / "review" / f"scores-{digest}.json"

    def _fingerprint(self, ref: clipfmt.ClipRef) -> str:
        h = hashlib.sha256(json.dumps([self.crop, [round(float(t), 3) for t in ref.times_ms]])
                           .encode())
        for p in ref.frame_paths or ([ref.video] if ref.video else []):
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()[:24]

    def start_scoring(self) -> None:
        """Score every clip in a background thread (cached ones at once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._score_all, name="review-scores",
                                            daemon=True)
            self._thread.start()

    def _score_all(self) -> None:
        try:
            self.score_all()
        except Exception as e:  # noqa: BLE001 - shown on the page, not a crash of the server
            self.scoring_error = f"{type(e).__name__}: {e}"

    def score_all(self, report: Callable[[int], None] | None = None) -> None:
        """Score every clip not scored yet; `report(n_scored)` after each."""
        cache_path = self._cache_path() if self.folder is not None else None
        cache: dict = {}
        if cache_path is not None and cache_path.is_file():
            try:
                cache = json.loads(cache_path.read_text()).get("clips", {})
            except (json.JSONDecodeError, OSError, AttributeError):
                cache = {}
        for it in list(self.items.values()):
            if self._stop.is_set():
                return
            if report is not None:
                report(len(self.scores))
            if it.ref is None or it.id in self.scores:
                continue
            if it.id in self.oof:
                p = self.oof[it.id]
                if len(p) == len(it.ref):
                    self._set_scores(it.id, p, "out-of-fold")
                    continue
            fp = self._fingerprint(it.ref) if cache_path is not None else ""
            hit = cache.get(it.id)
            if hit and hit.get("key") == fp and len(hit.get("p", [])) == len(it.ref):
                self._set_scores(it.id, np.array([np.nan if v is None else v for v in hit["p"]]),
                                 "model")
                continue
            try:
                frames = it.ref.read_frames()
            except DatasetError as e:
                it.error, it.ref = str(e), None
                continue
            p = self.model.clip_probs(frames, it.ref.times_ms, self.crop)
            self._set_scores(it.id, p, "model")
            if cache_path is not None:
                cache[it.id] = {"key": fp, "p": [None if not np.isfinite(v) else round(float(v), 5)
                                                 for v in p]}
                with atomic_write(cache_path) as tmp:
                    tmp.write_text(json.dumps({"clips": cache}))
        if report is not None:
            report(len(self.scores))

    def _set_scores(self, cid: str, p, source: str) -> None:
        with self._lock:
            self.scores[cid] = np.asarray(p, np.float64)
            self.score_source[cid] = source

    def progress(self) -> dict:
        total = sum(it.ref is not None for it in self.items.values())
        return {"scored": len(self.scores), "total": total, "error": self.scoring_error,
                "done": len(self.scores) >= total or self.scoring_error is not None}

    # --- reading -------------------------------------------------------------------------

    def _item(self, cid: str) -> Item:
        it = self.items.get(cid)
        if it is None:
            raise ReviewError(f"no clip {cid!r} in {self.name}", 404)
        if it.ref is None:
            raise ReviewError(f"clip {cid!r} cannot be reviewed: {it.error}", 409)
        return it

    def frames(self, cid: str, indices=None) -> np.ndarray:
        """Frames of one clip (the last clip's frames are kept for scrubbing)."""
        it = self._item(cid)
        if isinstance(it.ref, MemoryRef) or it.ref.video is None:
            return it.ref.read_frames(indices)
        with self._lock:
            if self._frames_cache is None or self._frames_cache[0] != cid:
                self._frames_cache = (cid, it.ref.read_frames())
            frames = self._frames_cache[1]
        return frames if indices is None else frames[list(indices)]

    def frame_file(self, cid: str, i: int) -> Path | None:
        """The file of frame `i` when the clip is a folder of frames (served as it is)."""
        it = self._item(cid)
        if not 0 <= i < len(it.ref):
            raise ReviewError(f"clip {cid!r} has frames 0..{len(it.ref) - 1}, not {i}", 404)
        if isinstance(it.ref, MemoryRef) or not it.ref.frame_paths:
            return None
        return it.ref.frame_paths[i]

    def labels(self, cid: str) -> tuple[np.ndarray, np.ndarray, int]:
        it = self._item(cid)
        return sidecar.labels_of(it.ref, self.review.of(cid))

    def clips(self) -> list[dict]:
        """The clip list: one row per clip, broken ones with their error."""
        out = []
        for it in self.items.values():
            cr = self.review.of(it.id)
            row = {"id": it.id, "error": it.error, "subject": None,
                   "prompt": it.entry.get("prompt"),
                   "frames": 0, "duration_ms": 0.0, "excluded": cr.excluded,
                   "flagged": cr.flag is not None, "edited": bool(cr.edits) or
                   cr.clip_smile is not None, "scored": it.id in self.scores}
            if it.ref is not None:
                smile, _, clip_smile = sidecar.labels_of(it.ref, cr)
                row.update(subject=it.ref.subject, frames=len(it.ref),
                           duration_ms=round(float(it.ref.times_ms[-1]), 1),
                           clip_smile=None if clip_smile < 0 else clip_smile,
                           smile_frames=int((smile == 1).sum()))
            out.append(row)
        return out

    def clip_view(self, cid: str) -> dict:
        """Everything the page draws for one clip."""
        it = self._item(cid)
        ref, cr = it.ref, self.review.of(cid)
        smile, emotion, clip_smile = sidecar.labels_of(ref, cr)
        names = [None if e < 0 else EMOTIONS[e] for e in emotion]
        probs = self.scores.get(cid)
        quality = it.entry.get("quality") if isinstance(it.entry.get("quality"), dict) else {}
        capture = it.entry.get("capture") if isinstance(it.entry.get("capture"), dict) else {}
        return {
            "id": cid, "subject": ref.subject, "prompt": it.entry.get("prompt"),
            "session": it.entry.get("session"), "lighting": capture.get("lighting"),
            "notes": capture.get("notes"), "crop": self.crop,
            "times_ms": [round(float(t), 3) for t in ref.times_ms],
            "smile": [None if v < 0 else int(v) for v in smile], "emotion": names,
            "spans": sidecar.runs(ref.times_ms, smile, emotion),
            "manifest_spans": sidecar.runs(ref.times_ms, ref.smile, ref.emotion_label),
            "clip_smile": None if clip_smile < 0 else clip_smile,
            "manifest_clip_smile": None if ref.clip_smile < 0 else ref.clip_smile,
            "excluded": cr.excluded, "flag": cr.flag, "edits": len(cr.edits),
            "scores": None if probs is None else [None if not np.isfinite(v) else round(float(v), 4)
                                                  for v in probs],
            "score_source": self.score_source.get(cid),
            "live": _floats(quality.get("smile_prob"), len(ref)),
            "face": _floats(quality.get("face"), len(ref)),
            "log": [e for e in self.review.log if e["clip"] == cid][-100:],
            "read_only": self.read_only,
        }

    def info(self) -> dict:
        return {"name": self.name, "read_only": self.read_only, "note": self.research_note,
                "reviewer": self.reviewer, "sidecar": None if self.folder is None else
                str(self.folder / sidecar.SIDECAR), "crop": self.crop,
                "clips": len(self.items), "broken": [{"id": it.id, "error": it.error}
                                                     for it in self.items.values() if it.error],
                "unknown_in_sidecar": sorted(set(self.review.clips) - set(self.items)),
                "oof_clips": len(self.oof), "emotions": list(EMOTIONS),
                "model": self.model_info(), "progress": self.progress()}

    def _scored(self) -> list[suspects.Scored]:
        out = []
        for it in self.items.values():
            cr = self.review.of(it.id)
            if it.ref is None or cr.excluded or it.id not in self.scores:
                continue
            smile, _, clip_smile = sidecar.labels_of(it.ref, cr)
            out.append(suspects.Scored(it.id, it.ref.times_ms, smile, self.scores[it.id],
                                       clip_smile))
        return out

    def suspects(self) -> dict:
        q = suspects.rank(self._scored())
        sources = sorted(set(self.score_source.values()))
        q.update(sources=sources, model=self.model_info(), progress=self.progress(),
                 flagged=[{"clip": k, "note": v.flag} for k, v in self.review.clips.items()
                          if v.flag is not None and k in self.items])
        return q

    def stats(self) -> dict:
        rows = []
        for it in self.items.values():
            if it.ref is None:
                continue
            cr = self.review.of(it.id)
            smile, emotion, clip_smile = sidecar.labels_of(it.ref, cr)
            capture = it.entry.get("capture") if isinstance(it.entry.get("capture"), dict) else {}
            rows.append(review_stats.Row(
                clip=it.id, subject=it.ref.subject, prompt=it.entry.get("prompt"),
                lighting=capture.get("lighting"), times_ms=it.ref.times_ms, smile=smile,
                emotion=emotion, clip_smile=clip_smile, excluded=cr.excluded,
                flagged=cr.flag is not None, edited=bool(cr.edits) or cr.clip_smile is not None,
                probs=self.scores.get(it.id)))
        out = review_stats.summarise(rows, self.threshold)
        out["broken"] = sum(it.ref is None for it in self.items.values())
        return out

    # --- changes -------------------------------------------------------------------------

    def _change(self, cid: str, who: str | None, fn: Callable[[sidecar.Review, Any], dict]
                ) -> dict:
        if self.read_only:
            raise ReviewError(f"{self.name} is read-only (a research set): nothing is written",
                              409)
        it = self._item(cid)
        who = who or self.reviewer
        with self._lock:
            review = copy.deepcopy(self.review)
            try:
                entry = fn(review, it.ref, who)
            except sidecar.SidecarError as e:
                raise ReviewError(str(e), 422) from e
            sidecar.write(self.folder, review)  # the new state only once it is on disk
            self.review = review
        return entry

    def relabel(self, cid: str, first: int, last: int, who: str | None = None,
                **labels) -> dict:
        """Set smile and/or emotion of frames first..last (inclusive)."""
        it = self._item(cid)
        t = it.ref.times_ms
        if not 0 <= first <= last < len(t):
            raise ReviewError(f"frames {first}..{last} are not in clip {cid!r} "
                              f"(0..{len(t) - 1})", 422)
        step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
        end = float(t[last + 1]) if last + 1 < len(t) else float(t[last]) + step
        return self._change(cid, who, lambda r, ref, w: r.relabel(
            ref, float(t[first]), end, w, self.clock(), **labels))

    def set_clip_label(self, cid: str, value: int | None, who: str | None = None) -> dict:
        return self._change(cid, who, lambda r, ref, w: r.set_clip_label(
            ref, value, w, self.clock()))

    def set_excluded(self, cid: str, excluded: bool, who: str | None = None) -> dict:
        return self._change(cid, who, lambda r, ref, w: r.set_excluded(
            ref, excluded, w, self.clock()))

    def set_flag(self, cid: str, note: str | None, who: str | None = None) -> dict:
        return self._change(cid, who, lambda r, ref, w: r.set_flag(ref, note, w, self.clock()))

    def undo(self, cid: str, who: str | None = None) -> dict:
        return self._change(cid, who, lambda r, ref, w: r.undo(ref, w, self.clock()))

    # --- contact sheets ------------------------------------------------------------------

    def sheet_png(self, cid: str) -> bytes:
        from utjima.review import sheets

        it = self._item(cid)
        smile, emotion, clip_smile = self.labels(cid)
        idx = sheets.pick(it.ref.times_ms)
        frames = self.frames(cid, idx)
        cr = self.review.of(cid)
        title = " / ".join(str(x) for x in (cid, it.ref.subject, it.entry.get("prompt")) if x)
        return sheets.png(sheets.contact_sheet(
            frames, idx, it.ref.times_ms, smile, emotion, self.scores.get(cid), self.threshold,
            title=title, clip_smile=clip_smile, excluded=cr.excluded, flagged=cr.flag is not None))

    def export_sheets(self, out: str | Path) -> list[Path]:
        """One contact-sheet PNG per clip into `out`; research sets never inside a git
        work tree (their frames must not end up in a repository)."""
        out = Path(out).resolve()
        if self.folder is None and _git_root(out) is not None:
            raise ReviewError(f"{out} is inside the git work tree {_git_root(out)}: contact "
                              f"sheets of {self.name} hold its frames, which must never be "
                              "committed; export them to a folder outside any repository")
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for it in self.items.values():
            if it.ref is None:
                continue
            path = out / f"{it.id}.png"
            with atomic_write(path) as tmp:
                tmp.write_bytes(self.sheet_png(it.id))
            written.append(path)
        return written


def _floats(values, n: int) -> list | None:
    """A per-frame quality list as floats (None kept), or None when absent or the wrong
    length."""
    if not isinstance(values, list) or len(values) != n:
        return None
    return [None if not isinstance(v, (int, float)) or isinstance(v, bool) else
            round(float(v), 4) for v in values]


def read_oof(path: str | Path) -> dict[str, np.ndarray]:
    """Out-of-fold per-frame scores: `utjima.oof/1` JSON (a file, or `oof.json` in a folder):
    {"format": "utjima.oof/1", "clips": {"<clip id>": {"smile_prob": [p or null, ...]}}},
    or a study's `predictions.json` (`utjima study --out DIR`: its early-stopping arm, whose
    fold models never saw the clip's participant)."""
    path = Path(path)
    if path.is_dir():
        path = next((path / n for n in ("oof.json", STUDY_PREDICTIONS) if (path / n).is_file()),
                    path / "oof.json")
    if not path.is_file():
        raise ReviewError(f"--oof {path}: no such file (a utjima.oof/1 JSON, or a folder "
                          f"holding oof.json or a study's {STUDY_PREDICTIONS})")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ReviewError(f"--oof {path}: not valid JSON ({e})") from e
    if isinstance(data, dict) and data.get("format") == STUDY_FORMAT \
            and isinstance(data.get("clips"), list):
        try:
            data = {"format": OOF_FORMAT, "clips": {
                str(c["id"]): {"smile_prob": c["frame_scores"]["early_stop"]}
                for c in data["clips"]}}
        except (KeyError, TypeError) as e:
            raise ReviewError(f"--oof {path}: a study's predictions without per-clip "
                              f"frame_scores.early_stop ({e})") from e
    if not isinstance(data, dict) or data.get("format") != OOF_FORMAT \
            or not isinstance(data.get("clips"), dict):
        raise ReviewError(f"--oof {path}: expected {{'format': {OOF_FORMAT!r}, 'clips': "
                          f"{{id: {{'smile_prob': [...]}}}}}} or a study's {STUDY_PREDICTIONS}")
    out = {}
    for cid, d in data["clips"].items():
        p = d.get("smile_prob") if isinstance(d, dict) else None
        if not isinstance(p, list) or not all(v is None or (isinstance(v, (int, float)) and
                                                            not isinstance(v, bool) and
                                                            0 <= v <= 1) for v in p):
            raise ReviewError(f"--oof {path}: clip {cid!r} needs smile_prob, a list of "
                              "probabilities (null = no face)")
        out[str(cid)] = np.array([np.nan if v is None else float(v) for v in p])
    return out

