"""Test helpers for the server: a stand-in model folder, a clock the test moves by hand,
websocket helpers (hello, receive_until, closed_with), client addresses for one
TestClient, and the traffic audit (what reached the server, sizes and types only).

Test modules import them (`from server_helpers import fake_model_dir`; pytest puts tests/
on sys.path). Run as a script, this is `utjima serve` (any of its flags) with the audit
appending one JSON line per record the app observes to --traffic-log, so the browser
tests can check that no media reached the server:

    python tests/server_helpers.py --traffic-log FILE --port N --data-dir DIR [--tls ...]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utjima import EMOTIONS
from utjima.contract import MODEL_JSON, SCHEMA, file_entry
from utjima.judge import JudgeConfig


def fake_model_dir(path: Path, threshold: float = 0.5) -> Path:
    """A folder whose model.json passes `load_contract` (placeholder bytes, real sha256s):
    enough for the server, which only serves the files and reads the judge rules."""
    path.mkdir(parents=True, exist_ok=True)
    files = {}
    for role, name in (("encoder", "encoder.onnx"), ("step", "step.onnx"),
                       ("face_detector", "face_detector_short.onnx")):
        (path / name).write_bytes(f"placeholder {role}".encode())
        files[role] = file_entry(path / name, path)
    data = {
        "schema": SCHEMA, "name": "fake", "classes": list(EMOTIONS),
        "input": {"size": 64, "channels": "gray", "range": [0, 1]},
        "crop": {}, "streaming": {"n_frames": 5, "frame_interval_ms": 100, "feature_dim": 8},
        "files": files, "thresholds": {"smile": threshold},
        "judge": JudgeConfig(threshold=threshold).to_dict(),
    }
    (path / MODEL_JSON).write_text(json.dumps(data, indent=2))
    return path


@dataclass
class FakeClock:
    """A game clock the test advances: `Settings(clock=clock)`; `clock.advance(100)`."""

    now_ms: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now_ms

    def advance(self, ms: float) -> float:
        self.now_ms += ms
        return self.now_ms


def receive_until(ws, mtype: str, limit: int = 60) -> dict:
    """The next websocket message of this type (others are skipped, at most `limit`)."""
    for _ in range(limit):
        msg = ws.receive_json()
        if msg["type"] == mtype:
            return msg
    raise AssertionError(f"no {mtype!r} message in {limit}")


def hello(ws, token: str) -> dict:
    """Say hello with this seat's token; the welcome."""
    ws.send_json({"type": "hello", "token": token})
    return receive_until(ws, "welcome")


def closed_with(ws) -> tuple[list[dict], int]:
    """Messages until the server closes the socket, and the close code."""
    from starlette.websockets import WebSocketDisconnect

    msgs = []
    try:
        while True:
            msgs.append(ws.receive_json())
    except WebSocketDisconnect as e:
        return msgs, e.code


def addressed(app: Any) -> Any:
    """`app` with the client address taken from an `x-test-address` header, so one
    TestClient can speak as several addresses (the per-address limits)."""

    async def wrapped(scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            for k, v in scope["headers"]:
                if k == b"x-test-address":
                    scope = {**scope, "client": (v.decode(), 50000)}
        await app(scope, receive, send)

    return wrapped


class TrafficLog:
    """An observer for `create_app(observe=...)` that appends each record to a file as one
    JSON line, with the wall-clock time it arrived (`t`, s) so a test can look at a window
    (line-buffered: a test can read it while the server runs)."""

    def __init__(self, path: Path) -> None:
        self.f = open(path, "a", buffering=1)  # noqa: SIM115 (closed by close / the with block)

    def __call__(self, record: dict[str, Any]) -> None:
        self.f.write(json.dumps({**record, "t": time.time()}) + "\n")

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> TrafficLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# The largest message of each type a page sends: an SDP offer is a few KiB; a video frame
# (or a replay clip's JPEG) would not fit in most, and no type carries binary data.
MAX_WS_BYTES = {"hello": 200, "score": 200, "pong": 200, "ready": 100, "leave": 100,
                "signal": 16384, "rules": 120, "kick": 100, "media": 120, "react": 100}


def audit_no_media(records: list[dict[str, Any]]) -> None:
    """No media reached the server: every websocket message was JSON text of a known type
    within its size, no frame was binary, and no HTTP request carried more than a small
    JSON body."""
    ws = [r for r in records if r["kind"] == "ws"]
    assert ws and not [r for r in ws if r["binary"]]
    for r in ws:
        assert r["type"] in MAX_WS_BYTES, r
        assert r["bytes"] <= MAX_WS_BYTES[r["type"]], r
    bodies = [r for r in records if r["kind"] == "http" and r["bytes"]]
    assert all(r["bytes"] < 512 and r["content_type"].startswith("application/json")
               for r in bodies), bodies


def audit_replay_window(records: list[dict[str, Any]], t0: float, t1: float,
                        clip_bytes: int) -> dict[str, Any]:
    """The laugh replay went browser to browser: between `t0` (the verdict, s) and `t1` (the
    clip played on another page) the server received only the usual small messages, far
    fewer bytes than the clip, and never a binary frame. Returns what it saw."""
    audit_no_media(records)
    window = [r for r in records if r["kind"] == "ws" and t0 - 1 <= r["t"] <= t1]
    types = {r["type"] for r in window}
    assert types <= {"score", "pong", "react", "media"}, types
    got = sum(r["bytes"] for r in window)
    assert got < clip_bytes / 5, (got, clip_bytes)
    return {"clip_bytes": clip_bytes, "server_bytes_meanwhile": got, "messages": len(window),
            "seconds": round(t1 - t0 + 1, 1)}


def serve_audited(argv: list[str] | None = None) -> None:
    """`utjima serve` (the same flags, settings and startup: TLS, URLs) with a TrafficLog
    listening; --traffic-log FILE comes first."""
    from utjima.cli import build_parser, serve_options
    from utjima.server.main import serve

    ap = argparse.ArgumentParser(description=serve_audited.__doc__)
    ap.add_argument("--traffic-log", type=Path, required=True, help="JSON lines file to append")
    a, rest = ap.parse_known_args(argv)
    options = serve_options(build_parser().parse_args(["serve", *rest]))
    with TrafficLog(a.traffic_log) as log:
        serve(observe=log, **options)


if __name__ == "__main__":
    serve_audited()
