"""Rooms over HTTP: create one, look one up, join it, resume a seat after a reload.

Handlers are `async` on purpose: rooms live on the event loop, never in a worker thread."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from utjima.server import schemas
from utjima.server.game import RoomError
from utjima.server.hub import Hub
from utjima.server.routes.deps import get_hub
from utjima.server.routes.invite import invite_url

router = APIRouter(prefix="/api/rooms", tags=["rooms"])
HubDep = Annotated[Hub, Depends(get_hub)]


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": {"code": code, "message": message}}, status_code=status)


def _limited(request: Request, hub: Hub) -> JSONResponse | None:
    key = request.client.host if request.client else "?"
    if not request.app.state.http_buckets.take(key, hub.now()):
        return error(429, "rate_limited", "too many room requests from this address; wait a moment")
    return None


@router.post("", status_code=201, response_model=schemas.RoomCreated)
async def create_room(request: Request, hub: HubDep, body: schemas.CreateRoomIn | None = None):
    if (r := _limited(request, hub)) is not None:
        return r
    try:
        room = hub.create_room()
    except RoomError as e:
        return error(e.status, e.code, e.message)
    return schemas.RoomCreated(code=room.code, invite_path=f"/r/{room.code}",
                               invite_url=invite_url(request, room.code))


@router.get("/{code}", response_model=schemas.RoomInfo)
async def room_info(code: str, hub: HubDep):
    try:
        return hub.room(code).info()
    except RoomError as e:
        return error(e.status, e.code, e.message)


@router.post("/{code}/join", response_model=schemas.Joined)
async def join(code: str, body: schemas.JoinIn, request: Request, hub: HubDep):
    if (r := _limited(request, hub)) is not None:
        return r
    try:
        m = hub.room(code).join(body.nickname, body.role, hub.now())
    except RoomError as e:
        return error(e.status, e.code, e.message)
    return schemas.Joined(token=m.token, id=m.id, role=m.role, seat=m.seat, nickname=m.nickname)


@router.post("/{code}/resume", response_model=schemas.Joined)
async def resume(code: str, body: schemas.ResumeIn, request: Request, hub: HubDep):
    """The first token (of those this browser kept) whose seat is free to take back."""
    if (r := _limited(request, hub)) is not None:
        return r
    try:
        m = hub.room(code).resume(body.tokens)
    except RoomError as e:
        return error(e.status, e.code, e.message)
    if m is None:
        return error(404, "no_seat", "none of these seats can be resumed: join again")
    return schemas.Joined(token=m.token, id=m.id, role=m.role, seat=m.seat, nickname=m.nickname)
