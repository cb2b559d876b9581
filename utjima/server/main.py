"""`utjima serve`: build Settings from the arguments and the environment, check the model
and the TLS files, say where friends can open the game, run uvicorn."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from utjima.contract import load_contract
from utjima.server.collect import Collection, Limits, new_token, share_link
from utjima.server.hub import Observer, ignore
from utjima.server.settings import Settings


def serve(*, host: str | None = None, port: int | None = None, model_dir: str | None = None,
          data_dir: str | None = None, database_url: str | None = None,
          observe: Observer = ignore, **more: Any) -> None:
    """Serve until interrupted. `more`: other Settings fields by name (None = not given, so
    the UTJIMA_* variable or the default holds). A bad setting, model folder, certificate,
    key or collection folder (`collect_dir`) raises a UtjimaError subclass before anything
    is printed."""
    import uvicorn

    from utjima.server import reach, tls
    from utjima.server.app import create_app

    settings = Settings.from_env(host=host, port=port, model_dir=model_dir, data_dir=data_dir,
                                 database_url=database_url, **more)
    load_contract(settings.model_dir)  # fail before binding the port, in one line
    certs = tls.prepare(settings)
    collection = None
    if settings.collect_dir is not None:
        settings = replace(settings, collect_token=settings.collect_token or new_token())
        collection = Collection(settings.collect_dir, Limits.from_settings(settings))
    app = create_app(settings, observe=observe, collection=collection)
    scheme = "https" if certs else "http"
    lines, qr_url = reach.banner(scheme=scheme, host=settings.host, port=settings.port,
                                 public_url=settings.public_url,
                                 self_signed=bool(certs and certs.self_signed))
    print(f"utjima: serving on {scheme}://{settings.host}:{settings.port}/  "
          f"(model {settings.model_dir}, database {settings.db_url})", *lines, sep="\n")
    if qr_url:
        _print_if_encodable(reach.qr_text(qr_url))
    if collection is not None:
        base = (qr_url or reach.url_for(scheme, "localhost", settings.port)).rstrip("/")
        print(f"utjima: collecting clips into {settings.collect_dir}; participants open\n"
              f"  {share_link(base, settings.collect_token)}")
    sys.stdout.flush()
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                    ws_max_size=settings.max_signal_bytes + 1024, ws_ping_interval=20.0,
                    ssl_certfile=certs and str(certs.cert), ssl_keyfile=certs and str(certs.key))
    finally:
        if collection is not None:
            collection.close()


def _print_if_encodable(text: str) -> None:
    """Print `text` unless this terminal's encoding cannot show it (a QR code in block
    characters on a latin-1 console would raise)."""
    try:
        text.encode(sys.stdout.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return
    print(text, end="")
