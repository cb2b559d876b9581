"""What the game's end-to-end test shares: where Chromium is, the flags its three browsers
launch with, and a handle on a running `utjima serve` (its URL and traffic log)."""

from __future__ import annotations

import json
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
    base: str
    proc: subprocess.Popen
    traffic: Path  # JSON lines: one per websocket message / HTTP body received
    data_dir: Path
    log: Path

    def traffic_records(self) -> list[dict]:
        return [json.loads(line) for line in self.traffic.read_text().splitlines() if line]

    def get(self, path: str):
        with urllib.request.urlopen(self.base + path, timeout=10) as r:
            return json.loads(r.read())


