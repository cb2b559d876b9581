"""`utjima serve`: build Settings from the arguments and the environment, check everything,
bind the port, say where friends can open the game, run uvicorn.

Everything that can be wrong is found before "serving on" is printed, and raised as a
`UtjimaError` (the CLI prints it as one line and exits 2): the settings and how they combine
with the model's judge rules (SettingsError), the model folder (ContractError), the TLS
files, the collection folder, the ONNX files with `--predict`, the database (StoreError: a
bad URL, a data dir that is a file or cannot be written, a file that is not a database),
the port (PortError: in use, not allowed), and with `--redis` the room directory
(ClusterError: the package missing, Redis unreachable, the node id held by another live
process). On SIGTERM or Ctrl-C every page hears
"server_restarting" and a 1001 close before uvicorn closes the sockets.
"""

from __future__ import annotations

import errno
import gc
import socket
import sys
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

from utjima.contract import load_contract
from utjima.server.collect import Collection, Limits, new_token, share_link
from utjima.server.hub import Observer, ignore
from utjima.server.settings import Settings
from utjima.utils import UtjimaError


class PortError(UtjimaError):
    """The address and port cannot be bound."""


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (uvicorn listens on it), or PortError saying why not."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as e:
        raise PortError(f"cannot listen on host {host!r}: {e.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise PortError(f"port {port} on {host} is already in use (another `utjima serve`?):"
                            " stop it, or choose another with --port") from None
        if e.errno == errno.EACCES:
            raise PortError(f"not allowed to listen on port {port} (ports below 1024 need "
                            "privileges): choose another with --port") from None
        raise PortError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.set_inheritable(True)
    return sock


def serve(*, host: str | None = None, port: int | None = None, model_dir: str | None = None,
          data_dir: str | None = None, database_url: str | None = None,
          observe: Observer = ignore, **more: Any) -> None:
    """Serve until interrupted. `more`: other Settings fields by name (None = not given, so
    the UTJIMA_* variable or the default holds). Raises a UtjimaError subclass, before
    anything is printed, for a setting, model folder, certificate, key, collection folder,
    database or port that cannot work."""
    import uvicorn

    from utjima.server import reach, tls
    from utjima.server.app import create_app, judge_config
    from utjima.server.store import Store

    settings = Settings.from_env(host=host, port=port, model_dir=model_dir, data_dir=data_dir,
                                 database_url=database_url, **more)
    judge_config(load_contract(settings.model_dir), settings)
    if settings.redis_url is not None:
        from utjima.server import cluster

        cluster.check(settings.redis_url, settings.node_id)  # before opening the database
    certs = tls.prepare(settings)
    with ExitStack() as opened:
        collection = predictor = None
        if settings.collect_dir is not None:
            settings = replace(settings, collect_token=settings.collect_token or new_token())
            collection = Collection(settings.collect_dir, Limits.from_settings(settings))
            opened.callback(collection.close)
        if settings.predict:
            from utjima.server.inference import Predictor

            predictor = Predictor(settings)  # opens the ONNX files: a broken one fails here
            opened.callback(predictor.close)
        store = Store(settings.db_url)
        opened.callback(store.close)
        sock = bind(settings.host, settings.port)
        opened.callback(sock.close)
        port = sock.getsockname()[1]  # --port 0: the one the system chose
        if settings.redis_url is not None:
            settings = replace(settings, port=port, node_url=settings.node_url
                               or f"{'https' if certs else 'http'}://{settings.host}:{port}")
            cluster.check(settings.redis_url, settings.node_id, settings.node_url)
        app = create_app(settings, store=store, observe=observe, collection=collection,
                         predictor=predictor)
        scheme = "https" if certs else "http"

        def announce() -> None:
            lines, qr_url = reach.banner(scheme=scheme, host=settings.host, port=port,
                                         public_url=settings.public_url,
                                         self_signed=bool(certs and certs.self_signed))
            extra = ", predictions on" if predictor else ""
            if settings.node_id is not None:
                extra += f", node {settings.node_id} of the cluster at {settings.redis_url}"
            print(f"utjima: serving on {scheme}://{settings.host}:{port}/  "
                  f"(model {settings.model_dir}, database {store.url}{extra})", *lines, sep="\n")
            if qr_url:
                _print_if_encodable(reach.qr_text(qr_url))
            if collection is not None:
                base = (qr_url or reach.url_for(scheme, "localhost", port)).rstrip("/")
                print(f"utjima: collecting clips into {settings.collect_dir}; participants "
                      f"open\n  {share_link(base, settings.collect_token)}")
            sys.stdout.flush()

        class Server(uvicorn.Server):
            async def startup(self, sockets=None) -> None:
                await super().startup(sockets)
                if not self.should_exit:
                    settle_garbage()
                    announce()

            async def shutdown(self, sockets=None) -> None:
                await app.state.hub.going_away()  # 1001 and a message, before uvicorn's 1012
                await super().shutdown(sockets)

        config = uvicorn.Config(app, log_level="warning",
                                ws_max_size=settings.max_signal_bytes + 1024,
                                ws_ping_interval=20.0, timeout_graceful_shutdown=5,
                                ssl_certfile=certs and str(certs.cert),
                                ssl_keyfile=certs and str(certs.key))
        Server(config).run(sockets=[sock])


def settle_garbage() -> None:
    """Move everything built before serving (modules, the app, its schemas) out of the
    garbage collector's sight: a full collection then walks only the live game's objects.
    Walking all of them took 100-130 ms with 250 players (bench_server), a pause every
    room felt as late verdicts."""
    gc.collect()
    gc.freeze()


def _print_if_encodable(text: str) -> None:
    """Print `text` unless this terminal's encoding cannot show it (a QR code in block
    characters on a latin-1 console would raise)."""
    try:
        text.encode(sys.stdout.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return
    print(text, end="")
