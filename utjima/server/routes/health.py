"""`GET /api/health`: for a load balancer's check and the load benchmark
(benchmarks/bench_server.py): rooms and sockets in this process, and how late its event
loop runs (the ticker's wake-ups over the last `window_s` seconds, at most a minute)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from utjima.server import schemas
from utjima.server.hub import LAG_KEPT_MS, Hub
from utjima.server.routes.deps import get_hub

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", response_model=schemas.Health)
async def health(hub: Annotated[Hub, Depends(get_hub)],
                 window_s: Annotated[float, Query(ge=1, le=LAG_KEPT_MS / 1000)] = 30.0):
    return hub.health(window_s)
