"""Fixtures for the browser tests: `utjima serve` in a subprocess on a free port (HTTP or
HTTPS), a coturn TURN server, headless Debian Chromium through Playwright (never
`playwright install`), screenshots in <repo>/.cache/e2e/."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.server import stop_process

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


@pytest.fixture(scope="session")
def turnserver() -> Path:
    """coturn's turnserver (Debian package coturn, installed by `make system-deps`)."""
    from harness.coturn import TURNSERVER, CoturnMissing, ensure_turnserver

    try:
        return ensure_turnserver()
    except CoturnMissing as e:
        pytest.skip(f"{e} (set UTJIMA_TURNSERVER to use another path than {TURNSERVER})")


@pytest.fixture
def coturn(turnserver):
    """A coturn started for this test (harness/coturn.py): .url, .secret, .log_text()."""
    from harness.coturn import running_coturn

    with running_coturn() as turn:
        yield turn


@pytest.fixture
def serve(tmp_path):
    """`serve(*flags, public_host=None, **env) -> Server`: start `utjima serve` (through
    tests/server_helpers.py, which adds the traffic log) with these extra command-line flags
    (e.g. "--tls", "--turn-url", URL) and UTJIMA_* settings from `env`. With
    `public_host`, --public-url is that host at the server's port and scheme."""
    started: list[Server] = []

    def start(*flags: str, public_host: str | None = None, **env: str) -> Server:
        port = free_port()
        n = len(started)
        data = tmp_path / f"data{n}"
        traffic = tmp_path / f"traffic{n}.jsonl"
        traffic.touch()
        log = tmp_path / f"server{n}.log"
        scheme = "https" if {"--tls", "--cert"} & set(flags) else "http"
        if public_host:
            flags = (*flags, "--public-url", f"{scheme}://{public_host}:{port}")
        full_env = {**os.environ, **{f"UTJIMA_{k.upper()}": str(v) for k, v in env.items()}}
        proc = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "tests" / "server_helpers.py"), "--traffic-log",
             str(traffic), "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data),
             *flags],
            cwd=REPO_ROOT, env=full_env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        srv = Server(base=f"{scheme}://127.0.0.1:{port}", proc=proc, traffic=traffic,
                     data_dir=data, log=log, port=port, scheme=scheme,
                     cert=data / "tls" / "cert.pem" if scheme == "https" else None)
        started.append(srv)
        deadline = time.monotonic() + 30
        while True:
            try:
                srv.get("/api/leaderboard")
                break
            except (OSError, ssl.SSLError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"utjima serve did not start:\n{log.read_text()}")
                time.sleep(0.2)
        return srv

    yield start
    for srv in started:
        stop_process(srv.proc)
