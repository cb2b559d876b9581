"""Server-side inference for `POST /api/predict` (`utjima serve --predict`; off by default).

The game never needs it: every player's browser runs the detector, and no video reaches
the server. It is for clients that cannot run the detector themselves, and for the
deployment table in the README (benchmarks/bench_deploy.py: a frame over HTTP against
the browser and native onnxruntime).

- `read_frame(data, max_pixels)`: a JPEG or PNG's size from its header (`image_size`,
  which reads no pixel), refused when it has more than `max_pixels` (a 20000x20000 PNG is
  431 KB, and 1.2 GB decoded);
- `Predictor`: `utjima.runtime.SmileModel` (onnxruntime, never torch) behind a bounded
  pool of worker threads. `await predictor.run(frames, detector)` never blocks the event
  loop; more than `predict_workers + predict_queue` requests at once are refused (Busy).
  One frame: every face, scored as a still (as `utjima predict` scores a photo). A burst
  (several frames with their times): the largest face tracked through the stream, as a
  player's camera is, and the laughs the judge finds in it (`judge.segments`).
"""

from __future__ import annotations

import asyncio
import io
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from utjima.server.settings import Settings
from utjima.utils import UtjimaError

PNG_MAGIC, JPEG_MAGIC = b"\x89PNG\r\n\x1a\n", b"\xff\xd8"
# JPEG start-of-frame markers (they carry the size): C0..CF but DHT, JPG and DAC
SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
MAX_BURST_MS = 10_000.0  # a burst spans at most this much time (t_ms, first to last)


class FrameError(UtjimaError):
    """A frame the server will not decode; `status` and `code` go into the HTTP answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Busy(UtjimaError):
    """Every worker is busy and the queue is full."""


@dataclass(frozen=True)
class Frame:
    t_ms: float
    data: bytes  # the encoded JPEG or PNG
    width: int  # from the header
    height: int


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR or a JPEG's start-of-frame segment, reading no
    pixel; None when `data` is neither (or its header is cut short)."""
    if data.startswith(PNG_MAGIC) and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if not data.startswith(JPEG_MAGIC):
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # no length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in SOF and i + 9 <= len(data):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        if length < 2:
            return None
        i += 2 + length
    return None


def read_frame(data: bytes, t_ms: float, max_pixels: int) -> Frame:
    """Check a JPEG/PNG by its header alone: format, size, pixel count. Nothing decoded."""
    if not data:
        raise FrameError(400, "bad_image", "the frame is empty")
    size = image_size(data)
    if size is None:
        raise FrameError(415, "bad_image", "a frame must be a JPEG or PNG image")
    w, h = size
    if w * h > max_pixels:
        raise FrameError(413, "too_many_pixels", (
            f"the frame is {w}x{h} = {w * h} pixels (read from its header); the limit is "
            f"{max_pixels}: scale it down first"))
    return Frame(t_ms=t_ms, data=data, width=w, height=h)


def decode(frame: Frame) -> np.ndarray:
    """(H, W, 3) uint8 RGB, EXIF orientation applied; FrameError for a broken file."""
    try:
        with Image.open(io.BytesIO(frame.data), formats=("JPEG", "PNG")) as im:
            if im.size != (frame.width, frame.height):
                raise ValueError("its header is inconsistent")
            im.load()  # a truncated file raises here instead of decoding half a picture
            rgb = ImageOps.exif_transpose(im).convert("RGB")
    except Exception as e:  # noqa: BLE001 (untrusted bytes: any decoder failure is a 400)
        raise FrameError(400, "bad_image", f"the frame cannot be decoded: {e}") from None
    return np.asarray(rgb)


def _face(fs, threshold: float) -> dict[str, Any]:
    return {"box": [round(float(v), 1) for v in fs.face.box], "score": round(fs.face.score, 4),
            "smile_prob": round(fs.smile_prob, 4), "smiling": fs.smile_prob >= threshold,
            "emotion": {k: round(v, 4) for k, v in fs.emotion.items()}}


class Predictor:
    """The bundled (or --model) model behind `predict_workers` threads."""

    def __init__(self, settings: Settings) -> None:
        from utjima.runtime import SmileModel

        self.s = settings
        try:
            self.model = SmileModel(settings.model_dir, threads=1)
            self.model.detector("short"), self.model.detector("full")  # open them now
        except UtjimaError:
            raise
        except Exception as e:  # onnxruntime's errors for a broken file (InvalidProtobuf, ...)
            raise UtjimaError(f"--predict: the model in {settings.model_dir} cannot be "
                              f"loaded: {str(e).splitlines()[0][:200]}") from None
        c = self.model.contract
        self.threshold = c.smile_threshold
        self.judge = c.judge_config()
        self.pool = ThreadPoolExecutor(settings.predict_workers, thread_name_prefix="predict")
        self.admitted = 0  # requests running or waiting for a worker

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def run(self, frames: list[Frame], detector: str = "short") -> dict[str, Any]:
        """Score the frames in a worker thread. Raises Busy when the pool and its queue
        are full, FrameError for a frame that does not decode."""
        if self.admitted >= self.s.predict_workers + self.s.predict_queue:
            raise Busy(f"{self.admitted} predictions are running or waiting; try again soon")
        self.admitted += 1
        t0 = time.perf_counter()
        try:
            loop = asyncio.get_running_loop()
            out = await loop.run_in_executor(self.pool, self._infer, frames, detector, t0)
        finally:
            self.admitted -= 1
        out["ms"]["total"] = round((time.perf_counter() - t0) * 1000, 2)
        return out

    def _infer(self, frames: list[Frame], detector: str, t_submit: float) -> dict[str, Any]:
        t0 = time.perf_counter()
        images = [decode(f) for f in frames]
        t1 = time.perf_counter()
        if len(frames) == 1:  # a still: every face
            faces = [_face(fs, self.threshold)
                     for fs in self.model.score_image(images[0], kind=detector)]
            rows = [{"t_ms": frames[0].t_ms, "faces": faces}]
            laughs: list[dict[str, float]] = []
        else:  # a burst: one tracked face, like a player's camera, and the judge on it
            from utjima.judge import segments

            stream, rows, samples = self.model.stream(detector), [], []
            for f, rgb in zip(frames, images, strict=True):
                r = stream.process(f.t_ms, rgb)
                samples.append((f.t_ms, r["smile_prob"], r["face"]))
                faces = [] if not r["face"] else [{
                    "box": r["box"], "smile_prob": round(r["smile_prob"], 4),
                    "smiling": r["smile_prob"] >= self.threshold,
                    "emotion": {k: round(v, 4) for k, v in r["emotion"].items()}}]
                rows.append({"t_ms": f.t_ms, "faces": faces})
            laughs = [{k: round(v, 4) for k, v in seg.items()}
                      for seg in segments(samples, self.judge)]
        t2 = time.perf_counter()
        last = rows[-1]["faces"]
        top = max(last, key=lambda x: x["smile_prob"]) if last else None
        for f, row in zip(frames, rows, strict=True):
            row["width"], row["height"] = f.width, f.height
        return {
            "model": self.model.contract.data.get("name"), "detector": detector,
            "frames": rows,
            "judge": {"threshold": self.threshold, "min_laugh_ms": self.judge.min_laugh_ms,
                      "smiling": bool(top and top["smiling"]), "laughs": laughs},
            "ms": {"queue": round((t0 - t_submit) * 1000, 2),
                   "decode": round((t1 - t0) * 1000, 2), "model": round((t2 - t1) * 1000, 2)},
        }
