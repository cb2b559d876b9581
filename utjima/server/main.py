"""`utjima serve`: check everything, bind the port, say "serving on", run uvicorn.

Everything that can be wrong is found before the port is announced, and raised as a
`UtjimaError` (the CLI prints it as one line and exits 2): settings and their combination
with the model's judge rules (SettingsError), the model folder (ContractError), the
database (StoreError: a bad URL, an unwritable or file data dir, a file that is not a
database), the port (PortError: in use, not allowed), and with `--predict` the ONNX files.
On SIGTERM or Ctrl-C every page hears "server_restarting" and a 1001 close before uvicorn
closes the sockets.
"""

from __future__ import annotations

import errno
import socket

from utjima.contract import load_contract
from utjima.server.settings import Settings
from utjima.utils import UtjimaError


class PortError(UtjimaError):
    """The address and port cannot be bound."""


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on host:port, or PortError saying why not."""
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
          predict: bool | None = None) -> None:
    """Serve until interrupted. Raises a UtjimaError subclass, before anything is printed,
    for a setting, model folder, database or port that cannot work."""
    import uvicorn

    from utjima.server.app import create_app, judge_config
    from utjima.server.store import Store

    settings = Settings.from_env(host=host, port=port, model_dir=model_dir, data_dir=data_dir,
                                 database_url=database_url, predict=predict or None)
    judge_config(load_contract(settings.model_dir), settings)
    predictor = None
    if settings.predict:
        from utjima.server.inference import Predictor

        predictor = Predictor(settings)  # opens the ONNX files: a broken one fails here
    store = Store(settings.db_url)
    try:
        sock = bind(settings.host, settings.port)
    except PortError:
        store.close()
        raise
    app = create_app(settings, store=store, predictor=predictor)
    bound = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", ws_max_size=settings.max_signal_bytes + 1024,
                            ws_ping_interval=20.0, timeout_graceful_shutdown=5)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                extra = ", predictions on" if settings.predict else ""
                print(f"utjima: serving on http://{settings.host}:{bound}/  "
                      f"(model {settings.model_dir}, database {store.url}{extra})", flush=True)

        async def shutdown(self, sockets=None) -> None:
            await app.state.hub.going_away()  # 1001 and a message, before uvicorn's 1012
            await super().shutdown(sockets)

    try:
        Server(config).run(sockets=[sock])
    finally:
        sock.close()
        store.close()
        if predictor is not None:
            predictor.close()
