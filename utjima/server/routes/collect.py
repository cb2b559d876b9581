"""Clip collection over HTTP: only when the server runs with `--collect DIR`; otherwise
every route answers 404 `not_collecting`. The capture page (/capture) is the client.

  GET    /api/collect                     collecting? limits; with a token: is it right?
  POST   /api/collect/uploads             a session's zip (application/zip), with
                                          `Authorization: Bearer <collection token>`, and
                                          `X-Participant-Token` when the id uploaded before
  GET    /api/collect/participants/{id}   what is stored for me (`X-Participant-Token`)
  DELETE /api/collect/participants/{id}   delete my clips (`X-Participant-Token`)

Uploads are checked whole in memory (collect.check_upload, in a worker thread, one at a
time) before anything is written; each request costs a token of the address's bucket.
"""

from __future__ import annotations

import asyncio
import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from utjima.server.collect import ID, CollectError, Collection, check_upload, describe_limits
from utjima.server.collect import token_matches as _matches
from utjima.server.routes.deps import error

router = APIRouter(prefix="/api/collect", tags=["collect"])
ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream")


def _collection(request: Request) -> Collection:
    col = getattr(request.app.state, "collection", None)
    if col is None:
        raise CollectError(404, "not_collecting", "this server does not collect clips (the "
                           "operator starts it with `utjima serve --collect DIR`); download "
                           "the zip instead")
    return col


def _limited(request: Request) -> None:
    key = request.client.host if request.client else "?"
    if not request.app.state.collect_buckets.take(key, request.app.state.hub.now()):
        raise CollectError(429, "rate_limited", "too many uploads from this address; try "
                           "again in a few minutes")


def _authorised(request: Request) -> None:
    auth = request.headers.get("authorization", "")
    scheme, _, given = auth.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise CollectError(401, "no_token", "uploads need the collection token: open the link "
                           "the operator shared, or type the token in")
    if not _matches(given.strip(), request.app.state.settings.collect_token):
        raise CollectError(403, "bad_token", "the collection token is wrong: check the link "
                           "the operator shared")


def _participant_id(pid: str) -> str:
    if not re.fullmatch(ID, pid):
        raise CollectError(404, "no_participant", "no such participant id")
    return pid


def _answer(e: CollectError) -> JSONResponse:
    return error(e.status, e.code, e.message)


@router.get("")
async def status(request: Request):
    try:
        col = _collection(request)
        if "authorization" in request.headers:
            _authorised(request)
    except CollectError as e:
        return _answer(e)
    return {"collecting": True, "token_ok": "authorization" in request.headers,
            "limits": describe_limits(col.limits)}


@router.post("/uploads", status_code=201)
async def upload(request: Request):
    try:
        col = _collection(request)
        _limited(request)
        async with request.app.state.collect_slot:  # one upload in memory at a time
            # read the body (bounded by BodyLimit) before any answer: a client that sends
            # it all before reading (urllib, curl) then hears the answer, not a reset
            data = await request.body()
            _authorised(request)
            ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if ctype not in ZIP_TYPES:
                raise CollectError(415, "not_zip", f"uploads are zip files ({ZIP_TYPES[0]}), "
                                   f"not {ctype or 'an untyped body'}")
            up = await asyncio.to_thread(check_upload, data, col.limits)
            del data
            receipt = await asyncio.to_thread(col.store, up,
                                              request.headers.get("x-participant-token"))
    except CollectError as e:
        return _answer(e)
    return JSONResponse(receipt, status_code=201)


async def _as_owner(request: Request, pid: str, action: str):
    """`Collection.<action>(pid, participant token)` in a worker thread, or the error."""
    try:
        col = _collection(request)
        _limited(request)
        return await asyncio.to_thread(getattr(col, action), _participant_id(pid),
                                       request.headers.get("x-participant-token"))
    except CollectError as e:
        return _answer(e)


@router.get("/participants/{pid}")
async def mine(pid: str, request: Request):
    return await _as_owner(request, pid, "clips_of")


@router.delete("/participants/{pid}")
async def delete(pid: str, request: Request):
    return await _as_owner(request, pid, "delete")
