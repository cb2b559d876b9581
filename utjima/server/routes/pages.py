"""Pages and static files: the game pages, `/static/` (utjima/web), the model folder and
onnxruntime-web, all from this one origin (no CDN, so pages can be cross-origin isolated
and the CSP can forbid every other origin)."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from utjima.server.settings import Settings

# Content types that Python's mimetypes table gets wrong or lacks on some systems:
# browsers refuse to compile WASM streaming or import modules served otherwise.
CONTENT_TYPES = {
    ".wasm": "application/wasm",
    ".mjs": "text/javascript; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".onnx": "application/octet-stream",
    ".json": "application/json",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".md": "text/markdown; charset=utf-8",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
}


class Static(StaticFiles):
    """StaticFiles with our content types and revalidation (edits show up on reload)."""

    def file_response(self, full_path, stat_result, scope: Scope, status_code: int = 200):
        resp = super().file_response(full_path, stat_result, scope, status_code)
        ctype = CONTENT_TYPES.get(Path(str(full_path)).suffix.lower())
        if ctype:
            resp.headers["content-type"] = ctype
        resp.headers["cache-control"] = "no-cache"
        return resp


def _page(path: Path) -> FileResponse:
    if not path.is_file():
        raise HTTPException(404, f"page {path.name} is missing from {path.parent}")
    return FileResponse(path, media_type="text/html; charset=utf-8",
                        headers={"cache-control": "no-cache"})


def _missing_ort(ort_dir: Path) -> HTMLResponse:
    msg = (f"onnxruntime-web is not installed: {ort_dir} does not exist. "
           "Run `make setup` (it runs `npm ci`), or point UTJIMA_ORT_DIR at "
           "node_modules/onnxruntime-web/dist.")
    return HTMLResponse(f"<!doctype html><title>utjima: missing onnxruntime-web</title>"
                        f"<p>{html.escape(msg)}</p>", status_code=503)


def mount(app: FastAPI, settings: Settings) -> None:
    """Attach the pages and static folders to `app`."""
    web = settings.web_dir
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    def landing() -> FileResponse:
        return _page(web / "index.html")

    @router.get("/r/{code}", include_in_schema=False)
    def room(code: str) -> FileResponse:
        # the page itself checks the code with the API and explains a bad one
        return _page(web / "room.html")

    @router.get("/history", include_in_schema=False)
    def history() -> FileResponse:
        return _page(web / "history.html")

    @router.get("/leaderboard", include_in_schema=False)
    def leaderboard() -> FileResponse:
        return _page(web / "leaderboard.html")

    @router.get("/demo", include_in_schema=False)
    def demo() -> FileResponse:
        return _page(web / "demo.html")

    @router.get("/capture", include_in_schema=False)
    def capture() -> FileResponse:
        # recording for the data set (docs/capture.md); uploads need `serve --collect`
        return _page(web / "capture.html")

    @router.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return _page_or_empty(web / "game" / "favicon.svg")

    app.include_router(router)

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
        """A page people can read for an unknown URL (the API keeps answering JSON)."""
        path = request.url.path
        if exc.status_code != 404 or path == "/api" or path.startswith(("/api/", "/ws/")):
            return await http_exception_handler(request, exc)
        page = web / "404.html"
        if not page.is_file():
            return await http_exception_handler(request, exc)
        return FileResponse(page, status_code=404, media_type="text/html; charset=utf-8",
                            headers={"cache-control": "no-cache"})

    app.mount("/static", Static(directory=web), name="static")
    if settings.fonts_dir.is_dir():  # the game's fonts (npm @fontsource, OFL); else system
        app.mount("/vendor/fonts", Static(directory=settings.fonts_dir), name="fonts")
    app.mount("/models/default", Static(directory=settings.model_dir), name="model")
    ort = settings.ort_dir  # env UTJIMA_ORT_DIR overrides it (Settings.from_env)
    if ort.is_dir():
        app.mount("/vendor/ort", Static(directory=ort), name="ort")
    else:
        @app.get("/vendor/ort/{path:path}", include_in_schema=False)
        def ort_missing(path: str) -> HTMLResponse:
            return _missing_ort(ort)


def _page_or_empty(path: Path) -> FileResponse:
    if not path.is_file():
        raise HTTPException(404, "no favicon")
    return FileResponse(path, media_type="image/svg+xml")
