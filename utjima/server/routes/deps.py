"""Dependencies: how routes reach the state `lifespan` created (tests override these)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from utjima.server.game import RoomError
from utjima.server.hub import Hub
from utjima.server.ratelimit import address_key
from utjima.server.store import Store


def error(status: int, code: str, message: str) -> JSONResponse:
    """Every refusal's shape: {"detail": {code, message}}."""
    return JSONResponse({"detail": {"code": code, "message": message}}, status_code=status)


def client(request: Request) -> str:
    """The address a request's limits and guessing budget are counted for."""
    return address_key(request.client.host if request.client else None)


def get_hub(request: Request) -> Hub:
    return request.app.state.hub


def get_store(request: Request) -> Store:
    return request.app.state.store


async def forwarded(request: Request, hub: Hub, code: str) -> Response | None:
    """In a cluster (server/cluster.py), the answer of the process that owns room `code`
    when that is another one, or this process's answer for a code whose process stopped;
    else None (this process answers)."""
    try:
        owner = await hub.elsewhere(code)
    except RoomError as e:
        return error(e.status, e.code, e.message)
    if owner is None:
        return None
    from utjima.server.cluster import forward_http

    return await forward_http(request, owner, request.client.host if request.client else "",
                              hub.directory.http())
