"""`create_app(settings) -> FastAPI`: the whole server, assembled.

State (the model contract, the database store, the rooms hub) is created in `lifespan`
and kept on `app.state`; routes reach it through `routes/deps.py`, so tests can swap any
piece (`app.dependency_overrides`, or a store of their own passed in here). `observe`
hears the size and type of everything received (`hub.Observer`): the tests' traffic audit.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from utjima import __version__
from utjima.contract import load_contract
from utjima.judge import JudgeConfig
from utjima.server import schemas
from utjima.server.collect import Collection, Limits
from utjima.server.hub import Hub, Observer, ignore
from utjima.server.ratelimit import KeyedBuckets
from utjima.server.routes import collect, history, invite, pages, rooms, ws
from utjima.server.security import SecurityHeaders
from utjima.server.settings import Settings
from utjima.server.store import Store

MAX_BODY_BYTES = 16 * 1024  # every JSON body we accept is tiny; nothing else is accepted


def judge_config(contract) -> JudgeConfig:
    """The model's judge rules, with its validated smile threshold (model.json)."""
    return JudgeConfig.from_dict({**contract.data.get("judge", {}),
                                  "threshold": contract.smile_threshold})


class BodyLimit:
    """Refuses request bodies over MAX_BODY_BYTES, or `limits[path]` for the routes that
    take more (clip uploads), with 413, and tells `observe` the size and content type of
    every request body that reached the server."""

    def __init__(self, app: ASGIApp, observe: Observer,
                 limits: dict[str, int] | None = None) -> None:
        self.app, self.observe, self.limits = app, observe, limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = int(headers.get(b"content-length", b"0") or 0)
        ctype = headers.get(b"content-type", b"").decode("latin-1")
        limit = self.limits.get(scope["path"], MAX_BODY_BYTES)
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise _TooLarge()
            return msg

        try:
            if declared > limit:
                raise _TooLarge()
            await self.app(scope, counted, send)
        except _TooLarge:
            resp = JSONResponse({"detail": {"code": "too_large", "message":
                                f"request bodies are limited to {limit} bytes"}}, 413)
            await resp(scope, receive, send)
        finally:
            self.observe({"kind": "http", "method": scope["method"], "path": scope["path"],
                          "bytes": max(seen, declared), "content_type": ctype})


class _TooLarge(Exception):
    pass


def create_app(settings: Settings | None = None, store: Store | None = None,
               observe: Observer = ignore, collection: Collection | None = None) -> FastAPI:
    """The app. `store` and `collection` (for --collect) may be opened by the caller;
    else lifespan opens them."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        contract = load_contract(settings.model_dir)  # fails loudly if invalid
        app.state.contract = contract
        app.state.store = store or await asyncio.to_thread(Store, settings.db_url)
        app.state.hub = Hub(settings, judge_config(contract), app.state.store, observe)
        app.state.http_buckets = KeyedBuckets(settings.http_rate_per_s, settings.http_burst)
        app.state.collection = collection
        if collection is None and settings.collect_dir is not None:
            app.state.collection = Collection(settings.collect_dir, Limits.from_settings(settings))
        app.state.collect_buckets = KeyedBuckets(settings.collect_uploads_per_hour / 3600.0,
                                                 settings.collect_burst)
        app.state.collect_slot = asyncio.Semaphore(1)
        app.state.hub.start()
        try:
            yield
        finally:
            await app.state.hub.stop()
            if store is None:
                app.state.store.close()
            if collection is None and app.state.collection is not None:
                app.state.collection.close()

    app = FastAPI(title="utjima", version=__version__, lifespan=lifespan,
                  docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    app.state.settings = settings

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message = schemas.describe(exc.errors())
        return JSONResponse({"detail": {"code": "bad_request", "message": message}}, 422)

    app.add_middleware(BodyLimit, observe=observe,
                       limits={"/api/collect/uploads": settings.collect_max_upload_bytes})
    app.add_middleware(SecurityHeaders)
    app.include_router(rooms.router)
    app.include_router(invite.router)
    app.include_router(history.router)
    app.include_router(collect.router)
    app.include_router(ws.router)
    pages.mount(app, settings)
    return app
