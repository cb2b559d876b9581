"""A server for the browser pages: the real `utjima serve` when it starts and serves the
detector's routes, else a small static stand-in with the same routes and headers.

Routes the detector needs (docs/detector_api.md), all with COOP/COEP so WASM threads work:
  /static/*         utjima/web/
  /models/default/* the model folder
  /vendor/ort/*     node_modules/onnxruntime-web/dist/
  /demo             utjima/web/demo.html

    with running_server() as srv:       # env UTJIMA_TEST_SERVER=real|fixture forces one
        page.goto(srv.url + "/demo")
"""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
WEB_DIR = REPO_ROOT / "utjima" / "web"
MODEL_DIR = REPO_ROOT / "utjima" / "models"
ORT_DIR = REPO_ROOT / "node_modules" / "onnxruntime-web" / "dist"
FONTS_DIR = REPO_ROOT / "node_modules" / "@fontsource"
START_TIMEOUT_S = 30.0
# Checked on the real server before it is used; any failure falls back to the stand-in.
PROBES = ("/models/default/model.json", "/static/detector/detector.js",
          "/vendor/ort/ort.wasm.min.mjs", "/demo")
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin",
             "Cross-Origin-Embedder-Policy": "require-corp",
             "Cross-Origin-Resource-Policy": "same-origin"}
CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; "
       "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "media-src 'self' blob: mediastream:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'")
TYPES = {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
         ".json": "application/json", ".onnx": "application/octet-stream",
         ".html": "text/html; charset=utf-8",
         ".css": "text/css", ".svg": "image/svg+xml", ".woff2": "font/woff2"}


@dataclass(frozen=True)
class Server:
    url: str  # http://127.0.0.1:PORT, no trailing slash
    kind: str  # "utjima serve" or "fixture"
    note: str  # why the stand-in was used, else ""


def stop_process(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout_s`."""
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _probe(url: str) -> str | None:
    """None when every probe answers 200 with the isolation headers, else what failed."""
    for path in PROBES:
        try:
            with urllib.request.urlopen(url + path, timeout=5) as r:
                if r.headers.get("Cross-Origin-Embedder-Policy") != "require-corp":
                    return f"{path} lacks Cross-Origin-Embedder-Policy: require-corp"
        except (urllib.error.URLError, OSError) as e:
            return f"GET {path}: {e}"
    return None


def _start_real(model_dir: Path) -> tuple[Server, contextlib.ExitStack]:
    """Start `utjima serve` on a free port and probe it; RuntimeError (server stopped) when
    it does not come up with the routes. Returns the server and what stops it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stack = contextlib.ExitStack()
    data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="utjima-serve-"))
    log = stack.enter_context(open(Path(data_dir) / "serve.log", "w+"))
    cmd = [sys.executable, "-m", "utjima", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--model", str(model_dir), "--data-dir", data_dir]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)

    def stop() -> None:
        stop_process(proc)

    stack.callback(stop)  # runs before the folder and the log are closed (LIFO)
    deadline = time.monotonic() + START_TIMEOUT_S
    problem = "did not answer"
    while time.monotonic() < deadline and proc.poll() is None:
        problem = _probe(url)
        if problem is None:
            return Server(url, "utjima serve", ""), stack
        time.sleep(0.25)
    stop()
    log.seek(0)
    tail = log.read()[-500:]
    stack.close()
    raise RuntimeError(f"`utjima serve` not usable ({problem}): {tail}")


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files by route prefix, with the isolation headers; GET/HEAD only."""

    routes: dict[str, Path] = {}

    def translate_path(self, path: str) -> str:
        path = path.split("?", 1)[0].split("#", 1)[0]
        if path == "/demo":
            return str(self.routes["/static/"] / "demo.html")
        for prefix, root in self.routes.items():
            if path.startswith(prefix):
                target = (root / path[len(prefix):]).resolve()
                if target.is_relative_to(root.resolve()):
                    return str(target)
        return str(Path("/nonexistent"))

    def guess_type(self, path) -> str:
        return TYPES.get(Path(str(path)).suffix.lower(), "application/octet-stream")

    def end_headers(self) -> None:
        for k, v in ISOLATION.items():
            self.send_header(k, v)
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


@contextlib.contextmanager
def _fixture(model_dir: Path, note: str) -> Iterator[Server]:
    routes = {"/static/": WEB_DIR, "/models/default/": model_dir, "/vendor/ort/": ORT_DIR,
              "/vendor/fonts/": FONTS_DIR}
    handler = type("Handler", (_Handler,), {"routes": routes})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", "fixture", note)
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def running_server(model_dir: str | Path | None = None,
                   prefer: str | None = None) -> Iterator[Server]:
    """The real server if it works (prefer="real" insists), else the stand-in
    (prefer="fixture" goes straight there). Default: env UTJIMA_TEST_SERVER, else "auto"."""
    prefer = prefer or os.environ.get("UTJIMA_TEST_SERVER", "auto")
    if prefer not in ("auto", "real", "fixture"):
        raise ValueError(f"prefer must be 'auto', 'real' or 'fixture', got {prefer!r}")
    if not ORT_DIR.is_dir():
        raise FileNotFoundError(f"{ORT_DIR} is missing: run `make setup` (npm ci)")
    model_dir = Path(model_dir) if model_dir is not None else MODEL_DIR
    note = "UTJIMA_TEST_SERVER=fixture"
    if prefer != "fixture":
        started = None
        if (REPO_ROOT / "utjima" / "server" / "main.py").is_file():
            try:
                started = _start_real(model_dir)
            except RuntimeError as e:
                if prefer == "real":
                    raise
                note = str(e)
        else:
            note = "utjima/server/main.py does not exist yet"
        if started is not None:
            srv, stack = started
            with stack:
                yield srv
            return
    with _fixture(model_dir, note) as srv:
        yield srv
