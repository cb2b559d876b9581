"""Dependencies: how routes reach the state `lifespan` created (tests override these)."""

from __future__ import annotations

from fastapi import Request

from utjima.server.hub import Hub
from utjima.server.store import Store


def get_hub(request: Request) -> Hub:
    return request.app.state.hub


def get_store(request: Request) -> Store:
    return request.app.state.store
