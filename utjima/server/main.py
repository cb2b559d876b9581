"""`utjima serve`: build Settings from the flags and the environment, run uvicorn."""

from __future__ import annotations

import argparse

from utjima.contract import ContractError, load_contract
from utjima.server.settings import Settings, SettingsError


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from utjima.cli import CLIError
    from utjima.server.app import create_app

    try:
        settings = Settings.from_env(
            host=args.host, port=args.port, model_dir=args.model,
            data_dir=args.data_dir, database_url=args.database_url)
        load_contract(settings.model_dir)  # fail before binding the port, in one line
    except (SettingsError, ContractError) as e:
        raise CLIError(str(e)) from None
    app = create_app(settings)
    print(f"utjima: serving on http://{settings.host}:{settings.port}/  "
          f"(model {settings.model_dir}, database {settings.db_url})", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                ws_max_size=settings.max_signal_bytes + 1024, ws_ping_interval=20.0)
    return 0
