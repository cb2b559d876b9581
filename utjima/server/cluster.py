"""Several `utjima serve` processes behind one proxy: the room directory in Redis, and
forwarding a room's requests to the process that owns it.

A room lives on one process, its judge included (who laughed first is decided by one
process from sample times, never by the order messages cross between processes). Each
process has a node id, one character of the room code alphabet, and every room code it
makes starts with it, so a proxy routes `/ws/rooms/<code>` and `/api/rooms/<code>...` by
path prefix alone (docs/deploy.md: the HAProxy config). Redis holds what the processes
must agree on:

  utjima:node:<id>       the node's URL for the other processes; expires NODE_TTL_S after
                         its last heartbeat, so a process that died is gone within seconds
  utjima:rooms:<id>      the codes of the node's live rooms
  utjima:restarted:<code>  a code whose process stopped (or died) while the room was live:
                         a page rejoining it hears "server_restarted", not "no_room";
                         forgotten after RESTARTED_KEEP_S

A request that reaches a process other than the room's owner (a client talking to one
process directly, a proxy without the rules) is forwarded: HTTP with httpx, the
websocket frame by frame (`forward_ws`), the client's address in X-Forwarded-For (which
uvicorn trusts from the addresses in FORWARDED_ALLOW_IPS, loopback by default). A code
whose node has no heartbeat is answered here: `server_restarted` if it was live, else
`no_room`.

`redis` and `httpx` (the `scale` extra) are imported only when `--redis` is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from utjima.utils import UtjimaError

log = logging.getLogger("utjima.server")

NODE_TTL_S = 10  # a node without a heartbeat for this long counts as gone
HEARTBEAT_S = 2.0
RESTARTED_KEEP_S = 86400  # as store.RESTARTED_KEEP: how long a restarted code is remembered
CONNECT_TIMEOUT_S = 3.0
FORWARD_TIMEOUT_S = 10.0
# headers that belong to one hop, never forwarded (RFC 9110 7.6.1), and those httpx or
# uvicorn set themselves. Host is kept: invite links use the address the page reached.
HOP_HEADERS = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailer", "transfer-encoding", "upgrade", "content-length", "date", "server"}


class ClusterError(UtjimaError):
    """Redis cannot be used (missing package, unreachable, node id taken)."""


def _redis_module():
    try:
        import redis.asyncio
        import redis.exceptions
    except ImportError:
        raise ClusterError("--redis needs the redis package: pip install 'utjima[scale]'") \
            from None
    return redis


def check(redis_url: str, node_id: str, node_url: str | None = None) -> None:
    """Before "serving on": the packages are installed, Redis answers, and (with
    `node_url`) no other live process has this node id (one that stopped within NODE_TTL_S
    at the same URL was this one)."""
    redis = _redis_module()
    try:
        import httpx  # noqa: F401  (forwarding)
    except ImportError:
        raise ClusterError("--redis needs the httpx package: pip install 'utjima[scale]'") \
            from None
    import redis as sync_redis

    try:
        client = sync_redis.Redis.from_url(redis_url, socket_timeout=CONNECT_TIMEOUT_S,
                                           socket_connect_timeout=CONNECT_TIMEOUT_S)
        try:
            held = client.get(f"utjima:node:{node_id}")
        finally:
            client.close()
    except (redis.exceptions.RedisError, ValueError, OSError) as e:
        raise ClusterError(f"cannot use Redis at {redis_url}: {e}") from None
    if node_url is not None and held is not None and held.decode() != node_url:
        raise ClusterError(
            f"node id {node_id} is in use by the process at {held.decode()}: give each process "
            f"its own --node-id (or wait {NODE_TTL_S} s if that process just stopped)")


class Directory:
    """This node's view of the room directory (async; one Redis connection pool)."""

    def __init__(self, redis_url: str, node_id: str, node_url: str) -> None:
        redis = _redis_module()
        self.errors = (redis.exceptions.RedisError, OSError)
        self.r = redis.asyncio.Redis.from_url(redis_url, socket_timeout=CONNECT_TIMEOUT_S,
                                      socket_connect_timeout=CONNECT_TIMEOUT_S,
                                      decode_responses=True)
        self.node_id, self.node_url = node_id, node_url
        self._http: Any = None  # httpx.AsyncClient, made on first forward

    # --- this node ----------------------------------------------------------------------------

    async def start(self) -> set[str]:
        """Announce this node; the codes it held when it last stopped (or died) become
        restarted codes, which are returned."""
        await self.heartbeat()
        return await self._retire()

    async def heartbeat(self) -> None:
        await self.r.set(f"utjima:node:{self.node_id}", self.node_url, ex=NODE_TTL_S)

    async def rooms_changed(self, opened: list[str], closed: list[str]) -> None:
        key = f"utjima:rooms:{self.node_id}"
        async with self.r.pipeline(transaction=True) as p:
            if opened:
                p.sadd(key, *opened)
            if closed:
                p.srem(key, *closed)
            await p.execute()

    async def stop(self) -> None:
        """Going away: this node's live codes become restarted codes, the node is gone."""
        with contextlib.suppress(*self.errors):
            await self._retire()
            await self.r.delete(f"utjima:node:{self.node_id}")
        await self.r.aclose()
        if self._http is not None:
            await self._http.aclose()

    async def _retire(self) -> set[str]:
        key = f"utjima:rooms:{self.node_id}"
        codes = await self.r.smembers(key)
        async with self.r.pipeline(transaction=True) as p:
            for code in codes:
                p.set(f"utjima:restarted:{code}", self.node_id, ex=RESTARTED_KEEP_S)
            p.delete(key)
            await p.execute()
        return set(codes)

    # --- other nodes' rooms -------------------------------------------------------------------

    async def locate(self, code: str) -> tuple[str, str | None]:
        """Where a code that is not live here lives: ("live", url of its node),
        ("restarted", None) when its node stopped with the room live, else ("unknown", None).
        A code of this node that is not live here is restarted or unknown."""
        node = code[0]
        url = await self.r.get(f"utjima:node:{node}") if node != self.node_id else None
        if url is not None:
            return "live", url
        async with self.r.pipeline(transaction=False) as p:
            p.exists(f"utjima:restarted:{code}")
            p.sismember(f"utjima:rooms:{node}", code)  # died without going away
            restarted, live = await p.execute()
        return ("restarted" if restarted or live else "unknown"), None

    def http(self) -> Any:
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(timeout=FORWARD_TIMEOUT_S, trust_env=False)
        return self._http


async def forward_http(request: Request, base_url: str, client_addr: str,
                       http: Any) -> Response:
    """The owner's answer to this request (method, path, query, body, headers)."""
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
    headers["x-forwarded-for"] = client_addr
    headers["x-forwarded-proto"] = request.url.scheme
    url = base_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    try:
        r = await http.request(request.method, url, content=await request.body(),
                               headers=headers)
    except Exception as e:  # noqa: BLE001 (any transport failure is the owner's absence)
        log.warning("forwarding %s %s to %s failed: %s", request.method, request.url.path,
                    base_url, e)
        return Response(b'{"detail":{"code":"owner_unreachable","message":"the process that '
                        b'holds this room does not answer; try again in a moment"}}', 502,
                        media_type="application/json")
    keep = {k: v for k, v in r.headers.items()
            if k.lower() not in HOP_HEADERS and k.lower() != "content-encoding"}
    return Response(r.content, r.status_code, headers=keep)


async def forward_ws(ws: WebSocket, url: str, client_addr: str) -> None:
    """Relay an accepted websocket to the owner's, frame by frame, both ways; the owner's
    close code and reason reach the page (1001 on a restart, 44xx on a refusal)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake

    try:
        upstream = await asyncio.wait_for(
            connect(url, additional_headers={"x-forwarded-for": client_addr},
                    max_size=None, ping_interval=None, open_timeout=CONNECT_TIMEOUT_S),
            FORWARD_TIMEOUT_S)
    except (OSError, InvalidHandshake, asyncio.TimeoutError) as e:
        log.warning("forwarding a websocket to %s failed: %s", url, e)
        with contextlib.suppress(Exception):
            await ws.send_text('{"type":"error","code":"owner_unreachable","message":"the '
                               'process that holds this room does not answer; rejoin in a '
                               'moment"}')
            await ws.close(1011, "owner unreachable")
        return

    async def down() -> None:  # owner -> page
        try:
            async for msg in upstream:
                if isinstance(msg, bytes):
                    await ws.send_bytes(msg)
                else:
                    await ws.send_text(msg)
        except ConnectionClosed:
            pass
        rcvd = upstream.close_code or 1006
        with contextlib.suppress(Exception):
            await ws.close(1011 if rcvd in (1005, 1006) else rcvd, upstream.close_reason or "")

    async def up() -> None:  # page -> owner
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                if msg.get("bytes") is not None:
                    await upstream.send(msg["bytes"])
                else:
                    await upstream.send(msg.get("text") or "")
        except (WebSocketDisconnect, ConnectionClosed, RuntimeError):
            pass
        await upstream.close()

    tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.wait(tasks, timeout=CONNECT_TIMEOUT_S)
    finally:
        for t in tasks:
            t.cancel()
        with contextlib.suppress(Exception):
            await upstream.close()
