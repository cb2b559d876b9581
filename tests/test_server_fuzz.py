"""Fuzzing the running app with hypothesis: every HTTP route (the API from its own OpenAPI
description, so a new route is fuzzed without editing this file; the pages and static
folders by name) and every websocket message type (from the client union in schemas.py),
with values near and far from valid ones: wrong types, huge and negative numbers, long
and non-ASCII strings, lone surrogates, deep nesting, binary frames.

The server must answer every request below 500 and write no traceback to its log. The
examples are bounded (FUZZ_EXAMPLES, default 120 per test) so the suite stays quick; set
UTJIMA_FUZZ_EXAMPLES=2000 for a long run.
"""

from __future__ import annotations

import json
import logging
import os
import typing
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_helpers import fake_model_dir
from starlette.websockets import WebSocketDisconnect

from utjima.server import schemas
from utjima.server.app import create_app
from utjima.server.settings import Settings

FUZZ_EXAMPLES = int(os.environ.get("UTJIMA_FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
PAGES = ["/", "/r/{code}", "/history", "/leaderboard", "/demo", "/favicon.ico"]
STATIC = ["/static/", "/models/default/", "/vendor/ort/"]


class Tracebacks(logging.Handler):
    """Every log record that carries an exception, from any logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    ort = tmp / "ort"
    ort.mkdir()
    (ort / "ort.wasm.min.mjs").write_text("export const ort = 1;")
    s = Settings(model_dir=fake_model_dir(tmp / "model"), data_dir=tmp / "data", ort_dir=ort,
                 http_burst=1_000_000, miss_burst=1_000_000, msg_burst=1_000_000,
                 addr_msg_burst=1_000_000, max_rooms=1_000_000, max_rooms_per_addr=1_000_000,
                 max_bad_messages=1_000_000,
                 predict_burst=1_000_000)
    return create_app(s)


@pytest.fixture(scope="module")
def client(app):
    handler = Tracebacks()
    logging.getLogger().addHandler(handler)
    try:
        with TestClient(app, raise_server_exceptions=False) as c:
            c.tracebacks = handler.records
            yield c
    finally:
        logging.getLogger().removeHandler(handler)


@pytest.fixture
def room(client) -> dict:
    """A fresh room with two players and a spectator, for the paths and sockets."""
    code = client.post("/api/rooms").json()["code"]
    members = [client.post(f"/api/rooms/{code}/join", json={"nickname": n, "role": r}).json()
               for n, r in (("Ana", "player"), ("Bo", "player"), ("Sam", "spectator"))]
    return {"code": code, "members": members}


def no_tracebacks(client) -> None:
    assert not client.tracebacks, [r.getMessage() for r in client.tracebacks]


# --- values ------------------------------------------------------------------------------------

HUGE_INT = st.one_of(st.integers(min_value=2**62, max_value=2**70),
                     st.integers(max_value=-(2**62), min_value=-(2**70)))
TEXT = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=80),
    st.sampled_from(["", "ABCDEF", "abcdef", "é" * 10, "\u200b", "\u202e", "\x00", "../../etc",
                     "A\ud800", "\udfff" * 3, "x" * 17_000, "%00", "NaN", "-1", "1e999"]),
)
NUMBER = st.one_of(st.integers(), HUGE_INT, st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0, -1, 1e12, 1e13, 2**63, -(2**63) - 1]))
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, TEXT)
JSON = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)
RAW = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"[" * 30_000 + b"]" * 30_000, b'{"a": ' + b"9" * 5000 + b"}",
                     b'{"nickname": "\\ud800"}', b"\xff\xfe", b"null", b"{}", b"[]", b'"x"']),
)


def dumps(value) -> bytes:
    """JSON as a client might send it: NaN and Infinity written out, surrogates escaped."""
    return json.dumps(value, allow_nan=True).encode()


# --- HTTP ---------------------------------------------------------------------------------------


def api_operations(app) -> list[tuple[str, str, dict]]:
    """(method, path template, operation) for every route in the app's OpenAPI document."""
    ops = []
    for path, item in app.openapi()["paths"].items():
        for method, op in item.items():
            ops.append((method.upper(), path, op))
    return ops


def test_the_fuzzer_knows_every_api_route(app):
    paths = {p for _, p, _ in api_operations(app)}
    assert {"/api/rooms", "/api/rooms/{code}", "/api/rooms/{code}/join",
            "/api/rooms/{code}/resume", "/api/matches", "/api/matches/{match_id}",
            "/api/leaderboard", "/api/predict"} <= paths


@st.composite
def api_requests(draw, ops, code: str):
    method, path, op = draw(st.sampled_from(ops))
    params = op.get("parameters", [])
    url = path
    for p in (p for p in params if p["in"] == "path"):
        value = draw(st.one_of(st.just(code), TEXT.filter(lambda t: "/" not in t), NUMBER))
        url = url.replace("{" + p["name"] + "}", enc(value))
    names = [p["name"] for p in params if p["in"] == "query"] + ["x", "limit"]
    query = draw(st.dictionaries(st.sampled_from(names), st.one_of(TEXT, NUMBER), max_size=3))
    if query:
        url += "?" + "&".join(f"{enc(k)}={enc(v)}" for k, v in query.items())
    method = draw(st.sampled_from([method, method, "GET", "POST", "PUT", "DELETE"]))
    ctype = draw(st.sampled_from(["application/json", "application/json", "text/plain",
                                  "image/jpeg", "image/png", "",
                                  "application/x-www-form-urlencoded"]))
    props = list(_body_properties(op))
    body = draw(st.one_of(
        st.none(), RAW,
        JSON.map(dumps),
        st.dictionaries(st.sampled_from(props or ["nickname"]), JSON, max_size=4).map(dumps),
        st.fixed_dictionaries({"nickname": TEXT}, optional={
            "role": st.sampled_from(["player", "spectator", "x"]), "device_key": TEXT,
            "watch_key": TEXT, "tokens": st.lists(TEXT, max_size=9)}).map(dumps),
    ))
    return method, url, ctype, body


def enc(value) -> str:
    """Percent-encoded as sent on the wire, lone surrogates included (as their bytes)."""
    return quote(str(value), safe="", errors="surrogatepass")


def _body_properties(op: dict) -> typing.Iterator[str]:
    content = op.get("requestBody", {}).get("content", {})
    for media in content.values():
        ref = media.get("schema", {}).get("$ref") or ""
        name = ref.rsplit("/", 1)[-1]
        model = getattr(schemas, name, None)
        if model is not None:
            yield from model.model_fields


def test_every_api_route_answers_below_500(client, app, room):
    ops = api_operations(app)

    @FUZZ
    @given(req=api_requests(ops, room["code"]))
    def run(req):
        method, url, ctype, body = req
        headers = {"content-type": ctype} if ctype else {}
        r = client.request(method, url, content=body, headers=headers)
        assert r.status_code < 500, (method, url, ctype, body[:200] if body else body,
                                     r.status_code, r.text[:300])
        if url.startswith("/api/") and r.status_code >= 400 and r.status_code not in (404, 405):
            assert "code" in r.json()["detail"], r.text[:300]  # our errors, one shape

    run()
    no_tracebacks(client)


def test_every_page_and_static_path_answers_below_500(client, room):
    paths = st.one_of(
        st.sampled_from(PAGES).map(lambda p: p.replace("{code}", room["code"])),
        st.tuples(st.sampled_from(PAGES[1:2] + STATIC), TEXT).map(
            lambda t: t[0].replace("{code}", "") + quote(t[1], safe="/.",
                                                         errors="surrogatepass")),
    )

    @FUZZ
    @given(path=paths, method=st.sampled_from(["GET", "HEAD", "POST"]))
    def run(path, method):
        r = client.request(method, path)
        assert r.status_code < 500, (method, path, r.status_code)

    run()
    no_tracebacks(client)


# --- the websocket -----------------------------------------------------------------------------


def field_values(name: str) -> st.SearchStrategy:
    """Values for a message field: plausible ones and hostile ones."""
    plausible = {
        "t_ms": st.floats(min_value=0, max_value=1e12), "smile_prob": st.floats(0, 1),
        "face": st.booleans(), "ready": st.booleans(), "server_ms": st.floats(0, 1e9),
        "kind": st.sampled_from(["offer", "answer", "ice"]), "sdp": st.text(max_size=300),
        "mode": st.sampled_from(["open", "invite"]), "v": st.just(1),
        "candidate": st.one_of(st.none(), st.fixed_dictionaries(
            {"candidate": st.text(max_size=50)}, optional={
                "sdpMid": TEXT, "sdpMLineIndex": NUMBER, "usernameFragment": TEXT})),
    }.get(name, TEXT)
    return st.one_of(plausible, plausible, SCALAR, JSON)


def client_message_types() -> dict[str, list[str]]:
    union = typing.get_args(typing.get_args(schemas.ClientMessage)[0])
    return {m.model_fields["type"].annotation.__args__[0]:
            [f for f in m.model_fields if f != "type"] for m in union}


MEMBER = "@member{}"  # replaced by a real member id of the room when sent


@st.composite
def frames(draw):
    """One websocket frame: a message of a known type with fuzzed fields, or junk."""
    types = client_message_types()
    mtype = draw(st.sampled_from(sorted(types)))
    fields = types[mtype] + ["player", "to", "extra"]
    msg = {"type": mtype}
    for f in draw(st.lists(st.sampled_from(fields), max_size=5, unique=True)):
        if f in ("to", "player") and draw(st.booleans()):
            msg[f] = MEMBER.format(draw(st.sampled_from(range(3))))
        else:
            msg[f] = draw(field_values(f))
    return draw(st.one_of(st.just(dumps(msg).decode()), st.just(dumps(msg).decode()),
                          JSON.map(lambda v: dumps(v).decode()), RAW))


def new_room(client) -> tuple[str, list[dict]]:
    """A room with two players and a spectator (not connected yet)."""
    code = client.post("/api/rooms").json()["code"]
    return code, [client.post(f"/api/rooms/{code}/join", json={"nickname": n, "role": r}).json()
                  for n, r in (("Ana", "player"), ("Bo", "player"), ("Sam", "spectator"))]


def send(ws, frame: str | bytes, members: list[dict]) -> None:
    if isinstance(frame, bytes):
        ws.send_bytes(frame)
        return
    for i, m in enumerate(members):
        frame = frame.replace(MEMBER.format(i), m["id"])
    ws.send_text(frame)


def sync(ws) -> bool:
    """Wait until the server has handled everything sent so far (a signal to nobody comes
    back as an error after it); False when the socket was closed instead."""
    ws.send_json({"type": "signal", "to": "mnobody", "kind": "ice"})
    try:
        for _ in range(10_000):
            m = ws.receive_json()
            assert isinstance(m, dict) and "type" in m, m
            if m["type"] == "error" and m["code"] == "bad_peer":
                return True
    except WebSocketDisconnect as e:
        assert e.code in (1000, 4400, 4408, 4409, 4413, 4429), e.code  # ours, never 1011
        return False
    raise AssertionError("no answer")


def test_every_websocket_message_type_is_answered_without_a_traceback(client):
    assert set(client_message_types()) == set(schemas.CLIENT_TYPES)

    @FUZZ
    @given(who=st.sampled_from(range(3)), sent=st.lists(frames(), min_size=1, max_size=6))
    def run(who, sent):
        code, members = new_room(client)  # (a `leave` ends a seat for good)
        with client.websocket_connect(f"/ws/rooms/{code}") as ws:
            ws.send_json({"type": "hello", "token": members[who]["token"]})
            assert ws.receive_json()["type"] == "welcome"
            for frame in sent:
                send(ws, frame, members)
            sync(ws)

    run()
    no_tracebacks(client)


def test_every_first_message_is_answered_without_a_traceback(client, room):
    code = room["code"]

    @FUZZ
    @given(first=st.one_of(frames(), st.fixed_dictionaries(
        {"type": st.just("hello"), "token": TEXT}, optional={"v": NUMBER}).map(
        lambda m: dumps(m).decode())), path_code=st.one_of(st.just(code), TEXT.filter(
            lambda t: "/" not in t and "?" not in t and "#" not in t)))
    def run(first, path_code):
        try:
            with client.websocket_connect(f"/ws/rooms/{enc(path_code)}") as ws:
                send(ws, first, room["members"])
                while True:
                    m = ws.receive_json()
                    if m["type"] == "welcome":
                        break
                    assert m["type"] == "error", m
        except WebSocketDisconnect as e:
            # 1000: /ws/rooms/ with no code is no route of ours (refused before it opens)
            ours = e.code in (4400, 4401, 4404, 4408, 4413)
            assert ours or (e.code == 1000 and not path_code), e.code

    run()
    no_tracebacks(client)


# --- server inference (utjima serve --predict) ---------------------------------------------------


@st.composite
def predict_bodies(draw):
    """Frames near and far from real JPEGs and PNGs, alone or in a JSON burst."""
    import base64
    import struct
    import zlib
    from pathlib import Path

    face = (Path(__file__).parent / "fixtures" / "astronaut.jpg").read_bytes()
    cut = draw(st.integers(0, len(face)))
    w, h = draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, draw(st.sampled_from([0, 2, 3, 6, 9])), 0, 0, 0)
    png = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
           + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + draw(st.binary(max_size=64)))
    sof = b"\xff\xd8\xff\xc0\x00\x11\x08" + struct.pack(">HH", h & 0xFFFF, w & 0xFFFF)
    frame = draw(st.sampled_from([face, face[:cut], face[cut:], png, sof + b"\x00" * 20,
                                  face[:200] + draw(st.binary(max_size=200))]))
    ctype = draw(st.sampled_from(["image/jpeg", "image/png", "application/json", "text/plain"]))
    if ctype != "application/json":
        return ctype, frame
    b64 = base64.b64encode(frame).decode()
    items = draw(st.lists(st.fixed_dictionaries(
        {"t_ms": st.one_of(st.floats(0, 1e4), NUMBER), "image": st.one_of(
            st.just(b64), st.just("data:image/jpeg;base64," + b64), TEXT)}), max_size=4))
    body = {"frames": items, **draw(st.fixed_dictionaries({}, optional={
        "detector": st.one_of(st.sampled_from(["short", "full"]), TEXT)}))}
    return ctype, dumps(body)


def test_predictions_answer_below_500(tmp_path):
    s = Settings(data_dir=tmp_path / "data", predict=True, predict_burst=1_000_000,
                 predict_max_pixels=640 * 480)
    handler = Tracebacks()
    logging.getLogger().addHandler(handler)
    try:
        with TestClient(create_app(s), raise_server_exceptions=False) as c:
            @settings(FUZZ, max_examples=max(20, FUZZ_EXAMPLES // 3))
            @given(req=predict_bodies())
            def run(req):
                ctype, body = req
                r = c.post("/api/predict", content=body, headers={"content-type": ctype})
                assert r.status_code < 500, (ctype, body[:100], r.status_code, r.text[:300])
                if r.status_code >= 400:
                    assert "code" in r.json()["detail"], r.text[:300]

            run()
    finally:
        logging.getLogger().removeHandler(handler)
    assert not handler.records, [r.getMessage() for r in handler.records]
