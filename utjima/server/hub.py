"""`Hub`: the rooms, their websockets, the ticker and the store, wired together.

Everything the game decides lives in `game.Room`; the hub only moves bytes:
- it creates rooms (at most `max_rooms_per_addr` held by one address) and looks them up
  by code; failed lookups, joins and hellos cost the address from a small budget, so room
  codes cannot be guessed at speed; a code that was live when the server last stopped is
  answered with `server_restarted`, not `no_room`;
- `serve(websocket, code)` runs one connection: the `hello` handshake, then each message
  checked for size, rate (token buckets per seat and per address, which reconnecting does
  not refill) and shape (pydantic) before the room sees it; problems are answered with
  `{"type": "error", "code", "message"}`, and abuse (flooding, oversize frames, a stream
  of invalid messages) also closes the socket;
- each connection gets a send queue bounded in bytes and a writer task, so one slow
  client never holds up the others: a socket that falls behind is closed (logged once);
- a ticker calls `room.tick(now)` every `tick_ms`, stores finished matches, closes
  sockets that answer no ping within `pong_timeout_ms`, and drops rooms that have been
  empty for a while (sooner when nobody ever joined); how late each tick wakes is the
  event loop's lag, kept for a minute (`health()`, `GET /api/health`);
- `going_away()` (on SIGTERM, before uvicorn closes the sockets) tells every page the
  server is restarting and closes with 1001;
- in a cluster (`--node-id` with `--redis`, utjima/server/cluster.py) room codes start
  with the node id, live codes are kept in the Redis directory (not the shared store),
  and a code of another node is forwarded to it (`elsewhere`), or answered with
  `server_restarted` when its node stopped;
- an optional observer (`create_app(observe=...)`) hears the size and type of every
  websocket frame received, never its contents: the tests audit that no media arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from utjima.judge import JudgeConfig
from utjima.server import schemas
from utjima.server.game import Close, Output, Room, RoomError, Send
from utjima.server.ratelimit import KeyedBuckets, address_key
from utjima.server.settings import Settings
from utjima.server.store import Store

log = logging.getLogger("utjima.server")

HELLO_TIMEOUT_S = 10.0
SEND_QUEUE = 512  # messages queued for one client before it counts as too slow (and bytes:
# Settings.send_queue_bytes)
CLOSE_TIMEOUT_S = 2.0  # a socket that cannot take its close frame is dropped after this
SIGNAL_ENVELOPE_BYTES = 1024  # a relayed signal's JSON around its sdp/candidate
LAG_KEPT_MS = 60_000.0  # how long the ticker's wake-up lags are kept (health())

# websocket close codes (4000-4999 are the application's)
CLOSE_BAD_MESSAGES = 4400
CLOSE_BAD_TOKEN = 4401
CLOSE_NO_ROOM = 4404
CLOSE_RATE = 4408
CLOSE_REPLACED = 4409
CLOSE_TOO_LARGE = 4413
CLOSE_TOO_SLOW = 4429
CLOSE_NO_PONG = 4410
CLOSE_GOING_AWAY = 1001  # RFC 6455: the server is going down (a restart)
HEARTBEAT_MS = 2000.0  # in a cluster, how often this node tells the directory it is alive


# Hears one record per websocket frame and HTTP request body received, sizes and types
# only: {"kind": "ws", "bytes", "binary", "type"} or
# {"kind": "http", "method", "path", "bytes", "content_type"}.
Observer = Callable[[dict[str, Any]], None]


def ignore(record: dict[str, Any]) -> None:
    """The observer when nobody listens."""


def wire(msg: schemas.Out) -> str:
    """A server message as the JSON text sent on the wire: UTF-8 as is (a signal of "é" is
    relayed at its own size, not six bytes a character), no padding."""
    return msg.model_dump_json(by_alias=True)  # pydantic's own encoder: compact, UTF-8


def error_text(code: str, message: str) -> str:
    """An `error` message as the JSON text sent on the wire."""
    return wire(schemas.ErrorMsg(code=code, message=message))


@dataclass
class Conn:
    ws: WebSocket
    code: str
    member: str
    gen: int  # the member's connection generation when this socket said hello
    addr: str = "?"  # ratelimit.address_key of the client
    last_pong_ms: float = 0.0  # server time of the last pong (or of the hello)
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)  # (text, bytes, close)
    queued_bytes: int = 0  # UTF-8 bytes waiting in `queue`
    dropped: bool = False  # closed for falling behind (or no pong): queue no more
    writer: asyncio.Task | None = None


class Hub:
    def __init__(self, settings: Settings, cfg: JudgeConfig, store: Store,
                 observe: Observer = ignore) -> None:
        self.s, self.cfg, self.store = settings, cfg, store
        self.rooms: dict[str, Room] = {}
        self.conns: dict[tuple[str, str], Conn] = {}  # (room code, member id) -> socket
        self.observe = observe
        self.owners: dict[str, str] = {}  # room code -> address key of its creator
        # codes that were live when the server last stopped (store.restarted_rooms)
        self.restarted: set[str] = set()
        self.misses = KeyedBuckets(settings.miss_rate_per_s, settings.miss_burst)
        self.seat_budget = KeyedBuckets(settings.msg_rate_per_s, settings.msg_burst)
        self.addr_budget = KeyedBuckets(settings.addr_msg_rate_per_s, settings.addr_msg_burst)
        self._opened: list[str] = []  # room codes to record as live / as closed (ticker)
        self._closed: list[str] = []
        self._ticker: asyncio.Task | None = None
        self._closing: set[asyncio.Task] = set()
        self.lags: deque[tuple[float, float]] = deque()  # (server ms, how late a tick woke)
        self.directory: Any = None  # cluster.Directory when this process is one of several
        self._beat_ms = 0.0

    def now(self) -> float:
        return self.s.clock()

    def health(self, window_s: float) -> dict[str, Any]:
        """Rooms, sockets, and the event loop's lag over the last `window_s` seconds: how
        late the ticker woke (ms), the time every room, socket and request waits too."""
        since = self.now() - window_s * 1000.0
        lags = sorted(lag for t, lag in self.lags if t >= since)

        def q(p: float) -> float | None:
            return round(lags[min(len(lags) - 1, round(p * (len(lags) - 1)))], 2) if lags else None

        return {"rooms": len(self.rooms), "connections": len(self.conns),
                "loop_lag_ms": {"window_s": window_s, "ticks": len(lags), "p50": q(0.5),
                                "p99": q(0.99), "max": q(1.0)}}

    # --- rooms -------------------------------------------------------------------------------

    def create_room(self, addr: str = "?") -> Room:
        """A new room held by `addr` (its creator's address key)."""
        held = sum(1 for a in self.owners.values() if a == addr)
        if held >= self.s.max_rooms_per_addr:
            raise RoomError(429, "too_many_rooms_here", (
                f"this address already holds {held} rooms; play in one of them, or wait until "
                "one closes (a room nobody joins closes after "
                f"{self.s.room_unjoined_ms / 1000:g} s)"))
        if len(self.rooms) >= self.s.max_rooms:
            raise RoomError(503, "too_many_rooms",
                            f"the server holds {self.s.max_rooms} rooms already; try again later")
        node = self.s.node_id or ""
        while True:
            code = node + "".join(secrets.choice(schemas.ROOM_CODE_ALPHABET)
                                  for _ in range(schemas.ROOM_CODE_LEN - len(node)))
            if code not in self.rooms and code not in self.restarted:
                break
        room = Room(code, self.s, self.cfg, self.now())
        self.rooms[code] = room
        self.owners[code] = addr
        self._opened.append(code)
        return room

    def room(self, code: str, addr: str | None = None) -> Room:
        """The room with this code. With `addr`, a failed lookup costs that address from
        its guessing budget, and an address whose budget is spent is refused (429)."""
        if addr is not None and self.misses.empty(addr, self.now()):
            raise RoomError(429, "rate_limited", (
                "too many unknown room codes or seats from this address; wait a minute "
                "and check the code"))
        try:
            code = schemas.clean_room_code(code)
        except ValueError as e:
            self.missed(addr)
            raise RoomError(404, "bad_code", str(e)) from None
        room = self.rooms.get(code)
        if room is None:
            if code in self.restarted:
                raise RoomError(410, "server_restarted", (
                    f"the server restarted, and room {code} ended with it; create a new room "
                    "(finished matches are kept)"))
            self.missed(addr)
            raise RoomError(404, "no_room", f"there is no room {code}: check the code, "
                                            "or create a new room (empty rooms close)")
        return room

    async def elsewhere(self, code: str) -> str | None:
        """In a cluster: the URL of the node that owns `code` when that is another live
        node (the caller forwards there), else None (this node answers). A code whose node
        stopped with the room live is a RoomError 410 `server_restarted`."""
        if self.directory is None:
            return None
        try:
            code = schemas.clean_room_code(code)
        except ValueError:
            return None
        if code in self.rooms:
            return None
        try:
            state, url = await self.directory.locate(code)
        except self.directory.errors as e:
            log.warning("room directory lookup of %s failed: %s", code, e)
            raise RoomError(503, "directory_unavailable", (
                "the room directory does not answer; try again in a moment")) from None
        if state == "restarted":
            raise RoomError(410, "server_restarted", (
                f"the server holding room {code} restarted, and the room ended with it; "
                "create a new room (finished matches are kept)"))
        return url if code[0] != self.s.node_id else None

    def missed(self, addr: str | None) -> None:
        """A failed lookup, join or hello from `addr`: spend from its guessing budget."""
        if addr is not None:
            self.misses.take(addr, self.now())

    async def dispatch(self, room: Room, out: list[Output]) -> None:
        """Queue a room's outputs on its sockets."""
        for o in out:
            if isinstance(o, Send):
                text = wire(o.msg)
                size = len(text.encode())
                if isinstance(o.msg, schemas.SignalOut) \
                        and size > self.s.max_signal_bytes + SIGNAL_ENVELOPE_BYTES:
                    # measured as it would be relayed (after escaping), not as received
                    sender = self.conns.get((room.code, o.msg.sender))
                    if sender is not None:
                        self._enqueue(sender, error_text("too_large", (
                            f"this signal would be relayed as {size} bytes; the limit is "
                            f"{self.s.max_signal_bytes}")))
                    continue
                ids = o.to if o.to is not None else [
                    m.id for m in room.members.values() if m.connected]
                for mid in ids:
                    conn = self.conns.get((room.code, mid))
                    if conn is not None:
                        self._enqueue(conn, text, size)
            elif isinstance(o, Close):
                conn = self.conns.get((room.code, o.member))
                if conn is not None:
                    self._enqueue(conn, None, 0, (o.code, o.reason))

    def _enqueue(self, conn: Conn, text: str | None, size: int = 0,
                 close: tuple[int, str] | None = None) -> None:
        if conn.dropped:
            return
        if text is not None and not size:
            size = len(text.encode())
        if conn.queue.qsize() >= SEND_QUEUE or conn.queued_bytes + size > self.s.send_queue_bytes:
            self._drop(conn, "too_slow", "your connection cannot keep up; reconnecting may help",
                       CLOSE_TOO_SLOW, "too slow")
            return
        conn.queued_bytes += size
        conn.queue.put_nowait((text, size, close))

    def _drop(self, conn: Conn, code: str, message: str, close: int, reason: str) -> None:
        """Close a socket that fell behind (or stopped answering pings): its backlog is
        dropped, it gets one error and the close, and the server log one line."""
        if conn.dropped:
            return
        conn.dropped = True
        log.warning("room %s: closing member %s's socket (%s, %d bytes queued)",
                    conn.code, conn.member, reason, conn.queued_bytes)
        if conn.writer is not None:
            conn.writer.cancel()
        conn.queue, conn.queued_bytes = asyncio.Queue(), 0
        task = asyncio.get_running_loop().create_task(
            self._close_now(conn, error_text(code, message), close, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_now(self, conn: Conn, text: str, close: int, reason: str) -> None:
        # the error only if the socket takes it at once; the close frame has the server's
        # own close timeout, after which the connection is cut
        with contextlib.suppress(Exception, asyncio.TimeoutError):
            await asyncio.wait_for(conn.ws.send_text(text), CLOSE_TIMEOUT_S)
        with contextlib.suppress(Exception):
            await conn.ws.close(close, reason)

    async def _writer(self, conn: Conn) -> None:
        try:
            while True:
                text, size, close = await conn.queue.get()
                conn.queued_bytes -= size
                if text is not None:
                    await conn.ws.send_text(text)
                if close is not None:
                    await conn.ws.close(*close)
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the reader sees the disconnect and cleans up

    # --- one connection -------------------------------------------------------------------

    async def _refuse(self, ws: WebSocket, code: str, message: str, close: int) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await ws.send_text(error_text(code, message))
            await ws.close(close, code)

    async def _receive(self, ws: WebSocket) -> tuple[str | None, int, bool]:
        """(text or None for binary, size in bytes, binary?) of the next frame."""
        msg = await ws.receive()
        if msg["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(msg.get("code", 1000))
        if msg.get("bytes") is not None:
            data = msg["bytes"]
            self.observe({"kind": "ws", "bytes": len(data), "binary": True, "type": None})
            return None, len(data), True
        text = msg.get("text") or ""
        size = len(text.encode())
        return text, size, False

    def _parse(self, text: str | None, size: int, binary: bool) -> tuple[Any, str | None, str]:
        """(message, error code, error text): one of the two is None."""
        if binary:
            return None, "bad_message", "binary frames are not accepted: send JSON text"
        if size > self.s.max_signal_bytes:
            return None, "too_large", (f"message of {size} bytes exceeds the limit of "
                                       f"{self.s.max_signal_bytes} bytes")
        try:
            raw = json.loads(text or "")
        except RecursionError:
            return None, "bad_message", "not JSON we accept: nested too deeply"
        except ValueError as e:  # JSONDecodeError, or an integer of thousands of digits
            return None, "bad_message", f"not JSON: {str(e)[:120]}"
        mtype = raw.get("type") if isinstance(raw, dict) else None
        self.observe({"kind": "ws", "bytes": size, "binary": False,
                      "type": mtype if mtype in schemas.CLIENT_TYPES else "?"})
        if mtype != "signal" and size > self.s.max_msg_bytes:
            return None, "too_large", (f"a {mtype!r} message of {size} bytes exceeds the limit "
                                       f"of {self.s.max_msg_bytes} bytes")
        if (score := schemas.fast_score(raw)) is not None:
            return score, None, ""  # the hot path: a well-formed score, checked by hand
        try:
            return schemas.CLIENT_MESSAGE.validate_python(raw), None, ""
        except ValidationError as e:
            if not isinstance(raw, dict) or mtype not in schemas.CLIENT_TYPES:
                return None, "bad_message", (f"unknown message type {repr(mtype)[:40]}; valid "
                                             f"types: {', '.join(schemas.CLIENT_TYPES)}")
            return None, "bad_message", f"invalid {mtype!r} message: {schemas.describe(e.errors())}"

    async def serve(self, ws: WebSocket, code: str) -> None:
        """Run one websocket until it closes."""
        await ws.accept()
        addr = address_key(ws.client.host if ws.client else None)
        try:
            if (owner := await self.elsewhere(code)) is not None:
                from utjima.server.cluster import forward_ws

                base = "ws" + owner[len("http"):]  # http -> ws, https -> wss
                await forward_ws(ws, f"{base.rstrip('/')}/ws/rooms/{code}",
                                 ws.client.host if ws.client else "")
                return
            room = self.room(code, addr)
        except RoomError as e:
            await self._refuse(ws, e.code, e.message,
                               CLOSE_RATE if e.status == 429 else CLOSE_NO_ROOM)
            return
        try:
            text, size, binary = await asyncio.wait_for(self._receive(ws), HELLO_TIMEOUT_S)
        except (asyncio.TimeoutError, WebSocketDisconnect):
            await self._refuse(ws, "bad_message", "expected a hello message first", CLOSE_BAD_TOKEN)
            return
        if not self.addr_budget.take(addr, self.now()):
            await self._refuse(ws, "rate_limited", "too many messages from this address; wait "
                               "a moment", CLOSE_RATE)
            return
        msg, err, err_text = self._parse(text, size, binary)
        if err or not isinstance(msg, schemas.Hello):
            await self._refuse(ws, err or "bad_message", err_text or
                               'the first message must be {"type": "hello", "token": ...}',
                               CLOSE_BAD_TOKEN)
            return
        if msg.v != schemas.PROTOCOL_VERSION:
            await self._refuse(ws, "bad_version", f"this server speaks protocol version "
                               f"{schemas.PROTOCOL_VERSION}, the page {msg.v}: reload the page",
                               CLOSE_BAD_MESSAGES)
            return
        member = room.by_token(msg.token)
        if member is None:
            self.missed(addr)
            await self._refuse(ws, "bad_token", "unknown token for this room (the seat may "
                               "have expired): join again", CLOSE_BAD_TOKEN)
            return
        out = room.connect(member.id, self.now())
        conn = Conn(ws=ws, code=room.code, member=member.id, gen=member.conn, addr=addr,
                    last_pong_ms=self.now())
        # a seat opened again (a reload whose old socket is still open): the room's
        # "replaced" error and Close go to the old socket, the rest to this one
        cut = next((i + 1 for i, o in enumerate(out)
                    if isinstance(o, Close) and o.member == member.id), 0)
        await self.dispatch(room, out[:cut])
        self.conns[(room.code, member.id)] = conn
        conn.writer = asyncio.create_task(self._writer(conn))
        await self.dispatch(room, out[cut:])
        try:
            await self._loop(room, conn)
        finally:
            if self.conns.get((room.code, member.id)) is conn:
                del self.conns[(room.code, member.id)]
                # let what is queued (an error, a close) go out before stopping the writer
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(conn.writer), 0.2)
            conn.writer.cancel()
            if room.code in self.rooms:
                await self.dispatch(room, room.disconnect(member.id, conn.gen, self.now()))

    async def _loop(self, room: Room, conn: Conn) -> None:
        seat = f"{room.code}/{conn.member}"  # the budget outlives this socket
        bad = 0
        while True:
            try:
                text, size, binary = await self._receive(conn.ws)
            except (WebSocketDisconnect, RuntimeError):
                return
            now = self.now()
            if not (self.seat_budget.take(seat, now) and self.addr_budget.take(conn.addr, now)):
                self._enqueue(conn, error_text("rate_limited", (
                    f"more than {self.s.msg_burst} messages at once or "
                    f"{self.s.msg_rate_per_s:g} per second sustained from this seat (or too "
                    "many from this address); closing")), close=(CLOSE_RATE, "rate limited"))
                await self._drain(conn)
                return
            msg, err, err_text = self._parse(text, size, binary)
            if err is not None:
                close = None
                if err == "too_large":
                    close = (CLOSE_TOO_LARGE, "too large")
                else:
                    bad += 1
                    if bad > self.s.max_bad_messages:
                        close = (CLOSE_BAD_MESSAGES, "too many invalid messages")
                        err_text += f" ({bad} invalid messages: closing)"
                self._enqueue(conn, error_text(err, err_text), close=close)
                if close:
                    await self._drain(conn)
                    return
                continue
            if room.code not in self.rooms or conn.member not in room.members:
                return
            if room.members[conn.member].conn != conn.gen:
                return  # this socket was replaced by a newer one
            if isinstance(msg, schemas.Pong):
                conn.last_pong_ms = now
            await self.dispatch(room, room.handle(conn.member, msg, now))
            await self._persist(room)

    async def _drain(self, conn: Conn) -> None:
        if conn.writer is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(conn.writer), 1.0)

    # --- time and storage ---------------------------------------------------------------------

    async def _persist(self, room: Room) -> None:
        for rec in room.take_records():
            try:
                match_id = await asyncio.to_thread(self.store.save_match, rec,
                                                   datetime.now(timezone.utc))
            except Exception:  # a storage failure must not kill the room; report it
                log.exception("room %s: storing match %d failed", room.code, rec.number)
                await self.dispatch(room, [Send(None, schemas.ErrorMsg(
                    code="storage_failed", message="the match result could not be saved"))])
                continue
            await self.dispatch(room, room.stored(rec.number, match_id, self.now()))

    async def tick(self) -> None:
        """One pass over every room (the ticker calls this every tick_ms)."""
        now = self.now()
        for code, room in list(self.rooms.items()):
            await self.dispatch(room, room.tick(now))
            await self._persist(room)
            idle = now - room.last_active_ms
            if room.empty and (idle > self.s.room_idle_ms
                               or (not room.joined_ever and idle > self.s.room_unjoined_ms)):
                del self.rooms[code]
                self.owners.pop(code, None)
                self._closed.append(code)
        for conn in list(self.conns.values()):
            if now - conn.last_pong_ms > self.s.pong_timeout_ms:
                self._drop(conn, "no_pong", (
                    f"no pong for {self.s.pong_timeout_ms / 1000:g} s: closing (a page answers "
                    "every ping at once)"), CLOSE_NO_PONG, "no pong")
        await self._record_rooms()

    async def _record_rooms(self) -> None:
        """Write which room codes went live and which closed (for restart notices): to the
        store, or in a cluster to the room directory (with this node's heartbeat)."""
        if self.directory is not None and self.now() - self._beat_ms > HEARTBEAT_MS:
            self._beat_ms = self.now()
            try:
                await self.directory.heartbeat()
            except self.directory.errors as e:
                log.warning("room directory heartbeat failed: %s", e)
        if not (self._opened or self._closed):
            return
        opened, closed, self._opened, self._closed = self._opened, self._closed, [], []
        try:
            if self.directory is not None:
                await self.directory.rooms_changed(opened, closed)
            else:
                await asyncio.to_thread(self.store.rooms_changed, opened, closed)
        except Exception:  # the game goes on without restart notices; report it
            log.exception("recording %d opened and %d closed rooms failed",
                          len(opened), len(closed))

    async def run_ticker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.s.tick_ms / 1000.0
            await asyncio.sleep(self.s.tick_ms / 1000.0)
            now = self.now()
            self.lags.append((now, max(0.0, (loop.time() - due) * 1000.0)))
            while self.lags and self.lags[0][0] < now - LAG_KEPT_MS:
                self.lags.popleft()
            try:
                await self.tick()
            except Exception:  # keep ticking: one bad room must not stop every game
                log.exception("tick failed")

    def start(self) -> None:
        self._ticker = asyncio.create_task(self.run_ticker())

    async def going_away(self) -> None:
        """The server is stopping (SIGTERM): tell every page, close with 1001, and keep
        the live room codes recorded so that a page rejoining after the restart hears
        "server_restarted". Called before uvicorn closes the connections itself.

        A match decided but not yet stored is stored first; a match still running is
        interrupted: it ends here, unstored and credited to nobody (as an abandoned one)."""
        for room in list(self.rooms.values()):
            await self._persist(room)
            if room.match is not None and room.in_match:
                log.warning("room %s: match %d interrupted by the shutdown (not stored, "
                            "nobody credited)", room.code, room.match.number)
        for conn in list(self.conns.values()):
            self._enqueue(conn, error_text("server_restarting", (
                "the server is restarting: rejoin in a moment (a running match ends; "
                "finished matches are kept)")), close=(CLOSE_GOING_AWAY, "server restarting"))
        writers = [c.writer for c in self.conns.values() if c.writer is not None]
        if writers:
            await asyncio.wait(writers, timeout=CLOSE_TIMEOUT_S)
        await self._record_rooms()

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.going_away()
        for conn in list(self.conns.values()):
            if conn.ws.client_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await conn.ws.close(CLOSE_GOING_AWAY, "server shutting down")
        if self.directory is not None:
            await self.directory.stop()
