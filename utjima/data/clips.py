"""Our clip-folder format for recorded videos (`utjima.clips/1`), and sliding windows over it.

A folder holds `manifest.json` and, per clip, a folder of frames or one video file. The
format is specified in `docs/clip_format.md`; in short:

    {"format": "utjima.clips/1", "crop": "face",
     "clips": [{"id": "p01-take03", "frames_dir": "p01-take03", "times_ms": [0, 33.3, ...],
                "labels": {"smile": [0, 0, 1, ...], "emotion": ["neutral", null, "happy", ...]}},
               {"id": "p02-take01", "video": "p02-take01.mp4", "fps": 30,
                "segments": [{"start_ms": 1200, "end_ms": 2600, "smile": 1, "emotion": "happy"}],
                "default": {"smile": 0}, "clip_smile": 1, "subject": "p02"}]}

`load` turns every clip into per-frame arrays (frames, times, smile, emotion_label);
`windows` yields the model's inputs exactly as the streaming runtime will see them (the
sampling rule of `utjima.streaming.window_indices`), labelled with their last frame;
`write` is what tools and tests use to produce the format (the capture page writes it from
the browser: docs/capture.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from utjima import EMOTIONS
from utjima.data.cache import DatasetError
from utjima.data.faceset import IMAGE_EXTS, read_image
from utjima.streaming import window_indices
from utjima.utils import atomic_write

FORMAT = "utjima.clips/1"
MANIFEST = "manifest.json"
CROPS = ("face", "full")  # face: frames are face crops (utjima.faces policy); full: camera frames


@dataclass
class Clip:
    """One recorded clip with per-frame labels (frames in memory, RGB)."""

    id: str  # unique within the folder
    frames: np.ndarray  # (N, H, W, 3) uint8 RGB
    times_ms: np.ndarray  # (N,) float64, strictly increasing, first frame usually 0
    smile: np.ndarray  # (N,) int8: 1 / 0 / -1 masked
    emotion_label: np.ndarray  # (N,) int8: index into EMOTIONS, -1 masked
    clip_smile: int = -1  # clip-level label (did the player laugh in this clip), -1 unknown
    subject: str | None = None  # person id, for splits that keep a person on one side
    split: str | None = None  # optional split named in the manifest

    def __post_init__(self) -> None:
        n = len(self.frames)
        self.times_ms = np.asarray(self.times_ms, dtype=np.float64).reshape(n)
        self.smile = np.asarray(self.smile, dtype=np.int8).reshape(n)
        self.emotion_label = np.asarray(self.emotion_label, dtype=np.int8).reshape(n)
        if n and np.any(np.diff(self.times_ms) <= 0):
            raise DatasetError(f"clip {self.id!r}: times_ms must increase strictly")

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class ClipSet:
    """The clips of one folder."""

    source: str  # "clips:/path/to/folder"
    clips: list[Clip]
    crop: str = "face"  # see CROPS
    test_only: bool = False
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.clips)

    def limit(self, n: int | None, seed: int = 0) -> ClipSet:
        """At most `n` clips, a seeded random subset in the original order."""
        if n is None or n >= len(self.clips):
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self.clips), size=n, replace=False))
        return ClipSet(self.source, [self.clips[i] for i in keep], self.crop, self.test_only,
                       dict(self.info))

    def counts(self) -> dict:
        smile = np.concatenate([c.smile for c in self.clips]) if self.clips else np.zeros(0)
        return {
            "clips": len(self.clips),
            "frames": int(len(smile)),
            "smile": int((smile == 1).sum()),
            "non_smile": int((smile == 0).sum()),
            "smile_masked": int((smile == -1).sum()),
            "clip_smile": int(sum(c.clip_smile == 1 for c in self.clips)),
            "clip_non_smile": int(sum(c.clip_smile == 0 for c in self.clips)),
        }

    def describe(self) -> str:
        c = self.counts()
        return (f"{self.source}: {c['clips']} clips, {c['frames']} frames, smile {c['smile']} / "
                f"non-smile {c['non_smile']} / masked {c['smile_masked']} frames")


@dataclass(frozen=True)
class ClipWindow:
    """One model input cut from a clip: the window ending at frame `index`."""

    clip_id: str
    index: int  # the window's last frame (the frame it is labelled with)
    t_ms: float  # that frame's time
    indices: tuple[int, ...]  # (T,) frames feeding the window, oldest first
    frames: np.ndarray  # (T, H, W, 3) uint8
    smile: int  # the last frame's label
    emotion_label: int


# --- reading --------------------------------------------------------------------------

def _emotion_index(value, where: str) -> int:
    if value is None:
        return -1
    if isinstance(value, str) and value in EMOTIONS:
        return EMOTIONS.index(value)
    if isinstance(value, int) and not isinstance(value, bool) and -1 <= value < len(EMOTIONS):
        return value
    raise DatasetError(f"{where}: emotion {value!r} is not one of {list(EMOTIONS)} (or null)")


def _smile_value(value, where: str) -> int:
    if value is None:
        return -1
    if value in (0, 1, -1) and not isinstance(value, bool):
        return int(value)
    raise DatasetError(f"{where}: smile must be 1, 0, -1 or null, got {value!r}")


def _frame_paths(folder: Path) -> tuple[Path, ...]:
    if not folder.is_dir():
        raise DatasetError(f"frames_dir {folder} does not exist")
    paths = tuple(sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS))
    if not paths:
        raise DatasetError(f"frames_dir {folder} holds no images ({', '.join(IMAGE_EXTS)})")
    return paths


def _read_frames(paths: Sequence[Path]) -> np.ndarray:
    frames = [read_image(p, color=True) for p in paths]
    if len({f.shape for f in frames}) != 1:
        raise DatasetError(f"frames in {paths[0].parent} differ in size")
    return np.stack(frames)


def _read_video(path: Path) -> tuple[np.ndarray, float]:
    if not path.is_file():
        raise DatasetError(f"video {path} does not exist")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DatasetError(f"OpenCV cannot open video {path}")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        raise DatasetError(f"video {path} has no readable frames")
    return np.stack(frames), fps


def _labels(entry: dict, times: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    n = len(times)
    smile = np.full(n, -1, np.int8)
    emotion = np.full(n, -1, np.int8)
    if "labels" in entry and "segments" in entry:
        raise DatasetError(f"{where}: give per-frame 'labels' or 'segments', not both")
    if "labels" in entry:
        lab = entry["labels"]
        if not isinstance(lab, dict) or not set(lab) <= {"smile", "emotion"}:
            raise DatasetError(f"{where}: 'labels' must be an object with 'smile' and/or 'emotion' "
                               "lists")
        for key, arr, conv in (("smile", smile, _smile_value),
                               ("emotion", emotion, _emotion_index)):
            if key in lab:
                vals = lab[key]
                if len(vals) != n:
                    raise DatasetError(f"{where}: labels.{key} has {len(vals)} entries for {n} "
                                       "frames")
                arr[:] = [conv(v, f"{where} labels.{key}") for v in vals]
    else:
        default = entry.get("default", {})
        smile[:] = _smile_value(default.get("smile"), f"{where} default")
        emotion[:] = _emotion_index(default.get("emotion"), f"{where} default")
        segs = entry.get("segments", [])
        if not isinstance(segs, list):
            raise DatasetError(f"{where}: 'segments' must be a list of objects")
        for k, seg in enumerate(segs):
            w = f"{where} segments[{k}]"
            try:
                start, end = float(seg["start_ms"]), float(seg["end_ms"])
            except (KeyError, TypeError, ValueError) as e:
                raise DatasetError(f"{w}: needs numeric start_ms and end_ms") from e
            if not (np.isfinite(start) and np.isfinite(end)):
                raise DatasetError(f"{w}: start_ms and end_ms must be finite")
            if end <= start:
                raise DatasetError(f"{w}: end_ms must be after start_ms")
            inside = (times >= start) & (times < end)  # [start, end)
            if "smile" in seg:
                smile[inside] = _smile_value(seg["smile"], w)
            if "emotion" in seg:
                emotion[inside] = _emotion_index(seg["emotion"], w)
    return smile, emotion


@dataclass
class ClipRef:
    """One manifest entry read without decoding its frames: times, labels, and where the
    pixels are (what `utjima review` keeps in memory for a whole collection)."""

    id: str
    times_ms: np.ndarray  # (N,) float64
    smile: np.ndarray  # (N,) int8, from the manifest (see Clip)
    emotion_label: np.ndarray  # (N,) int8
    clip_smile: int
    subject: str | None
    split: str | None
    entry: dict  # the manifest entry as written (capture fields: prompt, quality, ...)
    frame_paths: tuple[Path, ...] = ()  # a frames_dir clip's files, in order
    video: Path | None = None  # ... or its video file

    def __len__(self) -> int:
        return len(self.times_ms)

    def read_frames(self, indices: Sequence[int] | None = None) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB: every frame, or those at `indices`."""
        if self.video is not None:
            frames, _ = _read_video(self.video)
            if len(frames) != len(self):
                raise DatasetError(f"video {self.video} changed: {len(frames)} frames, "
                                   f"{len(self)} when it was read")
            return frames if indices is None else frames[list(indices)]
        paths = self.frame_paths
        return _read_frames(paths if indices is None else [paths[i] for i in indices])

    def clip(self, frames: np.ndarray | None = None) -> Clip:
        return Clip(id=self.id, frames=self.read_frames() if frames is None else frames,
                    times_ms=self.times_ms, smile=self.smile.copy(),
                    emotion_label=self.emotion_label.copy(), clip_smile=self.clip_smile,
                    subject=self.subject, split=self.split)


def scan_entry(folder: str | Path, entry: dict, k: int) -> ClipRef:
    """Manifest entry `k` of `folder`, checked, its frames counted but not decoded (a video
    is decoded once to count them)."""
    folder = Path(folder)
    if not isinstance(entry, dict) or "id" not in entry:
        raise DatasetError(f"{folder / MANIFEST}: clips[{k}] needs an 'id'")
    where = f"{folder / MANIFEST} clip {entry['id']!r}"
    if ("video" in entry) == ("frames_dir" in entry):
        raise DatasetError(f"{where}: give exactly one of 'video' or 'frames_dir'")
    paths: tuple[Path, ...] = ()
    video = None
    if "video" in entry:
        video = folder / entry["video"]
        frames, container_fps = _read_video(video)
        n = len(frames)
        del frames
    else:
        paths, container_fps = _frame_paths(folder / entry["frames_dir"]), 0.0
        n = len(paths)
    if "times_ms" in entry:
        times = np.asarray(entry["times_ms"], dtype=np.float64)
        if len(times) != n:
            raise DatasetError(f"{where}: times_ms has {len(times)} entries for {n} frames")
    else:
        fps = float(entry.get("fps") or container_fps)
        if fps <= 0:
            raise DatasetError(f"{where}: needs 'fps' or 'times_ms' (frame times)")
        times = np.arange(n) * (1000.0 / fps)
    if n and np.any(np.diff(times) <= 0):
        raise DatasetError(f"clip {entry['id']!r}: times_ms must increase strictly")
    smile, emotion = _labels(entry, times, where)
    return ClipRef(
        id=str(entry["id"]), times_ms=times, smile=smile, emotion_label=emotion,
        clip_smile=_smile_value(entry.get("clip_smile"), f"{where} clip_smile"),
        subject=entry.get("subject"), split=entry.get("split"), entry=entry,
        frame_paths=paths, video=video,
    )


def read_manifest(folder: str | Path) -> dict:
    """`folder`/manifest.json, its format and crop checked (clips are checked by
    `scan_entry`)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise DatasetError(f"{folder}: no {MANIFEST}; see docs/clip_format.md for the clip-folder "
                           "format")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: not valid JSON: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise DatasetError(f"{path}: format is {got!r}, expected {FORMAT!r}")
    crop = manifest.get("crop", "face")
    if crop not in CROPS:
        raise DatasetError(f"{path}: crop {crop!r} is not one of {list(CROPS)}")
    if not isinstance(manifest.get("clips", []), list):
        raise DatasetError(f"{path}: 'clips' must be a list")
    return manifest


def load(folder: str | Path, reviewed: bool = True) -> ClipSet:
    """Read a clip folder (manifest.json + frames/videos) into memory. With `reviewed`, the
    label changes made in `utjima review` (the sidecar review.json beside the manifest,
    `utjima.data.sidecar`) are applied: relabelled spans, excluded clips left out."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    refs = [scan_entry(folder, e, k) for k, e in enumerate(manifest.get("clips", []))]
    ids = [r.id for r in refs]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{folder / MANIFEST}: clip ids must be unique")
    cs = ClipSet(source=f"clips:{folder}", clips=[r.clip() for r in refs],
                 crop=manifest.get("crop", "face"))
    if reviewed:
        from utjima.data import sidecar

        cs = sidecar.apply(cs, sidecar.read(folder))
    return cs


# --- windows --------------------------------------------------------------------------

def window_table(clip: Clip, n_frames: int, frame_interval_ms: float,
                 stride: int = 1) -> np.ndarray:
    """(M, T) frame indices of the windows ending at frames 0, stride, 2*stride, ..."""
    times = clip.times_ms.tolist()
    ends = range(0, len(times), stride)
    return np.array([window_indices(times, times[i], n_frames, frame_interval_ms) for i in ends],
                    dtype=np.int64).reshape(len(ends), n_frames)


def windows(clip: Clip, n_frames: int, frame_interval_ms: float,
            stride: int = 1) -> Iterator[ClipWindow]:
    """Every window the streaming runtime would feed the model, labelled with its last frame.

    Windows start at the first frame (padded with it, as a fresh stream is) and end at every
    `stride`-th frame.
    """
    for idx in window_table(clip, n_frames, frame_interval_ms, stride):
        i = int(idx[-1])
        yield ClipWindow(clip.id, i, float(clip.times_ms[i]), tuple(int(x) for x in idx),
                         clip.frames[idx], int(clip.smile[i]), int(clip.emotion_label[i]))


# --- writing --------------------------------------------------------------------------

def _clip_entry(clip: Clip, frames_dir: str) -> dict:
    entry: dict = {"id": clip.id, "frames_dir": frames_dir,
                   "times_ms": [round(float(t), 3) for t in clip.times_ms]}
    labels = {}
    if (clip.smile != -1).any():
        labels["smile"] = [int(v) for v in clip.smile]
    if (clip.emotion_label != -1).any():
        labels["emotion"] = [EMOTIONS[v] if v >= 0 else None for v in clip.emotion_label]
    if labels:
        entry["labels"] = labels
    if clip.clip_smile != -1:
        entry["clip_smile"] = int(clip.clip_smile)
    if clip.subject is not None:
        entry["subject"] = clip.subject
    if clip.split is not None:
        entry["split"] = clip.split
    return entry


def write(folder: str | Path, clips: Sequence[Clip], crop: str = "face", ext: str = ".png",
          append: bool = False, extra_entries: Sequence[dict] = ()) -> Path:
    """Write clips as `<folder>/<id>/NNNNNN<ext>` frames plus `manifest.json`; return its path.

    `append` keeps the clips already in the manifest (ids must stay unique);
    `extra_entries` are raw manifest entries (e.g. video files with segment labels).
    The manifest is replaced atomically, so a crash never leaves a half-written one.
    """
    if crop not in CROPS:
        raise ValueError(f"crop {crop!r} is not one of {list(CROPS)}")
    if ext not in (".png", ".jpg"):
        raise ValueError(f"ext must be '.png' (lossless) or '.jpg', got {ext!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []
    path = folder / MANIFEST
    if append and path.is_file():
        old = json.loads(path.read_text())
        if old.get("crop", "face") != crop:
            raise ValueError(f"{path} holds crop {old.get('crop')!r} clips, not {crop!r}")
        entries = list(old.get("clips", []))
    for clip in clips:
        if "/" in clip.id or clip.id in ("", ".", ".."):
            raise ValueError(f"clip id {clip.id!r} must be a plain folder name")
        d = folder / clip.id
        d.mkdir(exist_ok=True)
        for i, frame in enumerate(clip.frames):
            bgr = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            if not cv2.imwrite(str(d / f"{i:06d}{ext}"), bgr):
                raise OSError(f"cannot write {d / f'{i:06d}{ext}'}")
        entries.append(_clip_entry(clip, clip.id))
    entries += list(extra_entries)
    ids = [e["id"] for e in entries]
    if len(set(ids)) != len(ids):
        raise ValueError(f"clip ids must be unique in {path}: "
                         f"{sorted({i for i in ids if ids.count(i) > 1})}")
    with atomic_write(path) as tmp:
        manifest = {"format": FORMAT, "crop": crop, "clips": entries}
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    return path


# --- whole camera frames -> face crops -------------------------------------------------

def face_crops(cs: ClipSet, size: int = 128, progress: bool = False) -> ClipSet:
    """A `crop: "full"` set (camera frames, as the capture page records them) through the
    live face path: in every frame the largest face BlazeFace (the policy's detector) finds,
    cropped by the default crop policy at `size` px (the model resizes); a frame without a
    face keeps the last face found (the first face for frames before it). A clip where no
    frame has a face (a covered camera) is dropped. `info["face"]`: per kept clip, which
    frames had a face of their own; `info["no_face"]`: the dropped clips' ids. A face-crop
    set comes back as it is."""
    if cs.crop == "face":
        return cs
    from utjima.faces import CropPolicy, crop_face, default_detector

    policy = CropPolicy.default(size=size)
    det = default_detector(policy.detector)
    kept, found, dropped = [], {}, []
    it = cs.clips
    if progress:
        from tqdm import tqdm

        it = tqdm(cs.clips, desc="finding faces", unit="clip", leave=False)
    for clip in it:
        faces = []
        for frame in clip.frames:
            fs = det.detect(frame)
            faces.append(max(fs, key=lambda f: f.side) if fs else None)
        if all(f is None for f in faces):
            dropped.append(clip.id)
            continue
        last = next(f for f in faces if f is not None)
        crops = []
        for frame, face in zip(clip.frames, faces, strict=True):
            last = face or last
            crop = crop_face(frame, last, policy, channels="rgb")  # (3, S, S) float 0..1
            crops.append(np.clip(np.round(crop.transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8))
        kept.append(Clip(clip.id, np.stack(crops), clip.times_ms, clip.smile, clip.emotion_label,
                         clip.clip_smile, clip.subject, clip.split))
        found[clip.id] = np.array([f is not None for f in faces])
    return ClipSet(cs.source, kept, "face", cs.test_only,
                   {**cs.info, "face": found, "no_face": dropped, "crop_size": size})
