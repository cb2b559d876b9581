"""The game websocket: `/ws/rooms/{code}`; the first message is `hello` with the token."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

router = APIRouter()


@router.websocket("/ws/rooms/{code}")
async def room_socket(websocket: WebSocket, code: str) -> None:
    await websocket.app.state.hub.serve(websocket, code)
