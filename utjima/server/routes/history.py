"""Finished matches and the leaderboard, as JSON (the pages render them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from utjima.server import schemas
from utjima.server.routes.deps import get_store
from utjima.server.store import Store

router = APIRouter(prefix="/api", tags=["history"])
StoreDep = Annotated[Store, Depends(get_store)]
MAX_ID = 2**53  # ids and offsets past this are not ours (and overflow SQL integers at 2^63)


@router.get("/matches", response_model=list[schemas.MatchOut])
async def matches(store: StoreDep, limit: Annotated[int, Query(ge=1, le=100)] = 20,
                  offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0):
    return await run_in_threadpool(store.list_matches, limit, offset)


@router.get("/matches/{match_id}", response_model=schemas.MatchOut)
async def match(match_id: Annotated[int, Path(ge=1, le=MAX_ID)], store: StoreDep):
    m = await run_in_threadpool(store.get_match, match_id)
    if m is None:
        return JSONResponse({"detail": {"code": "no_match", "message": f"no match {match_id}"}},
                            status_code=404)
    return m


@router.get("/leaderboard", response_model=list[schemas.LeaderRow])
async def leaderboard(store: StoreDep, limit: Annotated[int, Query(ge=1, le=200)] = 50):
    return await run_in_threadpool(store.leaderboard, limit)
