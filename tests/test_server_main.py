"""`utjima serve` (utjima/server/main.py): everything that can be wrong is one line and exit
2 before "serving on" (settings against the model's judge, model.json, the data dir, the
database URL, a database file, the port), and a stop (SIGTERM) tells every page with 1001
and a message; after the restart, a page rejoining its room hears that the server
restarted instead of "no such room"."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from server_helpers import fake_model_dir

from utjima.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]


def serve(argv: list[str], capsys, env: dict[str, str] | None = None,
          monkeypatch=None) -> tuple[int, str, str]:
    for k, v in (env or {}).items():
        monkeypatch.setenv(k, v)
    rc = main(["serve", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def one_clear_line(rc: int, out: str, err: str, *needles: str) -> None:
    assert rc == 2, (rc, out, err)
    assert "serving on" not in out and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("utjima serve: error:"), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture
def model(tmp_path) -> Path:
    return fake_model_dir(tmp_path / "model")


def test_a_data_dir_that_is_a_file(tmp_path, model, capsys):
    (tmp_path / "afile").write_text("not a folder")
    one_clear_line(*serve(["--model", str(model), "--data-dir", str(tmp_path / "afile"),
                           "--port", "0"], capsys), "cannot open the database")


def test_a_data_dir_that_cannot_be_made_or_written(model, capsys):
    # /proc refuses new folders even to root (chmod would not stop root)
    one_clear_line(*serve(["--model", str(model), "--data-dir", "/proc/utjima-data",
                           "--port", "0"], capsys), "cannot open the database")


def test_a_database_url_nobody_can_open(tmp_path, model, capsys):
    one_clear_line(*serve(["--model", str(model), "--database-url", "bogus://x/y",
                           "--port", "0"], capsys), "bogus://x/y")


def test_a_database_file_that_is_not_a_database(tmp_path, model, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "utjima.db").write_bytes(os.urandom(4096))
    one_clear_line(*serve(["--model", str(model), "--data-dir", str(tmp_path / "data"),
                           "--port", "0"], capsys), "not a database")


def test_a_port_in_use_is_found_before_serving_on(tmp_path, model, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_clear_line(*serve(["--model", str(model), "--data-dir", str(tmp_path / "d"),
                               "--port", str(port)], capsys), f"port {port}", "in use")


def test_settings_are_checked_against_the_models_judge(tmp_path, model, capsys, monkeypatch):
    one_clear_line(*serve(["--model", str(model), "--data-dir", str(tmp_path / "d"),
                           "--port", "0"], capsys, {"UTJIMA_CALIB_MS": "1000"}, monkeypatch),
                   "calib_ms=1000", "calib_min_samples=20", "at least 2000")


def test_settings_that_contradict_each_other(tmp_path, model, capsys, monkeypatch):
    one_clear_line(*serve(["--model", str(model), "--port", "0"], capsys,
                          {"UTJIMA_ADDR_MSG_BURST": "10"}, monkeypatch), "addr_msg_burst")


def test_model_json_judge_rules_are_checked_before_serving_on(tmp_path, model, capsys):
    data = json.loads((model / "model.json").read_text())
    data["judge"]["min_laugh_ms"] = -5
    (model / "model.json").write_text(json.dumps(data))
    one_clear_line(*serve(["--model", str(model), "--data-dir", str(tmp_path / "d"),
                           "--port", "0"], capsys), "min_laugh_ms")


# --- a real process: SIGTERM, then a restart ------------------------------------------------------


def start(tmp_path: Path, model: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "utjima", "serve", "--model", str(model), "--data-dir",
         str(tmp_path / "data"), "--port", str(port)], cwd=REPO_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    assert "serving on" in line, line + proc.stdout.read()
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(base: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(base + path, data=json.dumps(body or {}).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


@pytest.mark.slow
def test_sigterm_sends_1001_and_a_rejoin_after_the_restart_hears_why(tmp_path, model):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    port = free_port()
    base, ws_base = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    proc = start(tmp_path, model, port)
    try:
        code = post(base, "/api/rooms")["code"]
        ana = post(base, f"/api/rooms/{code}/join", {"nickname": "Ana"})
        with connect(f"{ws_base}/ws/rooms/{code}") as ws:
            ws.send(json.dumps({"type": "hello", "token": ana["token"]}))
            assert json.loads(ws.recv(5))["type"] == "welcome"
            time.sleep(0.3)  # the ticker records the live room
            proc.send_signal(signal.SIGTERM)
            said = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    said.append(json.loads(ws.recv(10)))
        assert closed.value.rcvd.code == 1001
        assert said[-1]["type"] == "error" and said[-1]["code"] == "server_restarting"
        # uvicorn re-raises the signal once it has shut down cleanly (exit by SIGTERM)
        assert proc.wait(15) in (0, -signal.SIGTERM)
        out = proc.stdout.read()
        assert "Traceback" not in out, out
    finally:
        proc.kill()
        proc.wait()
    proc = start(tmp_path, model, port)
    try:
        with pytest.raises(urllib.error.HTTPError) as gone:
            urllib.request.urlopen(f"{base}/api/rooms/{code}", timeout=10)
        assert gone.value.code == 410
        assert json.loads(gone.value.read())["detail"]["code"] == "server_restarted"
        with connect(f"{ws_base}/ws/rooms/{code}") as ws:
            err = json.loads(ws.recv(5))
        assert err["code"] == "server_restarted" and "restarted" in err["message"]
        assert post(base, "/api/rooms")["code"] != code  # and new rooms work
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
