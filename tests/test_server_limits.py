"""The holes a prober found in the running server (issue 12), each closed and checked here
over the real app: rooms per address, rooms nobody joined, uncaught exceptions (non-ASCII
tokens, lone surrogates, huge ids, deep JSON, huge integers, chunked bodies), message
budgets that reconnecting used to refill, relayed sizes, slow readers, guessing room
codes, invite-only spectating, and sockets that never answer a ping."""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from server_helpers import (
    FakeClock,
    addressed,
    closed_with,
    fake_model_dir,
    hello,
    receive_until,
)

from utjima.server.app import create_app
from utjima.server.settings import Settings


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def make_client(tmp_path, clock):
    """TestClient(s) on one app; `x-test-address` picks the client address."""
    def make(**settings) -> TestClient:
        s = Settings(model_dir=fake_model_dir(tmp_path / "model"), data_dir=tmp_path / "data",
                     clock=clock, tick_ms=5.0, **settings)
        app = create_app(s)
        c = TestClient(addressed(app))
        c.hub = lambda: app.state.hub
        return c
    return make


def at(addr: str) -> dict:
    return {"x-test-address": addr}


def new_room(c: TestClient, addr: str = "10.0.0.1") -> str:
    r = c.post("/api/rooms", headers=at(addr))
    assert r.status_code == 201, r.text
    return r.json()["code"]


def join(c: TestClient, code: str, nick: str, role: str = "player", addr: str = "10.0.0.1",
         **more) -> dict:
    r = c.post(f"/api/rooms/{code}/join", json={"nickname": nick, "role": role, **more},
               headers=at(addr))
    assert r.status_code == 200, r.text
    return r.json()


@contextmanager
def two_players(c: TestClient, addr: str = "10.0.0.1"):
    """A new room with Ana and Bo connected (from `addr`): (code, [(seat, socket, welcome)])."""
    code = new_room(c)
    seats = [join(c, code, n) for n in ("Ana", "Bo")]
    with c.websocket_connect(f"/ws/rooms/{code}", headers=at(addr)) as wa, \
            c.websocket_connect(f"/ws/rooms/{code}", headers=at(addr)) as wb:
        yield code, [(s, ws, hello(ws, s["token"])) for s, ws in zip(seats, (wa, wb), strict=True)]


def wait_for(cond, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- rooms: per address, and the ones nobody joined -------------------------------------------


def test_one_address_cannot_hold_every_room_and_others_keep_capacity(make_client):
    with make_client(max_rooms=6, max_rooms_per_addr=3, http_burst=100) as c:
        for _ in range(3):
            new_room(c, "10.0.0.1")
        r = c.post("/api/rooms", headers=at("10.0.0.1"))
        assert r.status_code == 429 and r.json()["detail"]["code"] == "too_many_rooms_here"
        assert "holds 3 rooms" in r.json()["detail"]["message"]
        for _ in range(3):  # the rest of the server is still there for everyone else
            new_room(c, "10.0.0.2")


def test_an_ipv6_64_is_one_address(make_client):
    """A household or a phone holds a whole /64: its addresses share one allowance."""
    with make_client(max_rooms_per_addr=2, http_burst=100) as c:
        new_room(c, "2001:db8::1"), new_room(c, "2001:db8::2")
        assert c.post("/api/rooms", headers=at("2001:db8::ffff")).status_code == 429
        new_room(c, "2001:db8:0:1::1")


def test_a_room_nobody_joined_closes_sooner_than_an_empty_one(make_client, clock):
    with make_client(room_unjoined_ms=20_000.0, room_idle_ms=600_000.0) as c:
        lonely, used = new_room(c), new_room(c)
        a = join(c, used, "Ana")
        with c.websocket_connect(f"/ws/rooms/{used}") as ws:
            hello(ws, a["token"])
            ws.send_json({"type": "leave"})
            closed_with(ws)
        clock.advance(21_000)
        wait_for(lambda: c.get(f"/api/rooms/{lonely}").status_code == 404)
        assert c.get(f"/api/rooms/{used}").status_code == 200  # joined once: the long life
        assert lonely not in c.hub().owners  # its creator may make another
        clock.advance(600_000)
        wait_for(lambda: c.get(f"/api/rooms/{used}").status_code == 404)


# --- uncaught exceptions ----------------------------------------------------------------------


def test_a_non_ascii_token_is_a_clear_error_in_hello_and_resume(make_client):
    with make_client() as c:
        code = new_room(c)
        join(c, code, "Ana")
        with c.websocket_connect(f"/ws/rooms/{code}") as ws:
            ws.send_json({"type": "hello", "token": "éééééééééé"})
            msgs, close = closed_with(ws)
        assert msgs[0]["code"] == "bad_message" and "token" in msgs[0]["message"]
        assert close == 4401
        r = c.post(f"/api/rooms/{code}/resume", json={"tokens": ["éééééééééé"]})
        assert r.status_code == 422 and "tokens" in r.json()["detail"]["message"]


def test_a_lone_surrogate_nickname_is_refused_and_leaves_no_ghost_seat(make_client):
    with make_client() as c:
        code = new_room(c)
        r = c.post(f"/api/rooms/{code}/join", content=b'{"nickname": "A\\ud800"}',
                   headers={"content-type": "application/json"})
        assert r.status_code == 422 and "Unicode" in r.json()["detail"]["message"]
        info = c.get(f"/api/rooms/{code}")
        assert info.status_code == 200 and info.json()["players"] == []
        # a surrogate anywhere in a websocket message is refused the same way
        a = join(c, code, "Ana")
        with c.websocket_connect(f"/ws/rooms/{code}") as ws:
            hello(ws, a["token"])
            ws.send_text('{"type": "signal", "to": "m\\udfff", "kind": "ice"}')
            err = receive_until(ws, "error")
            assert err["code"] == "bad_message" and "Unicode" in err["message"]
            ws.send_text('{"type": "ready", "\\ud800": 1}')  # in a key too
            err = receive_until(ws, "error")
            assert err["code"] == "bad_message" and "Unicode" in err["message"]


@pytest.mark.parametrize("path", ["/api/matches?offset=9223372036854775808",
                                  "/api/matches/9223372036854775808",
                                  "/api/matches?offset=99999999999999999999999",
                                  "/api/matches/-1"])
def test_ids_and_offsets_past_sql_integers_are_422(make_client, path):
    with make_client() as c:
        r = c.get(path)
        assert r.status_code == 422 and r.json()["detail"]["code"] == "bad_request"


def test_deep_json_and_huge_integers_are_bad_messages_on_the_websocket(make_client):
    with make_client() as c:
        code = new_room(c)
        a = join(c, code, "Ana")
        with c.websocket_connect(f"/ws/rooms/{code}") as ws:
            hello(ws, a["token"])
            ws.send_text("[" * 30_000 + "]" * 30_000)
            err = receive_until(ws, "error")
            assert err["code"] == "bad_message" and "nested too deeply" in err["message"]
            ws.send_text('{"type": "score", "t_ms": ' + "9" * 5000 + ', "face": false}')
            err = receive_until(ws, "error")
            assert err["code"] == "bad_message" and "not JSON" in err["message"]
            ws.send_json({"type": "ready"})  # still connected
            receive_until(ws, "room")


def test_deep_json_huge_integers_and_chunked_bodies_over_http(make_client):
    with make_client() as c:
        code = new_room(c)
        url = f"/api/rooms/{code}/join"
        json_type = {"content-type": "application/json"}
        r = c.post(url, content=b"[" * 8000 + b"]" * 8000, headers=json_type)
        assert r.status_code == 400 and "nested too deeply" in r.json()["detail"]["message"]
        r = c.post(url, content=b'{"nickname": ' + b"9" * 5000 + b"}", headers=json_type)
        assert r.status_code == 400 and r.json()["detail"]["code"] == "bad_request"

        def chunks():  # no Content-Length: Transfer-Encoding chunked
            for _ in range(30):
                yield b"x" * 1000

        r = c.post(url, content=chunks(), headers=json_type)
        assert r.status_code == 413 and r.json()["detail"]["code"] == "too_large"
        assert c.get(f"/api/rooms/{code}").json()["players"] == []


# --- message budgets ---------------------------------------------------------------------------


def test_reconnecting_does_not_refill_a_seats_message_budget(make_client):
    with make_client(msg_rate_per_s=0.01, msg_burst=10) as c:
        code = new_room(c)
        a = join(c, code, "Ana")
        with c.websocket_connect(f"/ws/rooms/{code}") as ws:
            hello(ws, a["token"])
            for _ in range(8):
                ws.send_json({"type": "ready", "ready": False})
            receive_until(ws, "room")
        with c.websocket_connect(f"/ws/rooms/{code}") as ws:  # the same seat, a new socket
            hello(ws, a["token"])
            for _ in range(8):
                ws.send_json({"type": "ready", "ready": False})
            msgs, close = closed_with(ws)
        assert close == 4408 and msgs[-1]["code"] == "rate_limited"


def test_an_address_has_one_budget_for_all_its_seats(make_client):
    with make_client(msg_rate_per_s=0.01, msg_burst=10, addr_msg_rate_per_s=0.01,
                     addr_msg_burst=14) as c:
        with two_players(c) as (_, [(_, wa, _), (_, wb, _)]):  # 2 hellos of the address's 14
            for _ in range(6):
                wa.send_json({"type": "ready", "ready": False})
            receive_until(wa, "room")
            for _ in range(8):  # within Bo's own 10, past the address's 14
                wb.send_json({"type": "ready", "ready": False})
            msgs, close = closed_with(wb)
        assert close == 4408 and msgs[-1]["code"] == "rate_limited"


# --- guessing room codes, and who may watch ------------------------------------------------------


def test_room_lookups_failed_joins_and_hellos_are_throttled_per_address(make_client):
    with make_client(miss_rate_per_s=0.01, miss_burst=6) as c:
        code = new_room(c, "10.0.0.9")
        for guess in ("AAAAAA", "BBBBBB"):
            assert c.get(f"/api/rooms/{guess}", headers=at("10.6.6.6")).status_code == 404
        # the invite and QR routes look rooms up too: a miss there is a guess as well
        assert c.get("/api/rooms/CCCCCC/invite", headers=at("10.6.6.6")).status_code == 404
        r = c.post(f"/api/rooms/{code}/resume", json={"tokens": ["x" * 24]}, headers=at("10.6.6.6"))
        assert r.status_code == 404 and r.json()["detail"]["code"] == "no_seat"
        with c.websocket_connect("/ws/rooms/DDDDDD", headers=at("10.6.6.6")) as ws:
            assert closed_with(ws)[1] == 4404
        with c.websocket_connect(f"/ws/rooms/{code}", headers=at("10.6.6.6")) as ws:
            ws.send_json({"type": "hello", "token": "y" * 24})
            assert closed_with(ws)[1] == 4401  # six misses spent
        r = c.get(f"/api/rooms/{code}", headers=at("10.6.6.6"))  # even a real code, now
        assert r.status_code == 429 and r.json()["detail"]["code"] == "rate_limited"
        with c.websocket_connect(f"/ws/rooms/{code}", headers=at("10.6.6.6")) as ws:
            msgs, close = closed_with(ws)
        assert msgs[0]["code"] == "rate_limited" and close == 4408
        assert c.get(f"/api/rooms/{code}", headers=at("10.0.0.9")).status_code == 200


def test_the_host_can_make_spectating_invite_only(make_client):
    with make_client() as c:
        with two_players(c) as (code, [(ana, wa, welcome_a), (_, wb, welcome_b)]):
            watch_key = welcome_a["watch_key"]
            assert watch_key and welcome_b["watch_key"] == watch_key
            wb.send_json({"type": "spectating", "mode": "invite"})
            err = receive_until(wb, "error")
            assert err["code"] == "forbidden" and "host" in err["message"]
            wa.send_json({"type": "spectating", "mode": "invite"})
            while (room := receive_until(wa, "room")["room"])["spectating"] != "invite":
                pass
            assert room["host"] == ana["id"]
        info = c.get(f"/api/rooms/{code}").json()
        assert info["spectating"] == "invite" and not info["can_spectate"]
        r = c.post(f"/api/rooms/{code}/join", json={"nickname": "Eve", "role": "spectator"})
        assert r.status_code == 403 and r.json()["detail"]["code"] == "invite_only"
        r = c.post(f"/api/rooms/{code}/join", json={"nickname": "Eve", "role": "spectator",
                                                   "watch_key": "w" * 16})
        assert r.status_code == 403
        sam = join(c, code, "Sam", "spectator", watch_key=watch_key)
        with c.websocket_connect(f"/ws/rooms/{code}") as ws:
            assert hello(ws, sam["token"])["watch_key"] is None  # spectators do not pass it on


# --- what goes out: relayed sizes, slow readers, silent sockets --------------------------------


def test_a_signal_is_relayed_at_its_own_size_not_escaped(make_client):
    with make_client() as c:
        with two_players(c) as (_, [(a, wa, _), (_, wb, _)]):
            sdp = "é" * 30_000  # 60,000 bytes of UTF-8; "\\u00e9" each would be 180,000
            sent = json.dumps({"type": "signal", "to": a["id"], "kind": "offer", "sdp": sdp},
                              ensure_ascii=False)
            wb.send_text(sent)
            for _ in range(60):
                text = wa.receive_text()
                if '"signal"' in text:
                    break
            assert json.loads(text)["sdp"] == sdp
            assert len(text.encode()) < len(sent.encode()) + 100


def test_a_socket_that_answers_no_ping_is_closed(make_client, clock):
    with make_client(pong_timeout_ms=10_000.0) as c:
        with two_players(c) as (_, [(_, wa, _), (_, wb, _)]):
            for _ in range(3):  # Bo answers every ping; Ana never does
                clock.advance(4_000)
                ping = receive_until(wb, "ping")
                wb.send_json({"type": "pong", "server_ms": ping["server_ms"], "t_ms": 1.0})
                time.sleep(0.05)
            msgs, close = closed_with(wa)
            assert close == 4410 and msgs[-1]["code"] == "no_pong"
            wb.send_json({"type": "ready"})
            receive_until(wb, "room")  # still there


@pytest.mark.filterwarnings("ignore:connect\\(\\) must be used:DeprecationWarning")
def test_a_slow_reader_is_closed_once_and_its_queue_stays_bounded(tmp_path, caplog):
    """Real sockets: a player who stops reading while others send to it. Its queue is
    bounded in bytes, it is closed, and the server log says so once."""
    import socket

    import uvicorn
    from websockets.sync.client import connect

    s = Settings(model_dir=fake_model_dir(tmp_path / "model"), data_dir=tmp_path / "data",
                 max_signal_bytes=65536, send_queue_bytes=262_144, msg_rate_per_s=200.0,
                 msg_burst=400, addr_msg_rate_per_s=400.0, addr_msg_burst=800)
    app = create_app(s)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws_max_size=70_000))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    caplog.set_level(logging.WARNING, logger="utjima.server")
    thread.start()
    try:
        wait_for(lambda: server.started, 10)
        import httpx

        base = f"http://127.0.0.1:{port}"
        code = httpx.post(base + "/api/rooms").json()["code"]
        ids = [httpx.post(f"{base}/api/rooms/{code}/join", json={"nickname": n}).json()
               for n in ("Slow", "Fast")]
        slow_sock = socket.create_connection(("127.0.0.1", port))
        slow_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow = connect(f"ws://127.0.0.1:{port}/ws/rooms/{code}", sock=slow_sock, max_queue=1)
        # (a client that reads nothing: not used as a context manager on purpose)
        slow.send(json.dumps({"type": "hello", "token": ids[0]["token"]}))
        wait_for(lambda: (code, ids[0]["id"]) in app.state.hub.conns)
        with connect(f"ws://127.0.0.1:{port}/ws/rooms/{code}") as fast:
            fast.send(json.dumps({"type": "hello", "token": ids[1]["token"]}))
            sdp = "v=0\r\n" + "a" * 60_000
            for _ in range(150):  # up to 9 MB towards a reader that takes nothing
                fast.send(json.dumps({"type": "signal", "to": ids[0]["id"], "kind": "offer",
                                      "sdp": sdp}))
                conn = app.state.hub.conns.get((code, ids[0]["id"]))
                if conn is None or conn.dropped:
                    break
                assert conn.queued_bytes <= s.send_queue_bytes
            wait_for(lambda: (code, ids[0]["id"]) not in app.state.hub.conns, 15)
            fast.send(json.dumps({"type": "ready"}))  # the room goes on for the others
        slow.close_socket()
    finally:
        server.should_exit = True
        thread.join(10)
    lines = [r.getMessage() for r in caplog.records if "too slow" in r.getMessage()]
    assert len(lines) == 1 and "Slow" not in lines[0], lines  # ids, never nicknames


# --- whose name is it ----------------------------------------------------------------------------


def test_playing_as_someone_else_is_refused_and_leaves_their_row_alone(make_client):
    from utjima.server.records import MatchRecord, PlayerRecord, RoundRecord
    from utjima.server.routes.rooms import key_hash

    ana_key, eve_key = "ana-browser-key-0123456789", "eve-browser-key-0123456789"
    with make_client() as c:
        store = c.hub().store
        store.save_match(MatchRecord(
            room_code="ABCDEF", number=1, duration_ms=1000.0, rounds_to_win=1,
            rounds=(RoundRecord(index=1, status="draw", start_ms=0.0, duration_ms=900.0,
                                events=()),),  # a stored match has a decided round
            winners=("m1",), players=(
                PlayerRecord(id="m1", nickname="Ana", seat=0, score=1, result="win",
                             threshold=0.5, key_hash=key_hash(ana_key)),
                PlayerRecord(id="m2", nickname="Bo", seat=1, score=0, result="loss",
                             threshold=0.5))))
        code = new_room(c)
        for name in ("Ana", "ana", "Ana\u200b", "\u202eAna", "Ａｎａ"):
            for key in (eve_key, None):  # another browser, or none at all
                body = {"nickname": name, **({"device_key": key} if key else {})}
                r = c.post(f"/api/rooms/{code}/join", json=body)
                assert r.status_code == 409 and r.json()["detail"]["code"] == "name_taken", name
        assert join(c, code, "Ana\u200b", device_key=ana_key)["nickname"] == "Ana"  # her own
        assert join(c, code, "Bo", device_key=eve_key)["nickname"] == "Bo"  # a guest's name
        board = c.get("/api/leaderboard").json()
        assert [(r["nickname"], r["matches"], r["wins"]) for r in board] == [("Ana", 1, 1)]
