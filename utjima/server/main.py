"""`utjima serve`: build Settings from the arguments and the environment, check the model
and the TLS files, say where friends can open the game, run uvicorn."""

from __future__ import annotations

import sys
from typing import Any

from utjima.contract import load_contract
from utjima.server.hub import Observer, ignore
from utjima.server.settings import Settings


def serve(*, host: str | None = None, port: int | None = None, model_dir: str | None = None,
          data_dir: str | None = None, database_url: str | None = None,
          observe: Observer = ignore, **more: Any) -> None:
    """Serve until interrupted. `more`: other Settings fields by name (None = not given, so
    the UTJIMA_* variable or the default holds). A bad setting, model folder, certificate
    or key raises a UtjimaError subclass before anything is printed."""
    import uvicorn

    from utjima.server import reach, tls
    from utjima.server.app import create_app

    settings = Settings.from_env(host=host, port=port, model_dir=model_dir, data_dir=data_dir,
                                 database_url=database_url, **more)
    load_contract(settings.model_dir)  # fail before binding the port, in one line
    certs = tls.prepare(settings)
    app = create_app(settings, observe=observe)
    scheme = "https" if certs else "http"
    lines, qr_url = reach.banner(scheme=scheme, host=settings.host, port=settings.port,
                                 public_url=settings.public_url,
                                 self_signed=bool(certs and certs.self_signed))
    print(f"utjima: serving on {scheme}://{settings.host}:{settings.port}/  "
          f"(model {settings.model_dir}, database {settings.db_url})", *lines, sep="\n")
    if qr_url:
        _print_if_encodable(reach.qr_text(qr_url))
    sys.stdout.flush()
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                ws_max_size=settings.max_signal_bytes + 1024, ws_ping_interval=20.0,
                ssl_certfile=certs and str(certs.cert), ssl_keyfile=certs and str(certs.key))


def _print_if_encodable(text: str) -> None:
    """Print `text` unless this terminal's encoding cannot show it (a QR code in block
    characters on a latin-1 console would raise)."""
    try:
        text.encode(sys.stdout.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return
    print(text, end="")
