"""`utjima serve`: build Settings from the arguments and the environment, run uvicorn."""

from __future__ import annotations

from utjima.contract import load_contract
from utjima.server.settings import Settings


def serve(*, host: str | None = None, port: int | None = None, model_dir: str | None = None,
          data_dir: str | None = None, database_url: str | None = None) -> None:
    """Serve until interrupted. A bad setting or model folder raises SettingsError or
    ContractError before the port is bound."""
    import uvicorn

    from utjima.server.app import create_app

    settings = Settings.from_env(host=host, port=port, model_dir=model_dir, data_dir=data_dir,
                                 database_url=database_url)
    load_contract(settings.model_dir)  # fail before binding the port, in one line
    app = create_app(settings)
    print(f"utjima: serving on http://{settings.host}:{settings.port}/  "
          f"(model {settings.model_dir}, database {settings.db_url})", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                ws_max_size=settings.max_signal_bytes + 1024, ws_ping_interval=20.0)
