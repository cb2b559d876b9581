"""Invite links a friend can open, and their QR codes (`reach.invite_base` picks the
address: --public-url, else the page's own address when it is not loopback, else this
machine's network address)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from utjima.server import reach, schemas
from utjima.server.game import Room, RoomError
from utjima.server.hub import Hub
from utjima.server.routes.deps import client, error, forwarded, get_hub
from utjima.server.security import plain_host

router = APIRouter(tags=["rooms"])
HubDep = Annotated[Hub, Depends(get_hub)]


def invite_url(request: Request, code: str) -> str:
    """The invite link of room `code` for the page that sent `request`."""
    s = request.app.state.settings
    base = reach.invite_base(public_url=s.public_url, scheme=request.url.scheme,
                             request_host=plain_host(request.headers.get("host")),
                             listen_host=s.host, port=s.port)
    return f"{base}/r/{code}"


async def _room(request: Request, hub: Hub, code: str) -> Room | Response:
    """The room, or the answer instead: its owner's (cluster) or a refusal; a failed lookup
    costs the address from its guessing budget, as every room lookup does."""
    if (r := await forwarded(request, hub, code)) is not None:
        return r
    try:
        return hub.room(code, client(request))
    except RoomError as e:
        return error(e.status, e.code, e.message)


@router.get("/api/rooms/{code}/invite", response_model=schemas.Invite)
async def invite(code: str, request: Request, hub: HubDep):
    room = await _room(request, hub, code)
    if isinstance(room, Response):
        return room
    return schemas.Invite(code=room.code, url=invite_url(request, room.code),
                          qr_svg=f"/r/{room.code}/qr.svg")


@router.get("/r/{code}/qr.svg", include_in_schema=False)
async def qr(code: str, request: Request, hub: HubDep) -> Response:
    room = await _room(request, hub, code)
    if isinstance(room, Response):
        return room
    return Response(reach.qr_svg(invite_url(request, room.code)), media_type="image/svg+xml",
                    headers={"cache-control": "no-cache"})
