"""`utjima review`: open a session, then serve the page on 127.0.0.1 and open it in the
default browser, or export contact sheets / print statistics and exit."""

from __future__ import annotations

import secrets
import socket
import sys
import threading
import time
import webbrowser
from pathlib import Path

from utjima.review.session import ReviewSession
from utjima.review.stats import table

REPO_ROOT = Path(__file__).resolve().parents[2]
FONTS_DIR = REPO_ROOT / "node_modules" / "@fontsource"  # the game's fonts, when installed


def _say(session: ReviewSession) -> None:
    info = session.info()
    for b in info["broken"]:
        print(f"utjima review: {b['id']} cannot be reviewed: {b['error']}", file=sys.stderr)
    for cid in info["unknown_in_sidecar"]:
        print(f"utjima review: review.json has changes for {cid!r}, which is not in the "
              "folder any more (kept, not applied)", file=sys.stderr)
    m = info["model"]
    where = "read-only" if session.read_only else f"changes go to {info['sidecar']}"
    broken = f" ({len(info['broken'])} cannot be reviewed)" if info["broken"] else ""
    print(f"utjima review: {info['name']}: {info['clips']} clips{broken}; {where}")
    sample = "trained on this set: in-sample" if m["in_sample"] else "never saw it: out-of-sample"
    print(f"  scores: {m['name']} (threshold {m['threshold']:.3f}; {sample})"
          + (f", out-of-fold scores for {info['oof_clips']} clips" if info["oof_clips"] else ""))
    if session.research_note:
        print(f"  {session.research_note}")


def _score_with_progress(session: ReviewSession) -> None:
    from tqdm import tqdm

    total = session.progress()["total"]
    with tqdm(total=total, desc="scoring clips", unit="clip", leave=False,
              disable=not sys.stderr.isatty()) as bar:
        session.score_all(report=lambda done: bar.update(done - bar.n))


def run(source: str, *, port: int = 0, model_dir: str | None = None,
        reviewer: str | None = None, oof: str | None = None, open_browser: bool = True,
        export_sheets: str | None = None, print_stats: bool = False) -> int:
    """Review `source` (a clip folder, or `ckplus[:SPLIT]` read-only) until interrupted;
    with `export_sheets` or `print_stats`, do that and return."""
    batch = export_sheets is not None or print_stats
    session = ReviewSession.open(source, model_dir=model_dir, reviewer=reviewer, oof=oof,
                                 lock=not batch)
    try:
        _say(session)
        if batch:
            _score_with_progress(session)
            if print_stats:
                st = session.stats()
                for key in ("participant", "lighting", "prompt", "clip_label"):
                    print()
                    print("\n".join(table(st["by"][key], key)))
            if export_sheets is not None:
                written = session.export_sheets(export_sheets)
                print(f"wrote {len(written)} contact sheets to {Path(export_sheets)}")
            return 0
        _serve(session, port, open_browser)
        return 0
    finally:
        session.close()


def _serve(session: ReviewSession, port: int, open_browser: bool) -> None:
    import uvicorn

    from utjima.review.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as e:
        sock.close()
        from utjima.review.session import ReviewError

        raise ReviewError(f"cannot listen on 127.0.0.1:{port} ({e.strerror}); pick another "
                          "--port or leave it out for a free one") from None
    port = sock.getsockname()[1]
    token = secrets.token_urlsafe(24)
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
    app = create_app(session, token, fonts_dir=FONTS_DIR, hosts=hosts)
    url = f"http://127.0.0.1:{port}/?token={token}"
    print(f"  open {url}\n  (Ctrl+C stops it)", flush=True)
    session.start_scoring()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    if open_browser:
        def when_up() -> None:
            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                webbrowser.open(url)
        threading.Thread(target=when_up, daemon=True).start()
    server.run(sockets=[sock])
