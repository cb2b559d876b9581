"""Helpers for tests of the server (and for anyone scripting it): a stand-in model folder
and a clock the test moves by hand. No pytest import, so tests and tools share them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from utjima import EMOTIONS
from utjima.contract import MODEL_JSON, SCHEMA, file_entry
from utjima.judge import JudgeConfig


def fake_model_dir(path: Path, threshold: float = 0.5) -> Path:
    """A folder whose model.json passes `load_contract` (placeholder bytes, real sha256s):
    enough for the server, which only serves the files and reads the judge rules."""
    path.mkdir(parents=True, exist_ok=True)
    files = {}
    for role, name in (("encoder", "encoder.onnx"), ("step", "step.onnx"),
                       ("face_detector", "face_detector_short.onnx")):
        (path / name).write_bytes(f"placeholder {role}".encode())
        files[role] = file_entry(path / name, path)
    data = {
        "schema": SCHEMA, "name": "fake", "classes": list(EMOTIONS),
        "input": {"size": 64, "channels": "gray", "range": [0, 1]},
        "crop": {}, "streaming": {"n_frames": 5, "frame_interval_ms": 100, "feature_dim": 8},
        "files": files, "thresholds": {"smile": threshold},
        "judge": JudgeConfig(threshold=threshold).to_dict(),
    }
    (path / MODEL_JSON).write_text(json.dumps(data, indent=2))
    return path


@dataclass
class FakeClock:
    """A game clock the test advances: `Settings(clock=clock)`; `clock.advance(100)`."""

    now_ms: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now_ms

    def advance(self, ms: float) -> float:
        self.now_ms += ms
        return self.now_ms
