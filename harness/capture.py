"""The capture page in a headless browser: a fake camera with one face, a collecting
`utjima serve --collect` in a subprocess, and the steps a participant takes on /capture.
Shared by tests/e2e/test_capture_e2e.py and benchmarks/bench_capture.py.

    with collecting_server(tmp, token) as srv:
        page.goto(with_scale(srv.link, 0.15))
        consent(page, "p-01"); page.click("#start"); wait_done(page)
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import fakecam
from harness.server import REPO_ROOT, free_port, stop_process

START_TIMEOUT_S = 60.0


def write_face_camera(path: Path, brightness: float = 1.0, fps: int = 15,
                      seconds: float = 4.0) -> Path:
    """A y4m fake camera: the fixture's face centred in 640x480 with slight motion (looped
    by Chromium); `brightness` scales the pixels (0.25 makes a too-dark room)."""
    face = fakecam.astronaut_face()
    frames = []
    for i in range(round(seconds * fps)):
        dx, dy = fakecam.drift(i, fps)
        f = fakecam.compose(face, fakecam.FRAME_W / 2 + dx, fakecam.FRAME_H / 2 + dy)
        frames.append(np.clip(f * brightness, 0, 255).astype(np.uint8))
    return fakecam.write_y4m(path, frames, fps=fps)


@dataclass
class Serving:
    base: str  # http://127.0.0.1:PORT
    link: str  # the link `serve` printed for participants ("" without --collect)
    collect_dir: Path | None
    log: Path

    def stored(self) -> list[str]:
        """Every file in the collection but its lock."""
        root = self.collect_dir
        return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                      if p.is_file() and p.name != ".lock")


@contextlib.contextmanager
def serving(folder: Path, token: str | None = None,
            env: dict[str, str] | None = None) -> Iterator[Serving]:
    """`utjima serve` on a free port (with `--collect folder/clips` when `token` is given)
    until the block ends; its output goes to folder/serve.log."""
    port = free_port()
    log = folder / "serve.log"
    cmd = [sys.executable, "-m", "utjima", "serve", "--port", str(port),
           "--data-dir", str(folder / "data")]
    if token:
        cmd += ["--collect", str(folder / "clips"), "--collect-token", token]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env={**os.environ, **(env or {})},
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                urllib.request.urlopen(base + "/capture", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"utjima serve did not start:\n{log.read_text()}") from None
                time.sleep(0.2)
        link = re.search(r"http://\S+/capture#token=\S+", log.read_text())
        yield Serving(base, link.group(0) if link else "", folder / "clips" if token else None,
                      log)
    finally:
        stop_process(proc)


def with_scale(link: str, scale: float) -> str:
    """The participant's link with every protocol time multiplied by `scale`."""
    url, _, frag = link.partition("#")
    return f"{url}?scale={scale}" + (f"#{frag}" if frag else "")


def consent(page, participant: str, lighting: str = "bright", notes: str = "") -> None:
    """Agree, fill the form, continue; returns when the camera runs (Start is enabled)."""
    page.check("#agree")
    page.fill("#participant", participant)
    page.select_option("#lighting", lighting)
    page.fill("#notes", notes)
    page.click("#continue")
    page.wait_for_selector("#start:not([disabled])", timeout=30_000)


def wait_done(page, timeout_s: float = 180.0) -> None:
    page.wait_for_selector('body[data-step="done"]', timeout=timeout_s * 1000)


def record_and_upload(page, srv: Serving, token: str, participant: str,
                      lighting: str = "bright", notes: str = "", scale: float = 0.15) -> None:
    """One participant's whole session on an open page: consent, the protocol (times x
    `scale`), upload with `token`; returns when the server has stored it."""
    page.goto(with_scale(srv.link, scale))
    consent(page, participant, lighting, notes)
    page.wait_for_selector(".q-chip.ok", timeout=90_000)  # the live detector sees a face
    page.click("#start")
    wait_done(page)
    if page.is_visible("#token-box"):
        page.fill("#token", token)
    page.click("#upload")
    page.wait_for_selector("#receipt:not([hidden])", timeout=60_000)
