"""Headers on every HTTP response: cross-origin isolation and a same-origin-only CSP.

- `Cross-Origin-Opener-Policy: same-origin` + `Cross-Origin-Embedder-Policy: require-corp`
  make the pages cross-origin isolated, so onnxruntime-web may use SharedArrayBuffer
  (WASM threads); `Cross-Origin-Resource-Policy: same-origin` keeps our files ours.
- The Content-Security-Policy is part of the privacy story: a page may load code and
  connect only to this origin (HTTP and its websocket), so no script on it can send a
  camera frame anywhere else. WebRTC media goes browser to browser, never here.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def plain_host(host: str | None) -> str | None:
    """A Host header that is a plain host[:port] (a name, IPv4 or [IPv6]), else None."""
    return host if host and _HOST.match(host) else None


def content_security_policy(host: str | None) -> str:
    # 'self' covers same-origin ws: in current browsers; the explicit ws/wss source is
    # for older ones. A Host header that is not a plain host[:port] is left out.
    ws = f" ws://{host} wss://{host}" if plain_host(host) else ""
    return "; ".join([
        "default-src 'self'",
        f"connect-src 'self'{ws}",
        "script-src 'self' 'wasm-unsafe-eval'",  # ES modules + WebAssembly, no eval
        "worker-src 'self' blob:",  # onnxruntime-web's WASM thread workers
        "style-src 'self' 'unsafe-inline'",  # style attributes only; scripts stay strict
        "img-src 'self' data: blob:",
        "media-src 'self' blob: mediastream:",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


class SecurityHeaders:
    """Pure ASGI middleware (websockets pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = content_security_policy(Headers(scope=scope).get("host"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                h["Cross-Origin-Opener-Policy"] = "same-origin"
                h["Cross-Origin-Embedder-Policy"] = "require-corp"
                h["Cross-Origin-Resource-Policy"] = "same-origin"
                h["Content-Security-Policy"] = csp
                h["X-Content-Type-Options"] = "nosniff"
                h["Referrer-Policy"] = "no-referrer"
                h["Permissions-Policy"] = "camera=(self), microphone=(self), geolocation=()"
            await send(message)

        await self.app(scope, receive, send_with_headers)
