"""`create_app(settings) -> FastAPI`: the whole server, assembled.

State (the model contract, the database store, the rooms hub) is created in `lifespan`
and kept on `app.state`; routes reach it through `routes/deps.py`, so tests can swap any
piece (`app.dependency_overrides`, or a store of their own passed in here). `observe`
hears the size and type of everything received (`hub.Observer`): the tests' traffic audit.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from utjima import __version__
from utjima.contract import ContractError, load_contract
from utjima.judge import JudgeConfig
from utjima.server import schemas
from utjima.server.collect import Collection, Limits
from utjima.server.hub import Hub, Observer, ignore
from utjima.server.ratelimit import KeyedBuckets
from utjima.server.routes import collect, health, history, invite, pages, predict, rooms, ws
from utjima.server.security import SecurityHeaders
from utjima.server.settings import Settings
from utjima.server.store import Store

MAX_BODY_BYTES = 16 * 1024  # every JSON body we accept is tiny; nothing else is accepted


def judge_config(contract, settings: Settings | None = None) -> JudgeConfig:
    """The model's judge rules, with its validated smile threshold (model.json); with
    `settings`, checked against them (SettingsError when a setting can never work)."""
    try:
        cfg = contract.judge_config()
    except (TypeError, ValueError) as e:
        raise ContractError(f"{contract.dir / 'model.json'}: judge: {e}") from None
    if settings is not None:
        settings.check_judge(cfg)
    return cfg


class BodyLimit:
    """Refuses request bodies over MAX_BODY_BYTES, or `limits[path]` for the routes that
    take more (clip uploads, /api/predict), with 413, declared or chunked, and tells
    `observe` the size and content type of every request body that reached the server.

    A body under the default limit is read whole here and refused with 400 when JSON is
    expected and it is not JSON (nested too deeply, an integer of thousands of digits),
    before FastAPI would turn that into a bare 400 or a traceback. The larger bodies of
    `limits` routes are counted as the route reads them, never held here."""

    def __init__(self, app: ASGIApp, observe: Observer,
                 limits: dict[str, int] | None = None) -> None:
        self.app, self.observe, self.limits = app, observe, limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        ctype = headers.get("content-type", "")
        limit = self.limits.get(scope["path"], MAX_BODY_BYTES)
        try:
            declared = int(headers.get("content-length", "0") or 0)
        except ValueError:
            declared = 0  # h11 refuses a malformed Content-Length before we see it
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
            if scope["path"] in self.limits:
                await self.app(scope, counted, send)
                return
            body, more = [], True
            while more:
                msg = await counted()
                if msg["type"] != "http.request":
                    return  # the client went away
                body.append(msg.get("body", b""))
                more = msg.get("more_body", False)
        except _TooLarge:
            await _problem(413, "too_large", f"request bodies are limited to {limit} bytes")(
                scope, receive, send)
            return
        finally:
            self.observe({"kind": "http", "method": scope["method"], "path": scope["path"],
                          "bytes": max(seen, declared), "content_type": ctype})
        data = b"".join(body)
        if data and _is_json(ctype) and (problem := _json_problem(data)):
            await _problem(400, "bad_request", problem)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class _TooLarge(Exception):
    pass


def _problem(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": {"code": code, "message": message}}, status)


def _is_json(ctype: str) -> bool:
    main = ctype.split(";", 1)[0].strip().lower()
    return main in ("", "application/json") or main.endswith("+json")


def _json_problem(data: bytes) -> str | None:
    """Why `data` is not JSON we accept, or None. Nesting too deep for the parser and
    integers too long to convert are refused here, with a message, not a traceback."""
    try:
        json.loads(data)
    except RecursionError:
        return "the body's JSON is nested too deeply"
    except UnicodeDecodeError:
        return "the body is not UTF-8 text"
    except ValueError as e:  # JSONDecodeError, or an integer of thousands of digits
        return f"the body is not valid JSON: {str(e)[:120]}"
    return None


def create_app(settings: Settings | None = None, store: Store | None = None,
               observe: Observer = ignore, collection: Collection | None = None,
               predictor: Any = None) -> FastAPI:
    """The app. `store`, `collection` (for --collect) and `predictor` (an
    inference.Predictor, for --predict) may be opened by the caller (`serve` opens them
    before announcing the port); else lifespan opens them."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        contract = load_contract(settings.model_dir)  # fails loudly if invalid
        cfg = judge_config(contract, settings)
        app.state.contract = contract
        app.state.store = store or await asyncio.to_thread(Store, settings.db_url)
        app.state.hub = Hub(settings, cfg, app.state.store, observe)
        if settings.redis_url is not None:  # one of several processes (cluster.py)
            from utjima.server.cluster import Directory

            directory = Directory(settings.redis_url, settings.node_id,
                                  settings.node_url or f"http://{settings.host}:{settings.port}")
            app.state.hub.restarted = await directory.start()
            app.state.hub.directory = directory
        else:
            app.state.hub.restarted = await asyncio.to_thread(app.state.store.restarted_rooms)
        app.state.http_buckets = KeyedBuckets(settings.http_rate_per_s, settings.http_burst)
        app.state.predict_buckets = KeyedBuckets(settings.predict_rate_per_s,
                                                 settings.predict_burst)
        app.state.predictor = predictor
        if settings.predict and predictor is None:
            from utjima.server.inference import Predictor  # onnxruntime: only when asked

            app.state.predictor = await asyncio.to_thread(Predictor, settings)
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
            if predictor is None and app.state.predictor is not None:
                app.state.predictor.close()

    app = FastAPI(title="utjima", version=__version__, lifespan=lifespan,
                  docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    app.state.settings = settings

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message = schemas.describe(exc.errors())
        return JSONResponse({"detail": {"code": "bad_request", "message": message}}, 422)

    app.add_middleware(BodyLimit, observe=observe,
                       limits={"/api/collect/uploads": settings.collect_max_upload_bytes,
                               "/api/predict": settings.predict_max_bytes})
    app.add_middleware(SecurityHeaders)
    app.include_router(rooms.router)
    app.include_router(health.router)
    app.include_router(invite.router)
    app.include_router(history.router)
    app.include_router(collect.router)
    app.include_router(predict.router)
    app.include_router(ws.router)
    pages.mount(app, settings)
    return app
