"""Inference with the exported ONNX files (onnxruntime, numpy; never torch).

`SmileModel` loads a model folder through its `model.json` and scores faces:
- `score_image(rgb)`: every face in a photo; a still is a clip of one repeated frame,
  exactly how stills were shown to the model in training.
- `stream()`: a `Stream` for one player's camera or a video file: detect, crop, encode
  once per frame, then re-run the step over the window picked by utjima.streaming.
The browser detector (utjima/web/detector/) does the same, reading the same model.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utjima.contract import Contract, load_contract
from utjima.faces import (
    LIVE,
    CropPolicy,
    Face,
    FaceDetector,
    FaceTracker,
    LiveConfig,
    brighten_crop,
    crop_face,
    detect_in_context,
    merge_faces,
)
from utjima.streaming import FeatureWindow, window_indices
from utjima.utils import ort_session


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@dataclass(frozen=True)
class FaceScore:
    face: Face
    smile_prob: float
    emotion: dict[str, float]  # class name -> probability


class SmileModel:
    def __init__(self, model_dir: str | Path | None = None, threads: int = 1, int8: bool = False):
        self.contract: Contract = load_contract(model_dir)
        c = self.contract
        self.threads = threads
        self.encoder = ort_session(c.path("encoder_int8" if int8 else "encoder"), threads)
        self.stepper = ort_session(c.path("step"), threads)
        self.policy = CropPolicy.from_json(c.crop)
        # the live path's search (utjima.faces.LiveConfig); models exported before it had
        # none: they get the defaults here (the browser refuses them: re-export)
        live = c.streaming.get("live")
        self.live = LIVE if live is None else LiveConfig.from_json(live)
        self.classes = c.classes
        self.n_frames = int(c.streaming["n_frames"])
        self._detectors: dict[str, FaceDetector] = {}

    def detector(self, kind: str = "short") -> FaceDetector:
        if kind not in ("short", "full"):
            raise ValueError(f"detector kind must be 'short' or 'full', got {kind!r}")
        if kind not in self._detectors:
            role = "face_detector" if kind == "short" else "face_detector_full"
            self._detectors[kind] = FaceDetector(self.contract.path(role), kind=kind,
                                                 threads=self.threads,
                                                 **self.policy.detector_kwargs())
        return self._detectors[kind]

    def crop(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """(H, W, 3) uint8 -> (C, S, S) float32 0..1, by the model's crop policy."""
        return crop_face(rgb, face, self.policy, channels=self.contract.channels)

    def encode(self, crops: np.ndarray) -> np.ndarray:
        """(N, C, S, S) -> (N, F)."""
        return self.encoder.run(None, {"crop": np.ascontiguousarray(crops, dtype=np.float32)})[0]

    def step(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, T, F) -> smile_prob (N,), emotion_logits (N, 7)."""
        smile, emo = self.stepper.run(None,
                                      {"window": np.ascontiguousarray(windows, dtype=np.float32)})
        return smile, emo

    def score_crops(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Still crops (N, C, S, S) -> smile_prob (N,), emotion probs (N, 7)."""
        feats = self.encode(crops)                                   # (N, F)
        window = np.repeat(feats[:, None], self.n_frames, axis=1)    # (N, F) -> (N, T, F)
        smile, emo = self.step(window)
        return smile, softmax(emo)

    def photo_faces(self, rgb: np.ndarray, context: bool = True) -> list[Face]:
        """The short-range model (close-up faces) merged with the full-range one plus tiles
        (small faces in group photos); when both find nothing and `context`, the short-range
        model on the picture centred in a grey canvas (a face filling the picture: a crop, a
        profile photo)."""
        faces = merge_faces(self.detector("short").detect(rgb),
                            self.detector("full").detect(rgb, tiles="auto"),
                            iou=self.policy.detector_kwargs()["iou"])
        if not faces and context:
            faces = detect_in_context(self.detector("short"), rgb)
        return faces

    def score_image(self, rgb: np.ndarray, kind: str = "photo",
                    max_faces: int = 20) -> list[FaceScore]:
        """kind "photo": `photo_faces`; "short" or "full": that model alone."""
        if kind == "photo":
            faces = self.photo_faces(rgb)
        else:
            faces = self.detector(kind).detect(rgb, tiles="auto" if kind == "full" else None)
        faces = faces[:max_faces]
        if not faces:
            return []
        smile, emo = self.score_crops(np.stack([self.crop(rgb, f) for f in faces]))
        return [FaceScore(f, float(s), dict(zip(self.classes, map(float, e), strict=True)))
                for f, s, e in zip(faces, smile, emo, strict=True)]

    def clip_probs(self, frames: np.ndarray, times_ms, crop: str = "full") -> np.ndarray:
        """A recorded clip's per-frame smile_prob, (N,) float64, NaN where no face was found.
        crop "full" (camera frames, what the capture page records): the live path, `stream`;
        crop "face" (face crops made by the crop policy): resized, encoded, and windowed by
        the streaming rule."""
        if crop == "full":
            stream = self.stream()
            out = [stream.process(float(t), f)["smile_prob"]
                   for t, f in zip(times_ms, frames, strict=True)]
            return np.array([np.nan if p is None else p for p in out], np.float64)
        from utjima.data.augment import plain_frames

        c, size = (1 if self.contract.channels == "gray" else 3), self.contract.size
        feats = np.concatenate([self.encode(plain_frames(frames[i : i + 64], size, c))
                                for i in range(0, len(frames), 64)])            # (N, F)
        times = [float(t) for t in times_ms]
        interval = float(self.contract.streaming["frame_interval_ms"])
        idx = np.array([window_indices(times, t, self.n_frames, interval) for t in times])
        return self.step(feats[idx])[0].astype(np.float64)              # (N, T, F) -> (N,)

    def stream(self, kind: str = "short") -> Stream:
        s = self.contract.streaming
        tracker = FaceTracker(self.detector(kind), self.live,
                              detect_interval_ms=float(s.get("detect_interval_ms", 0.0)))
        return Stream(self, tracker, FeatureWindow(int(s["n_frames"]),
                                                   float(s["frame_interval_ms"])))


@dataclass
class Stream:
    """One player's camera: a FaceTracker follows one face (utjima.faces, "Live path"), its
    crop brightened when dim (`brighten_crop`); the window resets when it is gone.
    web/detector/pipeline.js does the same."""

    model: SmileModel
    tracker: FaceTracker
    window: FeatureWindow

    def reset(self) -> None:
        """A new round: clear the window and search for the face afresh."""
        self.window.reset()
        self.tracker.reset()

    def feature(self, t_ms: float, rgb: np.ndarray) -> tuple[Face | None, np.ndarray | None]:
        """The tracked face in this frame and its encoder feature (F,); (None, None) when
        there is none. The window is not touched."""
        face = self.tracker.update(t_ms, rgb)
        if face is None:
            return None, None
        crop = brighten_crop(self.model.crop(rgb, face), self.model.live)
        return face, self.model.encode(crop[None])[0]

    def process(self, t_ms: float, rgb: np.ndarray) -> dict:
        face, feat = self.feature(t_ms, rgb)
        if face is None:
            self.window.reset()
            return {"t_ms": t_ms, "face": False, "box": None, "smile_prob": None, "emotion": None}
        window = self.window.push(t_ms, feat)                            # (T, F)
        smile, emo = self.model.step(window[None])
        probs = softmax(emo[0])
        return {"t_ms": t_ms, "face": True, "box": [round(float(v), 1) for v in face.box],
                "smile_prob": float(smile[0]),
                "emotion": dict(zip(self.model.classes, map(float, probs), strict=True))}
