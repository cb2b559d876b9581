"""Fixtures for the browser tests: `utjima serve` in a subprocess on a free port, headless
Debian Chromium through Playwright (never `playwright install`), screenshots in
<repo>/.cache/e2e/."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .support import CHROMIUM, REPO_ROOT, SHOTS, Server, free_port


@pytest.fixture(scope="session")
def chromium() -> Path:
    pytest.importorskip("playwright.sync_api",
                        reason="playwright (Python) is not installed: make setup")
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: run `make system-deps` "
                    "(apt-get install chromium) or set UTJIMA_CHROMIUM")
    return CHROMIUM


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


@pytest.fixture
def serve(tmp_path):
    """`serve(**env) -> Server`: start `utjima serve` with UTJIMA_* settings from `env`."""
    started: list[Server] = []

    def start(**env: str) -> Server:
        port = free_port()
        data = tmp_path / f"data{len(started)}"
        traffic = tmp_path / f"traffic{len(started)}.jsonl"
        traffic.touch()
        log = tmp_path / f"server{len(started)}.log"
        full_env = {**os.environ, **{f"UTJIMA_{k.upper()}": str(v) for k, v in env.items()}}
        proc = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "tests" / "server_helpers.py"), "--traffic-log",
             str(traffic), "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data)],
            cwd=REPO_ROOT, env=full_env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/api/leaderboard", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"utjima serve did not start:\n{log.read_text()}")
                time.sleep(0.2)
        srv = Server(base=base, proc=proc, traffic=traffic, data_dir=data, log=log)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.proc.terminate()
        try:
            srv.proc.wait(10)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
