"""Rooms over HTTP: create one, look one up, join it, resume a seat after a reload.

Handlers are `async` on purpose: rooms live on the event loop, never in a worker thread.
Every request is limited per client address (`ratelimit.address_key`): room requests by
a token bucket, rooms held at once by `max_rooms_per_addr`, and failed lookups (unknown
codes, seats) by the hub's guessing budget."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from utjima.server import schemas
from utjima.server.game import RoomError
from utjima.server.hub import Hub
from utjima.server.routes.deps import client, error, forwarded, get_hub, get_store
from utjima.server.routes.invite import invite_url
from utjima.server.store import Store

router = APIRouter(prefix="/api/rooms", tags=["rooms"])
HubDep = Annotated[Hub, Depends(get_hub)]
StoreDep = Annotated[Store, Depends(get_store)]


def _limited(request: Request, hub: Hub) -> JSONResponse | None:
    if not request.app.state.http_buckets.take(client(request), hub.now()):
        return error(429, "rate_limited", "too many room requests from this address; wait a moment")
    return None


def key_hash(device_key: str | None) -> str | None:
    """What the server keeps of a device key: its SHA-256 (the key itself stays secret)."""
    return None if device_key is None else hashlib.sha256(device_key.encode()).hexdigest()


@router.post("", status_code=201, response_model=schemas.RoomCreated)
async def create_room(request: Request, hub: HubDep, body: schemas.CreateRoomIn | None = None):
    if (r := _limited(request, hub)) is not None:
        return r
    try:
        room = hub.create_room(client(request))
    except RoomError as e:
        return error(e.status, e.code, e.message)
    return schemas.RoomCreated(code=room.code, invite_path=f"/r/{room.code}",
                               invite_url=invite_url(request, room.code))


@router.get("/{code}", response_model=schemas.RoomInfo)
async def room_info(code: str, request: Request, hub: HubDep):
    if (r := await forwarded(request, hub, code)) is not None:
        return r
    try:
        return hub.room(code, client(request)).info()
    except RoomError as e:
        return error(e.status, e.code, e.message)


@router.post("/{code}/join", response_model=schemas.Joined)
async def join(code: str, body: schemas.JoinIn, request: Request, hub: HubDep, store: StoreDep):
    if (r := await forwarded(request, hub, code)) is not None:
        return r
    if (r := _limited(request, hub)) is not None:
        return r
    me = key_hash(body.device_key)
    holder = await run_in_threadpool(store.name_holder, schemas.name_key(body.nickname))
    if holder is not None and holder != me:
        return error(409, "name_taken", (
            f"the nickname {body.nickname!r} belongs to another player on this server "
            "(the browser that first finished a match with it): choose another"))
    try:
        m = hub.room(code, client(request)).join(body.nickname, body.role, hub.now(),
                                                 key_hash=me, watch_key=body.watch_key)
    except RoomError as e:
        if e.code == "invite_only":
            hub.missed(client(request))  # a wrong watch key is a guess too
        return error(e.status, e.code, e.message)
    return schemas.Joined(token=m.token, id=m.id, role=m.role, seat=m.seat, nickname=m.nickname)


@router.post("/{code}/resume", response_model=schemas.Joined)
async def resume(code: str, body: schemas.ResumeIn, request: Request, hub: HubDep):
    """The first token (of those this browser kept) whose seat is free to take back."""
    if (r := await forwarded(request, hub, code)) is not None:
        return r
    if (r := _limited(request, hub)) is not None:
        return r
    try:
        m = hub.room(code, client(request)).resume(body.tokens)
    except RoomError as e:
        return error(e.status, e.code, e.message)
    if m is None:
        hub.missed(client(request))
        return error(404, "no_seat", "none of these seats can be resumed: join again")
    return schemas.Joined(token=m.token, id=m.id, role=m.role, seat=m.seat, nickname=m.nickname)
