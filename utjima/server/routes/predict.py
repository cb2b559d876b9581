"""`POST /api/predict` (only with `utjima serve --predict`): frames in, faces and smiles out.

Two ways to send frames:
- one frame as the body, `Content-Type: image/jpeg` or `image/png` (`?t_ms=` optional):
  `curl --data-binary @face.jpg -H 'content-type: image/jpeg' .../api/predict`;
- a burst as JSON, `{"frames": [{"t_ms": 0, "image": "<base64 or data: URL>"}, ...],
  "detector": "short"}`, times increasing (what a page's canvas.toDataURL gives).

Limits, each a 4xx with `{"detail": {"code", "message"}}`: the body (`predict_max_bytes`,
413), frames per burst (422), pixels per frame read from the header before decoding (413
`too_many_pixels`), requests per address (429), requests in flight (503 `busy`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field, ValidationError

from utjima.server import schemas
from utjima.server.inference import MAX_BURST_MS, Busy, Frame, FrameError, read_frame
from utjima.server.routes.deps import client, error
from utjima.server.settings import Settings

router = APIRouter(prefix="/api", tags=["predict"])
IMAGE_TYPES = ("image/jpeg", "image/png")


class FrameIn(schemas.In):
    t_ms: float = Field(ge=0, le=1e12)
    image: str  # base64, or a data: URL (data:image/jpeg;base64,...)


class PredictIn(schemas.In):
    frames: list[FrameIn] = Field(min_length=1)
    detector: Literal["short", "full"] = "short"


def _b64(text: str) -> bytes:
    if text.startswith("data:"):
        head, _, text = text.partition(",")
        if not head.endswith(";base64"):
            raise FrameError(400, "bad_image", "a data: URL frame must be base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FrameError(400, "bad_image", "a frame's image is not valid base64") from None


def frames_of(ctype: str, body: bytes, t_ms: float, detector: str,
              s: Settings) -> tuple[list[Frame], str]:
    """The frames of a request, checked (format, pixels from the headers, times), and the
    detector asked for; FrameError (status, code, message) for anything wrong. Runs in a
    thread: a burst's JSON and base64 are megabytes."""
    if ctype in IMAGE_TYPES:
        return [read_frame(body, t_ms, s.predict_max_pixels)], detector
    if ctype != "application/json":
        raise FrameError(415, "bad_media_type", "send one frame as image/jpeg or image/png, "
                                                "or a burst as application/json")
    try:
        req = PredictIn.model_validate(json.loads(body))
    except RecursionError:
        raise FrameError(400, "bad_request", "the body's JSON is nested too deeply") from None
    except ValidationError as e:
        raise FrameError(422, "bad_request", schemas.describe(e.errors())) from None
    except ValueError as e:  # not JSON, not UTF-8, an integer of thousands of digits
        raise FrameError(400, "bad_request",
                         f"the body is not valid JSON: {str(e)[:120]}") from None
    if len(req.frames) > s.predict_max_frames:
        raise FrameError(422, "bad_request", f"a burst has at most {s.predict_max_frames} "
                                             f"frames, got {len(req.frames)}")
    times = [f.t_ms for f in req.frames]
    if any(b <= a for a, b in zip(times, times[1:], strict=False)):
        raise FrameError(422, "bad_request", "frame times (t_ms) must increase")
    if times[-1] - times[0] > MAX_BURST_MS:
        raise FrameError(422, "bad_request", f"a burst spans at most {MAX_BURST_MS:g} ms")
    return [read_frame(_b64(f.image), f.t_ms, s.predict_max_pixels)
            for f in req.frames], req.detector


@router.post("/predict")
async def predict(request: Request, t_ms: Annotated[float, Query(ge=0, le=1e12)] = 0.0,
                  detector: Literal["short", "full"] = "short"):
    state = request.app.state
    predictor, s = state.predictor, state.settings
    if predictor is None:
        return error(404, "predict_off", "this server does not run predictions (start it "
                                         "with `utjima serve --predict`)")
    key = client(request)
    if not state.predict_buckets.take(key, state.hub.now()):
        return error(429, "rate_limited", f"more than {s.predict_rate_per_s:g} predictions a "
                                          "second from this address; slow down")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    try:
        frames, detector = await asyncio.to_thread(frames_of, ctype, body, t_ms, detector, s)
        return await predictor.run(frames, detector)
    except FrameError as e:
        return error(e.status, e.code, e.message)
    except Busy as e:
        return JSONResponse({"detail": {"code": "busy", "message": str(e)}}, status_code=503,
                            headers={"retry-after": "1"})
