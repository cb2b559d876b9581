"""The assembled app (utjima/server/app.py, security.py, routes/pages.py): static files,
the model folder, onnxruntime-web, cross-origin isolation and CSP headers, pages, and
that serving never imports torch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_helpers import fake_model_dir

from utjima.contract import ContractError
from utjima.server.app import create_app
from utjima.server.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def settings(tmp_path) -> Settings:
    ort = tmp_path / "ort"
    ort.mkdir()
    (ort / "ort.wasm.min.mjs").write_text("export const ort = 1;")
    (ort / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm\1\0\0\0")
    return Settings(model_dir=fake_model_dir(tmp_path / "model"), data_dir=tmp_path / "data",
                    ort_dir=ort)


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as c:
        yield c


def test_every_response_is_cross_origin_isolated_with_a_same_origin_csp(client):
    for path in ["/", "/r/ABCDEF", "/history", "/leaderboard", "/static/judge.js",
                 "/models/default/model.json", "/vendor/ort/ort.wasm.min.mjs", "/api/leaderboard",
                 "/static/nope.js"]:
        r = client.get(path)
        assert r.headers["cross-origin-opener-policy"] == "same-origin", path
        assert r.headers["cross-origin-embedder-policy"] == "require-corp", path
        assert r.headers["cross-origin-resource-policy"] == "same-origin", path
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "connect-src 'self' ws://testserver wss://testserver" in csp
        assert "https:" not in csp and "*" not in csp


def test_a_forged_host_header_does_not_reach_the_csp(client):
    r = client.get("/", headers={"host": "evil.example; connect-src *"})
    assert "evil" not in r.headers["content-security-policy"]


def test_static_model_and_ort_files_with_the_right_types(client, settings):
    r = client.get("/models/default/model.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json()["schema"] == "utjima.model/1"
    assert client.get("/models/default/encoder.onnx").content == b"placeholder encoder"
    r = client.get("/vendor/ort/ort-wasm-simd-threaded.wasm")
    assert r.headers["content-type"] == "application/wasm"
    r = client.get("/vendor/ort/ort.wasm.min.mjs")
    assert r.headers["content-type"].startswith("text/javascript")
    r = client.get("/static/judge.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/../server/app.py").status_code == 404


def test_pages(client):
    for path, marker in [("/", "landing.js"), ("/r/ABCDEF", "room.js"), ("/history", "history.js"),
                         ("/leaderboard", "leaderboard.js")]:
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
        assert marker in r.text
        assert "http://" not in r.text and "https://" not in r.text  # no CDN, no external fonts
    demo = client.get("/demo")
    assert demo.status_code in (200, 404)  # demo.html belongs to the detector


def test_game_scripts_load_nothing_from_other_origins():
    # no URL with a host (messages may name the schemes: "open the https:// address")
    for f in (REPO_ROOT / "utjima" / "web" / "game").glob("*.js"):
        assert not re.findall(r"https?://[^\s\"'`/),\\]+", f.read_text()), f


def test_missing_onnxruntime_web_says_how_to_fix_it(settings, tmp_path):
    from dataclasses import replace

    app = create_app(replace(settings, ort_dir=tmp_path / "no-such-dir"))
    with TestClient(app) as c:
        r = c.get("/vendor/ort/ort.wasm.min.mjs")
    assert r.status_code == 503 and "make setup" in r.text


def test_an_invalid_model_folder_fails_loudly_at_startup(settings, tmp_path):
    from dataclasses import replace

    bad = tmp_path / "bad"
    fake_model_dir(bad)
    data = json.loads((bad / "model.json").read_text())
    data["thresholds"]["smile"] = 7
    (bad / "model.json").write_text(json.dumps(data))
    with pytest.raises(ContractError, match="thresholds.smile"):
        with TestClient(create_app(replace(settings, model_dir=bad))):
            pass


def test_the_model_judge_rules_reach_the_rooms(client):
    hub = client.app.state.hub
    assert hub.cfg.threshold == 0.5 and hub.cfg.min_laugh_ms == 400.0


def test_serving_never_imports_torch(tmp_path):
    """A fresh interpreter: build the app, start it, serve pages and a websocket."""
    code = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(REPO_ROOT / "tests")!r})
from fastapi.testclient import TestClient
from server_helpers import fake_model_dir
from utjima.server.app import create_app
from utjima.server.settings import Settings
s = Settings(model_dir=fake_model_dir(Path({str(tmp_path / 'm')!r})),
             data_dir=Path({str(tmp_path / 'd')!r}))
with TestClient(create_app(s)) as c:
    assert c.get("/").status_code == 200
    code = c.post("/api/rooms").json()["code"]
    tok = c.post(f"/api/rooms/{{code}}/join", json={{"nickname": "A"}}).json()["token"]
    with c.websocket_connect(f"/ws/rooms/{{code}}") as ws:
        ws.send_json({{"type": "hello", "token": tok}})
        assert ws.receive_json()["type"] == "welcome"
bad = sorted(m for m in ("torch", "torchvision", "onnxruntime", "cv2") if m in sys.modules)
print("HEAVY", bad)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout, out.stdout


def test_the_serve_command_reports_a_bad_model_folder_in_one_line(tmp_path, capsys):
    from utjima.cli import main

    rc = main(["serve", "--model", str(tmp_path / "missing"), "--port", "0"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err


def test_health_counts_rooms_and_measures_the_loop(client):
    """GET /api/health: the rooms and sockets here, and how late the ticker woke."""
    import time

    assert client.post("/api/rooms", json={}).status_code == 201
    time.sleep(0.45)  # a few ticks (tick_ms 100)
    h = client.get("/api/health").json()
    assert h["rooms"] == 1 and h["connections"] == 0
    lag = h["loop_lag_ms"]
    assert lag["window_s"] == 30 and lag["ticks"] >= 2
    assert 0 <= lag["p50"] <= lag["p99"] <= lag["max"]
    for bad in ("0", "61", "abc"):
        assert client.get(f"/api/health?window_s={bad}").status_code == 422
