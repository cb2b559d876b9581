"""Clip collection (`utjima serve --collect DIR`): the capture page's uploads, checked whole
in memory before anything is written, stored per participant, deletable by their owner.

An upload is the zip the capture page also offers for download (docs/capture.md): a clip
folder of the format `utjima.clips/1` (docs/clip_format.md) holding one participant's
session, `manifest.json` plus `<clip id>/NNNNNN.jpg` frames. `check_upload` reads it from
memory and refuses, with one message, anything that is not exactly that: a name that is
not `manifest.json` or a numbered frame (so no path tricks), sizes over the limits, a
manifest off the schema, overlapping segments, a clip without frames, a frame that does
not decode. `Collection` then stores it under DIR:

    DIR/manifest.json                 every stored clip (frames_dir "<participant>/<clip id>"),
                                      so `utjima.data.clips.load(DIR)` reads the collection
    DIR/<participant>/<clip id>/NNNNNN.jpg
    DIR/<participant>/participant.json  sha256 of the participant's delete token, uploads
    DIR/.incoming/                    staging; frames move from here by rename
    DIR/.lock                         one server collects into DIR at a time

Frames are staged and renamed into place, then the manifest is replaced in one rename, so
a crash leaves either the old collection or the new one (at worst an unlisted folder).
Nothing here imports OpenCV or torch: frames are decoded with Pillow, lazily.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import io
import json
import math
import os
import re
import secrets
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from utjima import EMOTIONS
from utjima.utils import UtjimaError, atomic_write

FORMAT = "utjima.clips/1"  # = utjima.data.clips.FORMAT (that one imports OpenCV; a test ties them)
CAPTURE = "utjima.capture/1"  # the capture page's protocol and fields
MANIFEST = "manifest.json"
PARTICIPANT = "participant.json"
FRAME_EXTS = {".jpg": "JPEG", ".png": "PNG"}
ID = r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?"  # participant and session ids: 1..40 chars
PROMPT = r"[a-z][a-z0-9_]{0,31}"
CLIP_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,127}")  # <subject>-<session>-NN-<prompt>
FRAME_NAME = re.compile(r"(\d{6})(\.jpg|\.png)")
MAX_MANIFEST_BYTES = 8 * 1024 * 1024


class CollectError(UtjimaError):
    """An upload or request the collection refuses: an HTTP status, a code, one message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Limits:
    """What one upload and the whole collection may hold (Settings.collect_*)."""

    max_upload_bytes: int = 64 * 1024 * 1024  # one zip, as sent
    max_frames: int = 6000  # frames in one upload (10 min at 10 fps)
    max_clips: int = 64  # clips in one upload
    max_frame_bytes: int = 2 * 1024 * 1024  # one frame file
    max_frame_side: int = 1920  # frame width and height, px (read from the header first)
    max_total_bytes: int = 20 * 1024 ** 3  # everything stored under DIR

    @classmethod
    def from_settings(cls, s) -> Limits:
        """The limits a `utjima.server.settings.Settings` asks for."""
        return cls(max_upload_bytes=s.collect_max_upload_bytes, max_frames=s.collect_max_frames,
                   max_total_bytes=s.collect_max_total_bytes)


# --- the manifest an upload carries ----------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


Emotion = Literal[EMOTIONS]  # type: ignore[valid-type]
Bit = Annotated[int, Field(ge=0, le=1)]  # 0 or 1 (strict: true and 1.0 are refused)


class SegmentIn(_Strict):
    start_ms: float = Field(ge=0)
    end_ms: float = Field(gt=0)
    smile: Bit | None = None
    emotion: Emotion | None = None
    face: Bit | None = None  # 0: the prompt hides the face (covered, out of frame)
    prompt: str | None = Field(default=None, pattern=rf"^{PROMPT}$")


class DeviceIn(_Strict):
    user_agent: str = Field(default="", max_length=400)
    camera: str = Field(default="", max_length=200)
    width: int = Field(default=0, ge=0, le=10000)  # the camera track, px
    height: int = Field(default=0, ge=0, le=10000)
    frame_rate: float | None = Field(default=None, ge=0, le=1000)


class ProtocolRef(_Strict):
    id: str = Field(max_length=40)
    version: int = Field(ge=1)
    scale: float = Field(gt=0, le=1)  # 1 = the real protocol; less = a shortened test run


class CaptureIn(_Strict):
    format: Literal["utjima.capture/1"]
    protocol: ProtocolRef
    device: DeviceIn
    lighting: str = Field(default="", max_length=40)
    notes: str = Field(default="", max_length=1000)
    lang: Literal["en", "ko"] = "en"
    consent: str = Field(max_length=40)
    recorded_at: str = Field(max_length=40)


class QualityIn(_Strict):
    """Per-frame measurements the capture page made (one entry per frame)."""

    face: list[Bit | None]  # the live detector found a face (null: no result near)
    face_frac: list[float | None]  # face box width / frame width
    luma: list[float]  # mean brightness, 0..255
    motion: list[float | None]  # mean absolute change from the previous frame, 0..255
    smile_prob: list[float | None]  # the live detector's score


class ClipIn(_Strict):
    id: str
    frames_dir: str
    times_ms: list[float] = Field(min_length=1)
    segments: list[SegmentIn] = Field(max_length=32)
    clip_smile: Bit | None = None
    subject: str = Field(pattern=rf"^{ID}$")
    session: str = Field(pattern=rf"^{ID}$")
    prompt: str = Field(pattern=rf"^{PROMPT}$")
    fps: float | None = Field(default=None, gt=0, le=120)  # the rate the page aimed at
    capture: CaptureIn
    quality: QualityIn | None = None


class ManifestIn(_Strict):
    format: Literal["utjima.clips/1"]
    crop: Literal["full"]
    clips: list[ClipIn] = Field(min_length=1)


def _describe(e: ValidationError) -> str:
    first = e.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "manifest"
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    return f"manifest.json {where}: {first['msg']}{more}"


# --- checking an upload ----------------------------------------------------------------------


@dataclass
class Upload:
    """A checked upload, still in memory."""

    participant: str
    session: str
    entries: list[dict]  # manifest entries, as sent (frames_dir = the clip id)
    frames: dict[str, list[bytes]]  # clip id -> frame files in order
    ext: dict[str, str]  # clip id -> ".jpg" | ".png"
    n_bytes: int = 0  # frame bytes
    n_frames: int = field(init=False)

    def __post_init__(self) -> None:
        self.n_frames = sum(len(f) for f in self.frames.values())


def _bad(message: str, code: str = "bad_upload", status: int = 422) -> CollectError:
    return CollectError(status, code, message)


def _read_zip(data: bytes, limits: Limits) -> tuple[bytes, dict[str, dict[int, tuple[str, bytes]]]]:
    """-> (manifest bytes, {clip folder: {frame number: (ext, bytes)}}); names checked."""
    if len(data) > limits.max_upload_bytes:
        raise _bad(f"the upload is {len(data)} bytes; the limit is {limits.max_upload_bytes}",
                   "too_large", 413)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as e:
        raise _bad(f"the upload is not a zip file: {e}", status=400) from None
    if len(infos) > limits.max_frames + limits.max_clips + 1:
        raise _bad(f"the zip holds {len(infos)} files; at most {limits.max_frames} frames in "
                   f"{limits.max_clips} clips are accepted", "too_large", 413)
    manifest: bytes | None = None
    folders: dict[str, dict[int, tuple[str, bytes]]] = {}
    total = 0
    for info in infos:
        name = info.filename
        if info.flag_bits & 0x1:
            raise _bad(f"{name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _bad(f"{name!r}: compression method {info.compress_type} is not accepted "
                       "(stored or deflated only)")
        parts = name.split("/")
        if name == MANIFEST:
            limit = MAX_MANIFEST_BYTES
        elif len(parts) == 2 and CLIP_ID.fullmatch(parts[0]) and parts[1] == "":
            continue  # a folder entry
        elif len(parts) == 2 and CLIP_ID.fullmatch(parts[0]) and FRAME_NAME.fullmatch(parts[1]):
            limit = limits.max_frame_bytes
        else:
            raise _bad(f"unexpected file {name[:120]!r} in the upload: only manifest.json and "
                       "frames named <clip id>/NNNNNN.jpg (or .png) are accepted")
        if info.file_size > limit:
            raise _bad(f"{name} is {info.file_size} bytes; the limit is {limit}", "too_large", 413)
        total += info.file_size
        if total > limits.max_upload_bytes:
            raise _bad(f"the zip unpacks to more than {limits.max_upload_bytes} bytes",
                       "too_large", 413)
        try:
            with zf.open(info) as f:
                body = f.read(limit + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise _bad(f"{name} cannot be read from the zip: {e}", status=400) from None
        if len(body) > limit:
            raise _bad(f"{name} is over the limit of {limit} bytes", "too_large", 413)
        if name == MANIFEST:
            manifest = body
            continue
        m = FRAME_NAME.fullmatch(parts[1])
        frames = folders.setdefault(parts[0], {})
        if int(m.group(1)) in frames:
            raise _bad(f"{parts[0]} has frame {m.group(1)} twice")
        frames[int(m.group(1))] = (m.group(2), body)
    if manifest is None:
        raise _bad("the zip has no manifest.json")
    return manifest, folders


def _check_clip(clip: ClipIn,
                files: dict[int, tuple[str, bytes]] | None) -> tuple[list[bytes], str]:
    where = f"clip {clip.id}"
    if not files:
        raise _bad(f"{where} has no frames: expected {clip.id}/000000.jpg, 000001.jpg, ...",
                   "no_frames")
    n = len(files)
    if sorted(files) != list(range(n)):
        missing = min(set(range(n)) - set(files))
        raise _bad(f"{where}: frames must be numbered 000000..{n - 1:06d}; "
                   f"{missing:06d} is missing")
    exts = {e for e, _ in files.values()}
    if len(exts) != 1:
        raise _bad(f"{where} mixes .jpg and .png frames")
    if len(clip.times_ms) != n:
        raise _bad(f"{where}: times_ms has {len(clip.times_ms)} entries for {n} frames")
    times = clip.times_ms
    if not all(math.isfinite(t) for t in times) or times[0] < 0 \
            or any(b <= a for a, b in zip(times, times[1:], strict=False)):
        raise _bad(f"{where}: times_ms must be finite, >= 0 and strictly increasing")
    prev = None
    for k, seg in enumerate(clip.segments):
        if seg.end_ms <= seg.start_ms:
            raise _bad(f"{where} segments[{k}]: end_ms must be after start_ms")
        if prev is not None and seg.start_ms < prev.end_ms:
            raise _bad(f"{where}: segments[{k}] ({seg.start_ms:g}-{seg.end_ms:g} ms) overlaps "
                       f"segments[{k - 1}] ({prev.start_ms:g}-{prev.end_ms:g} ms); captured "
                       "segments must be in time order and must not overlap", "overlap")
        prev = seg
    if clip.quality is not None:
        for key, values in clip.quality:
            if len(values) != n:
                raise _bad(f"{where}: quality.{key} has {len(values)} entries for {n} frames")
    return [files[i][1] for i in range(n)], exts.pop()


def _decode_frames(clip_id: str, frames: list[bytes], ext: str, limits: Limits) -> None:
    """Every frame decodes as the image its name says, all one size, within the limits."""
    from PIL import Image  # only when an upload arrives

    size = None
    for i, body in enumerate(frames):
        name = f"{clip_id}/{i:06d}{ext}"
        try:
            with Image.open(io.BytesIO(body)) as im:
                if im.format != FRAME_EXTS[ext]:
                    raise _bad(f"{name} is not a {FRAME_EXTS[ext]} image ({im.format})")
                if max(im.size) > limits.max_frame_side:
                    raise _bad(f"{name} is {im.size[0]}x{im.size[1]}; frames may be at most "
                               f"{limits.max_frame_side} px on a side", "too_large", 413)
                if size is not None and im.size != size:
                    raise _bad(f"{name} is {im.size[0]}x{im.size[1]}, the clip's first frame "
                               f"{size[0]}x{size[1]}")
                size = im.size
                im.load()  # decode it all: a truncated or corrupt frame fails here
        except CollectError:
            raise
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            raise _bad(f"{name} cannot be decoded: {e}") from None


def check_upload(data: bytes, limits: Limits) -> Upload:
    """The upload in `data` (zip bytes), checked whole; CollectError says what is wrong."""
    raw, folders = _read_zip(data, limits)
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise _bad(f"manifest.json is not valid JSON: {str(e)[:200]}") from None
    if not isinstance(doc, dict):
        raise _bad("manifest.json must be an object")
    try:
        manifest = ManifestIn.model_validate(doc)
    except ValidationError as e:
        raise _bad(_describe(e)) from None
    clips = manifest.clips
    if len(clips) > limits.max_clips:
        raise _bad(f"the upload holds {len(clips)} clips; at most {limits.max_clips}",
                   "too_large", 413)
    subjects, sessions = {c.subject for c in clips}, {c.session for c in clips}
    if len(subjects) != 1 or len(sessions) != 1:
        raise _bad("one upload holds one participant's session: every clip needs the same "
                   f"subject and session (got subjects {sorted(subjects)}, "
                   f"sessions {sorted(sessions)})")
    participant, session = subjects.pop(), sessions.pop()
    ids = [c.id for c in clips]
    if len(set(ids)) != len(ids):
        raise _bad("clip ids must be unique")
    for c in clips:
        named = rf"{re.escape(participant)}-{re.escape(session)}-\d\d-{re.escape(c.prompt)}"
        if not re.fullmatch(named, c.id):
            raise _bad(f"clip id {c.id[:120]!r} must read <subject>-<session>-NN-<prompt> "
                       f"({participant}-{session}-01-{c.prompt})")
        if c.frames_dir != c.id:
            raise _bad(f"clip {c.id}: frames_dir must be the clip id")
    extra = sorted(set(folders) - set(ids))
    if extra:
        raise _bad(f"frames in {extra[0]}/ belong to no clip of the manifest")
    frames: dict[str, list[bytes]] = {}
    exts: dict[str, str] = {}
    for c in clips:
        frames[c.id], exts[c.id] = _check_clip(c, folders.get(c.id))
    n_frames = sum(len(f) for f in frames.values())
    if n_frames > limits.max_frames:
        raise _bad(f"the upload holds {n_frames} frames; at most {limits.max_frames}",
                   "too_large", 413)
    for cid, fr in frames.items():
        _decode_frames(cid, fr, exts[cid], limits)
    return Upload(participant, session, list(doc["clips"]), frames, exts,
                  n_bytes=sum(len(b) for fr in frames.values() for b in fr))


# --- the collection on disk ------------------------------------------------------------------


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_matches(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class Collection:
    """The clips stored under one folder; one writer at a time (a lock file, a thread lock)."""

    def __init__(self, root: str | Path, limits: Limits = Limits()) -> None:
        self.root, self.limits = Path(root), limits
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._lockfile = open(self.root / ".lock", "a")  # noqa: SIM115 (held until close)
        except OSError as e:
            raise CollectError(500, "collect_dir", f"cannot collect into {self.root}: "
                               f"{e.strerror or e}") from None
        try:
            fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lockfile.close()
            raise CollectError(500, "collect_dir", f"{self.root} is in use by another `utjima "
                               "serve --collect`; stop it or choose another folder") from None
        self._lock = threading.Lock()
        self.incoming = self.root / ".incoming"
        shutil.rmtree(self.incoming, ignore_errors=True)  # leftovers of a crash
        self.incoming.mkdir()
        self.entries = self._read_manifest()
        self.total_bytes = sum(_dir_bytes(p) for p in self.root.iterdir()
                               if p.is_dir() and not p.name.startswith("."))

    def close(self) -> None:
        self._lockfile.close()

    def _read_manifest(self) -> list[dict]:
        path = self.root / MANIFEST
        if not path.is_file():
            return []
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise CollectError(500, "collect_dir", f"{path} is not readable JSON: {e}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("crop") != "full":
            raise CollectError(500, "collect_dir", f"{path} is not a capture collection "
                               f"(format {FORMAT!r}, crop 'full'): choose an empty folder")
        return list(doc.get("clips", []))

    def _write_manifest(self, entries: list[dict]) -> None:
        with atomic_write(self.root / MANIFEST) as tmp:
            doc = {"format": FORMAT, "crop": "full", "clips": entries}
            tmp.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.entries = entries

    def _participant(self, pid: str) -> dict | None:
        path = self.root / pid / PARTICIPANT
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise CollectError(500, "collect_dir", f"{path} is unreadable ({e}): the operator "
                               "must repair or remove it") from None

    def _owner(self, pid: str, token: str | None) -> dict:
        meta = self._participant(pid)
        if meta is None:
            raise CollectError(404, "no_participant", f"no clips are stored for {pid}")
        if token is None or not token_matches(_sha256(token), meta["token_sha256"]):
            raise CollectError(403, "bad_participant_token", f"that is not {pid}'s token")
        return meta

    def store(self, up: Upload, participant_token: str | None) -> dict:
        """Write a checked upload; -> the receipt (with a new participant token the first
        time this participant id uploads)."""
        with self._lock:
            pid = up.participant
            meta = self._participant(pid)
            issued = None
            if meta is None:
                issued = new_token()
                meta = {"participant": pid, "token_sha256": _sha256(issued), "uploads": []}
            elif participant_token is None or not token_matches(_sha256(participant_token),
                                                                meta["token_sha256"]):
                raise CollectError(409, "participant_taken", f"participant id {pid} already "
                                   "has clips here: send its token, or choose another id")
            have = {e["id"] for e in self.entries}
            again = [e["id"] for e in up.entries if e["id"] in have]
            if again:
                raise CollectError(409, "already_uploaded", f"session {up.session} is already "
                                   f"stored ({again[0]})")
            if self.total_bytes + up.n_bytes > self.limits.max_total_bytes:
                raise CollectError(507, "collection_full", "the collection is full: tell the "
                                   "operator (or download the zip and send it another way)")
            stage = self._stage(up)
            pdir = self.root / pid
            pdir.mkdir(exist_ok=True)
            for e in up.entries:
                os.replace(stage / e["id"], pdir / e["id"])
            stage.rmdir()
            meta["uploads"].append({"session": up.session, "clips": len(up.entries),
                                    "frames": up.n_frames, "bytes": up.n_bytes,
                                    "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
            with atomic_write(pdir / PARTICIPANT) as tmp:
                tmp.write_text(json.dumps(meta, indent=1) + "\n")
            stored = [{**e, "frames_dir": f"{pid}/{e['id']}"} for e in up.entries]
            self._write_manifest(self.entries + stored)
            self.total_bytes += up.n_bytes
        receipt = {"participant": pid, "session": up.session,
                   "clips": [e["id"] for e in up.entries], "frames": up.n_frames,
                   "bytes": up.n_bytes}
        if issued:
            receipt["participant_token"] = issued
        return receipt

    def _stage(self, up: Upload) -> Path:
        """The upload's frames written under .incoming/, one folder per clip."""
        stage = self.incoming / secrets.token_hex(8)
        try:
            for cid, frames in up.frames.items():
                d = stage / cid
                d.mkdir(parents=True)
                for i, body in enumerate(frames):
                    (d / f"{i:06d}{up.ext[cid]}").write_bytes(body)
        except OSError as e:
            shutil.rmtree(stage, ignore_errors=True)
            raise CollectError(507, "write_failed", f"the clips could not be written: "
                               f"{e.strerror or e}") from None
        return stage

    def clips_of(self, pid: str, token: str | None) -> dict:
        """What is stored for a participant (needs their token)."""
        with self._lock:
            meta = self._owner(pid, token)
            ids = [e["id"] for e in self.entries if e.get("subject") == pid]
        return {"participant": pid, "clips": ids, "uploads": meta["uploads"]}

    def delete(self, pid: str, token: str | None) -> dict:
        """Remove every clip of a participant (needs their token): manifest first, then files."""
        with self._lock:
            self._owner(pid, token)
            keep = [e for e in self.entries if e.get("subject") != pid]
            gone = len(self.entries) - len(keep)
            self._write_manifest(keep)
            trash = self.incoming / f"deleted-{secrets.token_hex(8)}"
            os.replace(self.root / pid, trash)  # the folder holds participant.json: it exists
            freed = _dir_bytes(trash)
            shutil.rmtree(trash)
            self.total_bytes = max(0, self.total_bytes - freed)
        return {"participant": pid, "deleted_clips": gone}


def share_link(base_url: str, token: str) -> str:
    """The link the operator shares: the token rides in the fragment, which browsers never
    send to a server (no logs, no Referer)."""
    return f"{base_url.rstrip('/')}/capture#token={token}"


def describe_limits(limits: Limits) -> dict[str, Any]:
    return {"max_upload_bytes": limits.max_upload_bytes, "max_frames": limits.max_frames,
            "max_clips": limits.max_clips, "max_frame_bytes": limits.max_frame_bytes,
            "max_frame_side": limits.max_frame_side}
