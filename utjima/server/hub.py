"""`Hub`: the rooms, their websockets, the ticker and the store, wired together.

Everything the game decides lives in `game.Room`; the hub only moves bytes:
- it creates rooms and looks them up by code;
- `serve(websocket, code)` runs one connection: the `hello` handshake, then each message
  checked for size, rate (a token bucket) and shape (pydantic) before the room sees it;
  problems are answered with `{"type": "error", "code", "message"}`, and abuse (flooding,
  oversize frames, a stream of invalid messages) also closes the socket;
- each connection gets a bounded send queue and a writer task, so one slow client never
  holds up the others;
- a ticker calls `room.tick(now)` every `tick_ms`, stores finished matches and drops
  rooms that have been empty for a while;
- an optional observer (`create_app(observe=...)`) hears the size and type of every
  websocket frame received, never its contents: the tests audit that no media arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from utjima.judge import JudgeConfig
from utjima.server import schemas
from utjima.server.game import Close, Output, Room, RoomError, Send
from utjima.server.ratelimit import TokenBucket
from utjima.server.settings import Settings
from utjima.server.store import Store

log = logging.getLogger("utjima.server")

HELLO_TIMEOUT_S = 10.0
SEND_QUEUE = 512  # messages queued for one client before it counts as too slow

# websocket close codes (4000-4999 are the application's)
CLOSE_BAD_MESSAGES = 4400
CLOSE_BAD_TOKEN = 4401
CLOSE_NO_ROOM = 4404
CLOSE_RATE = 4408
CLOSE_REPLACED = 4409
CLOSE_TOO_LARGE = 4413
CLOSE_TOO_SLOW = 4429


# Hears one record per websocket frame and HTTP request body received, sizes and types
# only: {"kind": "ws", "bytes", "binary", "type"} or
# {"kind": "http", "method", "path", "bytes", "content_type"}.
Observer = Callable[[dict[str, Any]], None]


def ignore(record: dict[str, Any]) -> None:
    """The observer when nobody listens."""


def error_text(code: str, message: str) -> str:
    """An `error` message as the JSON text sent on the wire."""
    return json.dumps(schemas.dump(schemas.ErrorMsg(code=code, message=message)))


@dataclass
class Conn:
    ws: WebSocket
    code: str
    member: str
    gen: int  # the member's connection generation when this socket said hello
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(SEND_QUEUE))
    writer: asyncio.Task | None = None


class Hub:
    def __init__(self, settings: Settings, cfg: JudgeConfig, store: Store,
                 observe: Observer = ignore) -> None:
        self.s, self.cfg, self.store = settings, cfg, store
        self.rooms: dict[str, Room] = {}
        self.conns: dict[tuple[str, str], Conn] = {}  # (room code, member id) -> socket
        self.observe = observe
        self._ticker: asyncio.Task | None = None

    def now(self) -> float:
        return self.s.clock()

    # --- rooms -------------------------------------------------------------------------------

    def create_room(self) -> Room:
        if len(self.rooms) >= self.s.max_rooms:
            raise RoomError(503, "too_many_rooms",
                            f"the server holds {self.s.max_rooms} rooms already; try again later")
        while True:
            code = "".join(secrets.choice(schemas.ROOM_CODE_ALPHABET)
                           for _ in range(schemas.ROOM_CODE_LEN))
            if code not in self.rooms:
                break
        room = Room(code, self.s, self.cfg, self.now())
        self.rooms[code] = room
        return room

    def room(self, code: str) -> Room:
        try:
            code = schemas.clean_room_code(code)
        except ValueError as e:
            raise RoomError(404, "bad_code", str(e)) from None
        room = self.rooms.get(code)
        if room is None:
            raise RoomError(404, "no_room", f"there is no room {code}: check the code, "
                                            "or create a new room (empty rooms close)")
        return room

    async def dispatch(self, room: Room, out: list[Output]) -> None:
        """Queue a room's outputs on its sockets."""
        for o in out:
            if isinstance(o, Send):
                text = json.dumps(schemas.dump(o.msg))
                ids = o.to if o.to is not None else [
                    m.id for m in room.members.values() if m.connected]
                for mid in ids:
                    conn = self.conns.get((room.code, mid))
                    if conn is not None:
                        self._enqueue(conn, text)
            elif isinstance(o, Close):
                conn = self.conns.get((room.code, o.member))
                if conn is not None:
                    self._enqueue(conn, None, (o.code, o.reason))

    def _enqueue(self, conn: Conn, text: str | None, close: tuple[int, str] | None = None) -> None:
        try:
            conn.queue.put_nowait((text, close))
        except asyncio.QueueFull:
            log.warning("room %s: member %s is too slow, closing", conn.code, conn.member)
            conn.queue = asyncio.Queue(2)  # drop the backlog; the writer reads the new queue
            conn.queue.put_nowait((error_text(
                "too_slow", "your connection cannot keep up; reconnecting may help"), None))
            conn.queue.put_nowait((None, (CLOSE_TOO_SLOW, "too slow")))

    async def _writer(self, conn: Conn) -> None:
        try:
            while True:
                text, close = await conn.queue.get()
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
        except json.JSONDecodeError as e:
            return None, "bad_message", f"not JSON: {e}"
        mtype = raw.get("type") if isinstance(raw, dict) else None
        self.observe({"kind": "ws", "bytes": size, "binary": False,
                      "type": mtype if mtype in schemas.CLIENT_TYPES else "?"})
        if mtype != "signal" and size > self.s.max_msg_bytes:
            return None, "too_large", (f"a {mtype!r} message of {size} bytes exceeds the limit "
                                       f"of {self.s.max_msg_bytes} bytes")
        try:
            return schemas.CLIENT_MESSAGE.validate_python(raw), None, ""
        except ValidationError as e:
            if not isinstance(raw, dict) or mtype not in schemas.CLIENT_TYPES:
                return None, "bad_message", (f"unknown message type {mtype!r}; valid types: "
                                             f"{', '.join(schemas.CLIENT_TYPES)}")
            return None, "bad_message", f"invalid {mtype!r} message: {schemas.describe(e.errors())}"

    async def serve(self, ws: WebSocket, code: str) -> None:
        """Run one websocket until it closes."""
        await ws.accept()
        try:
            room = self.room(code)
        except RoomError as e:
            await self._refuse(ws, e.code, e.message, CLOSE_NO_ROOM)
            return
        try:
            text, size, binary = await asyncio.wait_for(self._receive(ws), HELLO_TIMEOUT_S)
        except (asyncio.TimeoutError, WebSocketDisconnect):
            await self._refuse(ws, "bad_message", "expected a hello message first", CLOSE_BAD_TOKEN)
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
            await self._refuse(ws, "bad_token", "unknown token for this room (the seat may "
                               "have expired): join again", CLOSE_BAD_TOKEN)
            return
        out = room.connect(member.id, self.now())
        conn = Conn(ws=ws, code=room.code, member=member.id, gen=member.conn)
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
        bucket = TokenBucket(self.s.msg_rate_per_s, self.s.msg_burst)
        bad = 0
        while True:
            try:
                text, size, binary = await self._receive(conn.ws)
            except (WebSocketDisconnect, RuntimeError):
                return
            now = self.now()
            if not bucket.take(now):
                self._enqueue(conn, error_text("rate_limited", (
                    f"more than {self.s.msg_burst} messages at once or "
                    f"{self.s.msg_rate_per_s:g} per second sustained; closing")),
                    (CLOSE_RATE, "rate limited"))
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
                self._enqueue(conn, error_text(err, err_text), close)
                if close:
                    await self._drain(conn)
                    return
                continue
            if room.code not in self.rooms or conn.member not in room.members:
                return
            if room.members[conn.member].conn != conn.gen:
                return  # this socket was replaced by a newer one
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
            if room.empty and now - room.last_active_ms > self.s.room_idle_ms:
                del self.rooms[code]

    async def run_ticker(self) -> None:
        while True:
            await asyncio.sleep(self.s.tick_ms / 1000.0)
            try:
                await self.tick()
            except Exception:  # keep ticking: one bad room must not stop every game
                log.exception("tick failed")

    def start(self) -> None:
        self._ticker = asyncio.create_task(self.run_ticker())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for conn in list(self.conns.values()):
            if conn.ws.client_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await conn.ws.close(1001, "server shutting down")
