"""`model.json`: the single source of the model contract, written beside the weights.

Every reader (the `predict` CLI, the server, the browser detector) takes input size,
channels, crop policy, streaming window, class names and thresholds from here and
hard-codes none of them. `load_contract(dir)` validates the file loudly and checks every
listed file's sha256, so a folder that does not match its `model.json` fails at load.

Schema "utjima.model/1": what `utjima export` writes (extra keys are kept verbatim).
`validate` checks the keys marked *; the others are read where they are named.
  schema*                               "utjima.model/1"
  name, created                         str
  model_config                          the ModelConfig the weights were built with
  classes*                              7 emotion names, the order of emotion_logits
  input*   {size, channels: "gray"|"rgb", range: [0, 1], gray_weights, normalisation}
           the encoder takes (N, C, size, size) float in `range`; normalisation is
           inside the graph
  crop*    face crop policy, see utjima.faces.CropPolicy
  streaming*{n_frames, frame_interval_ms, feature_dim, detect_interval_ms, live, rule, reset}
           see utjima.streaming; the window is cleared when the face is lost; live: how
           the camera's face is found and followed (utjima.faces.LiveConfig)
  files*   {role: {path, sha256, bytes, inputs, outputs}}; roles: seed, encoder,
           encoder_int8, step, face_detector (short range), face_detector_full
  thresholds* {smile: float in (0, 1)}
  judge    default judge rules (utjima.judge.JudgeConfig fields; server, `predict`)
  browser  {encoder: the file role the browser loads (web/detector/pipeline.js)}
  opset, parity_max_abs_diff, metrics, provenance   records
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utjima import EMOTIONS
from utjima.utils import UtjimaError, sha256_file

SCHEMA = "utjima.model/1"
MODEL_JSON = "model.json"
FILE_ROLES = ("seed", "encoder", "encoder_int8", "step", "face_detector", "face_detector_full")
REQUIRED_ROLES = ("encoder", "step", "face_detector")


class ContractError(UtjimaError, ValueError):
    """model.json is missing, malformed, or does not match the files beside it."""


def default_model_dir() -> Path:
    """The bundled default model, shipped inside the package."""
    return Path(__file__).resolve().parent / "models"


@dataclass(frozen=True)
class Contract:
    dir: Path
    data: dict[str, Any]

    # Convenience views over `data`; the dict stays the source.
    @property
    def size(self) -> int:
        return int(self.data["input"]["size"])

    @property
    def channels(self) -> str:
        return self.data["input"]["channels"]

    @property
    def classes(self) -> list[str]:
        return list(self.data["classes"])

    @property
    def crop(self) -> dict[str, Any]:
        return self.data["crop"]

    @property
    def streaming(self) -> dict[str, Any]:
        return self.data["streaming"]

    @property
    def smile_threshold(self) -> float:
        return float(self.data["thresholds"]["smile"])

    def judge_config(self, threshold: float | None = None):
        """model.json's judge rules at `threshold` (default: the model's smile threshold).
        Raises TypeError/ValueError when that threshold does not fit the rules."""
        from utjima.judge import JudgeConfig

        thr = self.smile_threshold if threshold is None else threshold
        return JudgeConfig.from_dict({**self.data.get("judge", {}), "threshold": thr})

    def path(self, role: str) -> Path:
        if role not in self.data["files"]:
            raise ContractError(
                f"{self.dir / MODEL_JSON} has no file with role {role!r}; "
                f"it lists {sorted(self.data['files'])}"
            )
        return self.dir / self.data["files"][role]["path"]

    def has(self, role: str) -> bool:
        return role in self.data["files"]


def _need(d: dict, key: str, where: str) -> Any:
    if key not in d:
        raise ContractError(f"{where}: missing key {key!r}")
    return d[key]


def validate(data: dict[str, Any], where: str = MODEL_JSON) -> None:
    """Raise ContractError naming the first thing wrong with a model.json dict."""
    if data.get("schema") != SCHEMA:
        raise ContractError(f"{where}: schema is {data.get('schema')!r}, expected {SCHEMA!r}")
    classes = _need(data, "classes", where)
    if list(classes) != list(EMOTIONS):
        raise ContractError(f"{where}: classes {classes} differ from {list(EMOTIONS)}")
    inp = _need(data, "input", where)
    if inp.get("channels") not in ("gray", "rgb"):
        raise ContractError(f"{where}: input.channels must be 'gray' or 'rgb', "
                            f"got {inp.get('channels')!r}")
    if not isinstance(inp.get("size"), int) or not 16 <= inp["size"] <= 512:
        raise ContractError(f"{where}: input.size must be an int in 16..512, "
                            f"got {inp.get('size')!r}")
    for key in ("n_frames", "frame_interval_ms", "feature_dim"):
        _need(_need(data, "streaming", where), key, f"{where}: streaming")
    _need(data, "crop", where)
    thr = _need(_need(data, "thresholds", where), "smile", f"{where}: thresholds")
    if (isinstance(thr, bool) or not isinstance(thr, (int, float)) or not math.isfinite(thr)
            or not 0.0 < thr < 1.0):
        raise ContractError(f"{where}: thresholds.smile must be a number in (0, 1), "
                            f"got {json.dumps(thr)}")
    if "judge" in data:  # the rules the server and `predict` apply: checked where they load
        from utjima.judge import JudgeConfig

        if not isinstance(data["judge"], dict):
            raise ContractError(f"{where}: judge must be an object of JudgeConfig fields")
        try:
            JudgeConfig.from_dict(data["judge"])
        except (TypeError, ValueError) as e:
            raise ContractError(f"{where}: judge: {str(e).split('; got')[0]}") from None
    files = _need(data, "files", where)
    unknown = set(files) - set(FILE_ROLES)
    if unknown:
        raise ContractError(f"{where}: unknown file roles {sorted(unknown)}; "
                            f"valid: {list(FILE_ROLES)}")
    for role in REQUIRED_ROLES:
        if role not in files:
            raise ContractError(f"{where}: files.{role} is required "
                                f"(roles present: {sorted(files)})")
    for role, entry in files.items():
        _need(entry, "path", f"{where}: files.{role}")
        _need(entry, "sha256", f"{where}: files.{role}")


def load_contract(model_dir: str | Path | None = None, verify: bool = True) -> Contract:
    """Load and validate `model_dir/model.json`; with `verify`, check each file's sha256."""
    d = Path(model_dir) if model_dir is not None else default_model_dir()
    mj = d / MODEL_JSON
    if not d.is_dir():
        raise ContractError(f"model folder {d} does not exist")
    if not mj.is_file():
        raise ContractError(f"{d} has no {MODEL_JSON}; export a model with `utjima export`")
    try:
        data = json.loads(mj.read_text())
    except json.JSONDecodeError as e:
        raise ContractError(f"{mj} is not valid JSON: {e}") from e
    validate(data, str(mj))
    if verify:
        for role, entry in data["files"].items():
            p = d / entry["path"]
            if not p.is_file():
                raise ContractError(f"{mj}: files.{role} -> {p} is missing")
            digest = sha256_file(p)
            if digest != entry["sha256"]:
                raise ContractError(
                    f"{mj}: files.{role} -> {p.name} has sha256 {digest[:12]}…, "
                    f"model.json says {entry['sha256'][:12]}…; "
                    "the folder does not match its model.json"
                )
    return Contract(dir=d, data=data)


def file_entry(path: Path, base: Path, **extra: Any) -> dict[str, Any]:
    """A `files.<role>` record for a file written into the model folder `base`."""
    return {
        "path": str(path.relative_to(base)),
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        **extra,
    }
