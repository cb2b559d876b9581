"""The capture page's static side (utjima/web/capture/, docs/capture.md): the protocol file
agrees with the package and the docs, the server serves the page, and no game page holds
a way to record (the browser test checks the same at run time)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_helpers import fake_model_dir

from utjima import EMOTIONS
from utjima.data import clips as clipfmt
from utjima.server import collect
from utjima.server.app import create_app
from utjima.server.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
WEB = REPO_ROOT / "utjima" / "web"
PROTOCOL = json.loads((WEB / "capture" / "protocol.json").read_text())
PROTOCOL_JS = (WEB / "capture" / "protocol.js").read_text()


def _js_const(name: str) -> str:
    return json.loads(re.search(rf'export const {name} = ("[^"]*");', PROTOCOL_JS).group(1))


def test_the_page_and_the_server_name_the_same_formats_and_emotions():
    assert _js_const("FORMAT") == clipfmt.FORMAT == collect.FORMAT
    assert _js_const("CAPTURE") == collect.CAPTURE == PROTOCOL["format"]
    js_emotions = json.loads(re.search(r"export const EMOTIONS = (\[[^\]]*\]);",
                                       PROTOCOL_JS).group(1))
    assert tuple(js_emotions) == EMOTIONS


def test_the_protocol_covers_what_the_judge_must_tell_apart_and_the_docs_list_it():
    prompts = {p["id"]: p for p in PROTOCOL["prompts"]}
    kinds = {p["kind"] for p in prompts.values()}
    assert kinds == {"rest", "smile", "laugh_like", "hidden"}
    for pid in ("neutral", "look_around", "talking", "subtle_smile", "big_smile", "laughing",
                "yawn", "surprise", "grimace", "crying", "covered", "leave"):
        assert pid in prompts, pid
    for p in prompts.values():
        assert p["emotion"] is None or p["emotion"] in EMOTIONS
        assert p["smile"] in (0, 1, None) and p["clip_smile"] in (0, 1, None)
        assert (p["face"] == 0) == (p["kind"] == "hidden") == (p["smile"] is None)
        assert (p["smile"] == 1) == (p["kind"] == "smile")
        labelled = p["duration_ms"] - PROTOCOL["margin_start_ms"] - PROTOCOL["margin_end_ms"]
        assert labelled >= 3000, p["id"]  # at least 3 s of labelled frames per prompt
    # the model reads a frame every frame_interval_ms: capture at least that often
    model = json.loads((REPO_ROOT / "utjima" / "models" / "model.json").read_text())
    assert PROTOCOL["fps"] >= 1000 / model["streaming"]["frame_interval_ms"]
    doc = (REPO_ROOT / "docs" / "capture.md").read_text()
    table = re.findall(r"^\| \d+ \| `([a-z_]+)` \| [^|]* \| (\d+) \|", doc, re.M)
    assert table == [(p["id"], str(p["duration_ms"] // 1000)) for p in PROTOCOL["prompts"]]
    recorded = sum(p["duration_ms"] for p in PROTOCOL["prompts"]) / 1000
    assert f"{len(prompts)} prompts, {recorded:g} s recorded" in doc


GAME_PAGES = ["index.html", "room.html", "history.html", "leaderboard.html", "demo.html"]
RECORDING = re.compile(r"MediaRecorder|\.toBlob\(|convertToBlob|toDataURL|api/collect|capture/")


def test_no_game_page_or_module_can_record():
    files = [WEB / p for p in GAME_PAGES] + sorted((WEB / "game").glob("*.js")) \
        + sorted((WEB / "detector").glob("*.js")) + sorted((WEB / "demo").glob("*.js")) \
        + [WEB / "judge.js"]
    hits = {str(f.relative_to(WEB)): RECORDING.findall(f.read_text()) for f in files}
    # one exception: the laugh replay keeps small JPEG frames in memory during rounds and
    # sends them only to the other players' browsers over the WebRTC data channel
    assert {k: v for k, v in hits.items() if v} == {"game/replay.js": [".toBlob("]}
    replay = (WEB / "game" / "replay.js").read_text()
    assert not re.search(r"fetch\(|XMLHttpRequest|WebSocket|sendBeacon|/api/|MediaRecorder|"
                         r"download|localStorage\.setItem\([^)]*blob", replay)
    assert 'RECORDING_PHASES = new Set(["countdown", "round", "verdict"])' in replay
    # and the capture page is where recording lives
    assert RECORDING.search((WEB / "capture" / "recorder.js").read_text())


@pytest.fixture
def client(tmp_path):
    s = Settings(model_dir=fake_model_dir(tmp_path / "model"), data_dir=tmp_path / "data")
    with TestClient(create_app(s)) as c:
        yield c


def test_the_server_serves_the_capture_page_and_its_protocol(client):
    r = client.get("/capture")
    assert r.status_code == 200 and 'src="/static/capture/capture.js"' in r.text
    assert r.headers["cross-origin-embedder-policy"] == "require-corp"
    assert client.get("/static/capture/protocol.json").json()["id"] == PROTOCOL["id"]
    for name in ("capture.js", "protocol.js", "quality.js", "recorder.js", "strings.js",
                 "zip.js", "capture.css"):
        assert client.get(f"/static/capture/{name}").status_code == 200, name
