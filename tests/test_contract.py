"""utjima.contract: model.json is validated loudly; each bad variant is refused with a
message that names the file, the key and what is allowed."""

import copy
import json
import re
import shutil

import pytest

from utjima import EMOTIONS
from utjima.contract import (
    FILE_ROLES,
    ContractError,
    default_model_dir,
    load_contract,
    validate,
)
from utjima.utils import UtjimaError

GOOD = json.loads((default_model_dir() / "model.json").read_text())
DROP = object()


def _with(keys: tuple, value) -> dict:
    """A copy of the bundled model.json with d[k0][k1]... set to `value` (or deleted)."""
    d = copy.deepcopy(GOOD)
    parent = d
    for k in keys[:-1]:
        parent = parent[k]
    if value is DROP:
        del parent[keys[-1]]
    else:
        parent[keys[-1]] = value
    return d


def test_the_bundled_model_json_is_valid():
    validate(GOOD)
    c = load_contract()  # and every file's sha256 matches
    assert (c.size, c.channels, c.classes) == (64, "gray", list(EMOTIONS))
    assert 0 < c.smile_threshold < 1 and set(c.data["files"]) <= set(FILE_ROLES)


@pytest.mark.parametrize("keys, value, message", [
    (("schema",), "utjima.model/0", "schema is 'utjima.model/0', expected 'utjima.model/1'"),
    (("schema",), DROP, "schema is None, expected 'utjima.model/1'"),
    (("classes",), list(EMOTIONS)[::-1], "classes ['neutral', "),
    (("classes",), DROP, "missing key 'classes'"),
    (("input", "channels"), "bgr", "input.channels must be 'gray' or 'rgb', got 'bgr'"),
    (("input", "size"), 8, "input.size must be an int in 16..512, got 8"),
    (("input", "size"), "64", "input.size must be an int in 16..512, got '64'"),
    (("input",), DROP, "missing key 'input'"),
    (("streaming", "feature_dim"), DROP, "streaming: missing key 'feature_dim'"),
    (("crop",), DROP, "missing key 'crop'"),
    (("thresholds", "smile"), 1.0, "thresholds.smile must be a number in (0, 1), got 1.0"),
    (("thresholds", "smile"), "high", 'thresholds.smile must be a number in (0, 1), got "high"'),
    (("thresholds", "smile"), None, "thresholds.smile must be a number in (0, 1), got null"),
    (("thresholds", "smile"), True, "thresholds.smile must be a number in (0, 1), got true"),
    (("judge", "min_laugh_ms"), -5, "judge: JudgeConfig: min_laugh_ms must be >= 0"),
    (("judge", "threshold"), "0.5", "judge: JudgeConfig.threshold must be a finite number"),
    (("judge", "loudness"), 3, "judge: JudgeConfig: unknown keys: loudness"),
    (("judge",), [1, 2], "judge must be an object of JudgeConfig fields"),
    (("thresholds", "smile"), DROP, "thresholds: missing key 'smile'"),
    (("files", "mystery"), {"path": "m.onnx", "sha256": "0"},
     "unknown file roles ['mystery']; valid: ['seed', 'encoder'"),
    (("files", "step"), DROP, "files.step is required"),
    (("files", "encoder", "sha256"), DROP, "files.encoder: missing key 'sha256'"),
])
def test_a_bad_model_json_is_refused_with_a_clear_message(keys, value, message):
    with pytest.raises(ContractError, match=re.escape(message)) as e:
        validate(_with(keys, value), "some/model.json")
    assert str(e.value).startswith("some/model.json")


def test_contract_errors_are_user_errors():
    assert issubclass(ContractError, UtjimaError) and issubclass(ContractError, ValueError)


def test_load_contract_names_what_is_wrong_with_the_folder(tmp_path):
    with pytest.raises(ContractError, match="does not exist"):
        load_contract(tmp_path / "nope")
    with pytest.raises(ContractError,
                       match="has no model.json; export a model with `utjima export`"):
        load_contract(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ContractError, match="is not valid JSON"):
        load_contract(tmp_path)
    shutil.copy(default_model_dir() / "model.json", tmp_path / "model.json")  # no files beside it
    with pytest.raises(ContractError, match=r"files\.\w+ -> .* is missing"):
        load_contract(tmp_path)
    c = load_contract(tmp_path, verify=False)
    with pytest.raises(ContractError, match="has no file with role 'nope'; it lists"):
        c.path("nope")
