"""What the game's end-to-end tests share: where Chromium is, the flags its browsers launch
with, a handle on a running `utjima serve` (its URLs, certificate and traffic log), and the
traffic audit (no media reached the server)."""

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
__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "MAX_WS_BYTES", "REPO_ROOT", "SHOTS", "Server",
           "assert_no_media", "free_port", "phase", "scores"]


# Largest message of each type a page may send; an SDP offer is a few KiB, a video frame
# would not fit.
MAX_WS_BYTES = {"hello": 200, "score": 200, "pong": 200, "ready": 100, "leave": 100,
                "signal": 16384}


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


def assert_no_media(server: Server, requests: list[str], origins: tuple[str, ...]) -> dict:
    """The traffic audit: every websocket message the server received was small JSON of a
    known type, none binary, no HTTP request carried more than a small JSON body, and the
    pages (`requests`: every URL they asked for) talked to `origins` only. Returns counts."""
    records = server.traffic_records()
    ws = [r for r in records if r["kind"] == "ws"]
    assert ws and not [r for r in ws if r["binary"]]
    for r in ws:
        assert r["type"] in MAX_WS_BYTES, r
        assert r["bytes"] <= MAX_WS_BYTES[r["type"]], r
    bodies = [r for r in records if r["kind"] == "http" and r["bytes"]]
    assert all(r["bytes"] < 512 and r["content_type"].startswith("application/json")
               for r in bodies), bodies
    assert sum(r["bytes"] for r in ws if r["type"] == "score") / max(1, len(
        [r for r in ws if r["type"] == "score"])) < 120  # {t_ms, face, smile_prob} only
    foreign = [u for u in requests if not u.startswith((*origins, "data:", "blob:"))]
    assert not foreign, foreign
    return {"ws_messages": len(ws), "ws_bytes": sum(r["bytes"] for r in ws),
            "by_type": {t: sum(1 for r in ws if r["type"] == t) for t in MAX_WS_BYTES},
            "http_bodies": len(bodies)}




def phase(page, name: str, timeout_s: float) -> None:
    """Wait until the room page shows phase `name` (body[data-phase])."""
    page.wait_for_selector(f'body[data-phase="{name}"]', timeout=timeout_s * 1000)


def scores(page) -> dict[str, int]:
    """The room page's scoreboard: nickname -> points."""
    return page.evaluate("""() => Object.fromEntries(
        [...document.querySelectorAll('#scoreboard li')].map(li => [
            li.querySelector('span').textContent, +li.querySelector('strong').textContent]))""")
