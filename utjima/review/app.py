"""`create_app(session, token) -> FastAPI`: the review page's server, over one
`ReviewSession`, for one person on this computer.

It listens on 127.0.0.1 only (`utjima.review.main`). The address it prints carries a
random token; opening it sets a same-site, HTTP-only cookie that every `/api/` request
must carry, so another local user's browser or a web page the reviewer visits cannot read
the faces or change labels, and requests whose Host is not this server's are refused (DNS
rebinding). Static files (the page's code, the game's style and fonts) are public.

API (JSON; errors are {"detail": {"code", "message"}} with a 4xx status):
  GET  /api/info, /api/clips, /api/progress, /api/suspects, /api/stats
  GET  /api/clips/{id}                 labels, spans, scores, log: what the page draws
  GET  /api/clips/{id}/frames/{i}      one frame (the file as recorded, else JPEG)
  GET  /api/clips/{id}/sheet.png       the contact sheet (?download=1: as a file)
  POST /api/clips/{id}/relabel         {first, last, smile?, emotion?, who?}
  POST /api/clips/{id}/clip-label      {value: 1 | 0 | null, who?}
  POST /api/clips/{id}/exclude         {excluded: bool, who?}
  POST /api/clips/{id}/flag            {note: str | null, who?}
  POST /api/clips/{id}/undo            {who?}
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Literal

import cv2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from utjima import EMOTIONS
from utjima.review.session import ReviewError, ReviewSession
from utjima.server.routes.pages import Static
from utjima.server.schemas import describe
from utjima.server.security import SecurityHeaders

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
COOKIE = "utjima_review"
FRAME_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
               ".bmp": "image/bmp", ".webp": "image/webp"}
Emotion = Literal[EMOTIONS]  # type: ignore[valid-type]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")
    who: str | None = Field(None, max_length=200, description="reviewer; default --reviewer")


class RelabelIn(_In):
    first: int = Field(ge=0, description="first frame, inclusive")
    last: int = Field(ge=0, description="last frame, inclusive")
    smile: Literal[0, 1] | None = None  # absent = unchanged, null = unknown
    emotion: Emotion | None = None


class ClipLabelIn(_In):
    value: Literal[0, 1] | None


class ExcludeIn(_In):
    excluded: bool


class FlagIn(_In):
    note: str | None = Field(max_length=500)


class UndoIn(_In):
    pass


def _error(status: int, message: str, code: str = "refused") -> JSONResponse:
    return JSONResponse({"detail": {"code": code, "message": message}}, status)


def create_app(session: ReviewSession, token: str, *, web_dir: Path = WEB_DIR,
               fonts_dir: Path | None = None, hosts: set[str] | None = None) -> FastAPI:
    """`hosts`: the Host headers to accept (None: any, for in-process tests)."""
    app = FastAPI(title="utjima review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.session = session

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if hosts is not None and request.headers.get("host") not in hosts:
            return _error(403, "this server answers only at 127.0.0.1 (the address "
                          "`utjima review` printed)", "bad_host")
        if request.url.path.startswith("/api/"):
            given = request.cookies.get(COOKIE, "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return _error(401, "open the address `utjima review` printed (it carries the "
                              "session's token)", "no_session")
        return await call_next(request)

    @app.exception_handler(ReviewError)
    async def refused(request: Request, exc: ReviewError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, describe(exc.errors()), "bad_request")

    @app.get("/", include_in_schema=False)
    def page(request: Request) -> Response:
        given = request.query_params.get("token")
        if given is not None:
            if not hmac.compare_digest(given.encode(), token.encode()):
                return HTMLResponse(_NO_SESSION, 401)
            resp = RedirectResponse("/", 303)
            resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
            return resp
        if not hmac.compare_digest(request.cookies.get(COOKIE, "").encode(), token.encode()):
            return HTMLResponse(_NO_SESSION, 401)
        return FileResponse(web_dir / "review.html", media_type="text/html; charset=utf-8",
                            headers={"cache-control": "no-cache"})

    s = session

    @app.get("/api/info")
    def info() -> dict:
        return s.info()

    @app.get("/api/progress")
    def progress() -> dict:
        return s.progress()

    @app.get("/api/clips")
    def clip_list() -> dict:
        return {"clips": s.clips(), "progress": s.progress()}

    @app.get("/api/suspects")
    def suspects() -> dict:
        return s.suspects()

    @app.get("/api/stats")
    def stats() -> dict:
        return s.stats()

    @app.get("/api/clips/{cid}")
    def clip(cid: str) -> dict:
        return s.clip_view(cid)

    @app.get("/api/clips/{cid}/frames/{i}")
    def frame(cid: str, i: int) -> Response:
        path = s.frame_file(cid, i)
        if path is not None and path.suffix.lower() in FRAME_TYPES:
            return FileResponse(path, media_type=FRAME_TYPES[path.suffix.lower()],
                                headers={"cache-control": "private, max-age=3600"})
        rgb = s.frames(cid, [i])[0]
        ok, buf = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        return Response(buf.tobytes(), media_type="image/jpeg",
                        headers={"cache-control": "private, max-age=3600"})

    @app.get("/api/clips/{cid}/sheet.png")
    def sheet(cid: str, download: bool = False) -> Response:
        headers = {"cache-control": "no-store"}
        if download:
            headers["content-disposition"] = f'attachment; filename="{cid}.png"'
        return Response(s.sheet_png(cid), media_type="image/png", headers=headers)

    def _changed(cid: str, entry: dict) -> dict:
        return {"entry": entry, "clip": s.clip_view(cid)}

    @app.post("/api/clips/{cid}/relabel")
    def relabel(cid: str, body: RelabelIn) -> dict:
        labels = {k: getattr(body, k) for k in ("smile", "emotion") if k in body.model_fields_set}
        if not labels:
            raise ReviewError("a relabel sets smile and/or emotion", 422)
        return _changed(cid, s.relabel(cid, body.first, body.last, body.who, **labels))

    @app.post("/api/clips/{cid}/clip-label")
    def clip_label(cid: str, body: ClipLabelIn) -> dict:
        return _changed(cid, s.set_clip_label(cid, body.value, body.who))

    @app.post("/api/clips/{cid}/exclude")
    def exclude(cid: str, body: ExcludeIn) -> dict:
        return _changed(cid, s.set_excluded(cid, body.excluded, body.who))

    @app.post("/api/clips/{cid}/flag")
    def flag(cid: str, body: FlagIn) -> dict:
        return _changed(cid, s.set_flag(cid, body.note, body.who))

    @app.post("/api/clips/{cid}/undo")
    def undo(cid: str, body: UndoIn) -> dict:
        return _changed(cid, s.undo(cid, body.who))

    app.add_middleware(SecurityHeaders)
    app.mount("/static", Static(directory=web_dir), name="static")
    if fonts_dir is not None and fonts_dir.is_dir():
        app.mount("/vendor/fonts", Static(directory=fonts_dir), name="fonts")
    return app


_NO_SESSION = """<!doctype html><meta charset="utf-8"><title>utjima review</title>
<p>Open the address <code>utjima review</code> printed: it carries this session's token.
<br><code>utjima review</code>가 출력한 주소를 여세요 (세션 토큰이 들어 있습니다).</p>"""
