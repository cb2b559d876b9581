"""What the game's end-to-end tests share: where Chromium is, the flags its browsers launch
with, and a handle on a running `utjima serve` (its URLs, certificate and traffic log)."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness.chromium import ARGS, CHROMIUM
from harness.server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SHOTS = REPO_ROOT / ".cache" / "e2e"
CHROMIUM_ARGS = [
    *ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # three browsers share two cores: keep background pages running at full speed
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "REPO_ROOT", "SHOTS", "Server", "create_room",
           "free_port"]


def create_room(page, nickname: str) -> str:
    """On the landing page (already open): type a nickname, create a room; returns the
    invite link (the page stays on the landing page, the room made)."""
    page.fill("#nickname", nickname)
    page.click("#create")
    page.wait_for_selector("#created:not([hidden])")
    return page.input_value("#invite-link")


@dataclass
class Server:
    base: str  # scheme://127.0.0.1:PORT: what this process (urllib) uses
    proc: subprocess.Popen
    traffic: Path  # JSON lines: one per websocket message / HTTP body received
    data_dir: Path
    log: Path
    port: int = 0
    scheme: str = "http"
    cert: Path | None = None  # the server's certificate (https only)

    def url(self, host: str) -> str:
        """The server's base URL as a browser opens it through `host` (e.g. utjima.test,
        which the browsers' --host-resolver-rules map to 127.0.0.1)."""
        return f"{self.scheme}://{host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """urllib's trust in exactly this server's certificate (https), else None."""
        if self.cert is None:
            return None
        ctx = ssl.create_default_context(cafile=str(self.cert))
        ctx.check_hostname = False  # urllib talks to 127.0.0.1; the names are the browsers'
        return ctx

    def traffic_records(self) -> list[dict]:
        return [json.loads(line) for line in self.traffic.read_text().splitlines() if line]

    def get(self, path: str):
        with urllib.request.urlopen(self.base + path, timeout=10,
                                    context=self.ssl_context()) as r:
            return json.loads(r.read())

