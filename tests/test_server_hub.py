"""The websocket plumbing (utjima/server/hub.py) and the room routes, over real sockets
(Starlette's TestClient): the hello handshake, tokens, validation, size and rate limits,
signalling, and a short match played through the protocol with an injected clock."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient
from server_helpers import FakeClock, closed_with, fake_model_dir, hello, receive_until

from utjima.server.app import create_app
from utjima.server.hub import Observer, ignore
from utjima.server.settings import Settings


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def make_client(tmp_path, clock):
    def make(observe: Observer = ignore, **settings) -> TestClient:
        s = Settings(model_dir=fake_model_dir(tmp_path / "model"), data_dir=tmp_path / "data",
                     clock=clock, tick_ms=5.0, **settings)
        return TestClient(create_app(s, observe=observe))
    return make


@pytest.fixture
def client(make_client):
    with make_client() as c:
        yield c


def room(c: TestClient) -> str:
    r = c.post("/api/rooms")
    assert r.status_code == 201
    return r.json()["code"]


def join(c: TestClient, code: str, nick: str, role: str = "player", **more) -> dict:
    r = c.post(f"/api/rooms/{code}/join", json={"nickname": nick, "role": role, **more})
    assert r.status_code == 200, r.text
    return r.json()


# --- HTTP rooms ---------------------------------------------------------------------------


def test_create_and_join_a_room(client):
    code = room(client)
    info = client.get(f"/api/rooms/{code.lower()}").json()  # codes are case-insensitive
    assert info["code"] == code and info["phase"] == "lobby" and info["can_join_as_player"]
    a = join(client, code, "  Ana  ")
    assert a["nickname"] == "Ana" and a["seat"] == 0 and a["role"] == "player"
    s = join(client, code, "Sam", "spectator")
    assert s["seat"] is None and s["token"] != a["token"]
    info = client.get(f"/api/rooms/{code}").json()
    assert info["players"] == ["Ana"] and info["spectators"] == 1


def test_bad_codes_and_bodies_get_clear_errors(client):
    r = client.get("/api/rooms/NOPE")
    assert r.status_code == 404 and r.json()["detail"]["code"] == "bad_code"
    assert "6 characters" in r.json()["detail"]["message"]
    r = client.get("/api/rooms/ABCDEF")
    assert r.status_code == 404 and r.json()["detail"]["code"] == "no_room"
    code = room(client)
    r = client.post(f"/api/rooms/{code}/join", json={"nickname": "x" * 40})
    assert r.status_code == 422 and "nickname" in r.json()["detail"]["message"]
    r = client.post(f"/api/rooms/{code}/join", json={"nickname": "A", "role": "referee"})
    assert r.status_code == 422 and "role" in r.json()["detail"]["message"]
    r = client.post(f"/api/rooms/{code}/join", json={"nickname": "A", "admin": True})
    assert r.status_code == 422 and "admin" in r.json()["detail"]["message"]
    r = client.post(f"/api/rooms/{code}/join", content=b"x" * 20000,
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["detail"]["code"] == "too_large"


def test_a_full_room_says_so(make_client):
    with make_client(max_players=2, max_spectators=0) as c:
        code = room(c)
        join(c, code, "A"), join(c, code, "B")
        r = c.post(f"/api/rooms/{code}/join", json={"nickname": "C"})
        assert r.status_code == 409 and r.json()["detail"]["code"] == "room_full"
        r = c.post(f"/api/rooms/{code}/join", json={"nickname": "C", "role": "spectator"})
        assert r.status_code == 409 and r.json()["detail"]["code"] == "too_many_spectators"


def test_room_requests_are_rate_limited_per_address(make_client):
    with make_client(http_rate_per_s=0.001, http_burst=3) as c:
        codes = [c.post("/api/rooms") for _ in range(4)]
        assert [r.status_code for r in codes] == [201, 201, 201, 429]
        assert codes[-1].json()["detail"]["code"] == "rate_limited"


def test_resume_hands_back_only_a_seat_whose_socket_is_gone(client):
    code = room(client)
    a = join(client, code, "A")
    with client.websocket_connect(f"/ws/rooms/{code}") as ws:
        hello(ws, a["token"])
        r = client.post(f"/api/rooms/{code}/resume", json={"tokens": [a["token"]]})
        assert r.status_code == 404 and r.json()["detail"]["code"] == "no_seat"
    r = client.post(f"/api/rooms/{code}/resume", json={"tokens": ["x" * 20, a["token"]]})
    assert r.status_code == 200 and r.json()["id"] == a["id"] and r.json()["token"] == a["token"]


# --- the websocket ---------------------------------------------------------------------------


def test_hello_with_a_bad_token_or_room_is_refused(client):
    code = room(client)
    with client.websocket_connect(f"/ws/rooms/{code}") as ws:
        ws.send_json({"type": "hello", "token": "not-a-real-token"})
        msgs, close = closed_with(ws)
    assert msgs[0]["code"] == "bad_token" and close == 4401
    with client.websocket_connect("/ws/rooms/ZZZZZZ") as ws:
        msgs, close = closed_with(ws)
    assert msgs[0]["code"] == "no_room" and close == 4404
    with client.websocket_connect(f"/ws/rooms/{code}") as ws:
        ws.send_json({"type": "ready"})  # not a hello
        msgs, close = closed_with(ws)
    assert msgs[0]["code"] == "bad_message" and close == 4401


def test_welcome_peers_and_room_snapshots(client):
    code = room(client)
    a, b = join(client, code, "A"), join(client, code, "B")
    with client.websocket_connect(f"/ws/rooms/{code}") as wa:
        w = hello(wa, a["token"])
        assert w["you"]["id"] == a["id"] and w["peers"] == [] and w["v"] == 1
        assert w["judge"]["min_laugh_ms"] == 400.0 and w["ice_servers"] == []
        with client.websocket_connect(f"/ws/rooms/{code}") as wb:
            w = hello(wb, b["token"])
            assert [p["id"] for p in w["peers"]] == [a["id"]]
            joined = receive_until(wa, "peer_joined")
            assert joined["peer"] == {"id": b["id"], "role": "player", "nickname": "B"}
            snap = receive_until(wa, "room")["room"]
            assert [m["nickname"] for m in snap["members"]] == ["A", "B"]
            assert "token" not in json.dumps(snap)  # tokens are never broadcast
        left = receive_until(wa, "peer_left")
        assert left["id"] == b["id"]


def test_invalid_messages_get_errors_naming_the_problem(client):
    code = room(client)
    a = join(client, code, "A")
    with client.websocket_connect(f"/ws/rooms/{code}") as ws:
        hello(ws, a["token"])
        cases = [
            ("not json", "not JSON"),
            (json.dumps({"type": "dance"}), "unknown message type 'dance'"),
            (json.dumps({"type": "score", "t_ms": 1, "face": True, "smile_prob": 1.5}),
             "smile_prob"),
            (json.dumps({"type": "score", "t_ms": 1, "face": True}), "smile_prob is required"),
            (json.dumps({"type": "score", "t_ms": "1", "face": True, "smile_prob": 0.1}), "t_ms"),
            (json.dumps({"type": "score", "t_ms": 1, "face": True, "smile_prob": 0.1,
                         "video": "…"}), "video"),
            (json.dumps({"type": "signal", "to": "x", "kind": "offer"}), "needs sdp"),
        ]
        for text, expected in cases:
            ws.send_text(text)
            err = receive_until(ws, "error")
            assert err["code"] == "bad_message" and expected in err["message"], (text, err)
        ws.send_bytes(b"\x00\x01 a video frame?")
        err = receive_until(ws, "error")
        assert err["code"] == "bad_message" and "binary" in err["message"]
        ws.send_json({"type": "ready"})  # the connection is still usable
        while not receive_until(ws, "room")["room"]["members"][0]["ready"]:
            pass


def test_the_observer_hears_the_size_and_type_of_everything_received(make_client):
    """What the browser tests' traffic audit relies on: each request body and websocket
    frame that reaches the server is reported (size, type), never its contents."""
    heard: list[dict] = []
    with make_client(observe=heard.append) as c:
        code = room(c)
        a = join(c, code, "A")
        said = [json.dumps({"type": "hello", "token": a["token"]}),
                json.dumps({"type": "score", "t_ms": 1, "face": False}),
                json.dumps({"type": "dance"})]
        frame = b"\x00\x01 a video frame?"
        with c.websocket_connect(f"/ws/rooms/{code}") as ws:
            ws.send_text(said[0])
            receive_until(ws, "welcome")
            ws.send_text(said[1])
            ws.send_text(said[2])
            receive_until(ws, "error")
            ws.send_bytes(frame)
            receive_until(ws, "error")
    posts = [r for r in heard if r["kind"] == "http" and r["method"] == "POST"]
    assert [r["path"] for r in posts] == ["/api/rooms", f"/api/rooms/{code}/join"]
    assert posts[1]["content_type"] == "application/json" and 0 < posts[1]["bytes"] < 100
    ws_heard = [(r["type"], r["bytes"], r["binary"]) for r in heard if r["kind"] == "ws"]
    assert ws_heard == [("hello", len(said[0]), False), ("score", len(said[1]), False),
                        ("?", len(said[2]), False), (None, len(frame), True)]
    assert a["token"] not in repr(heard)  # sizes and types, never what was said


def test_oversize_messages_close_the_socket(client):
    code = room(client)
    a = join(client, code, "A")
    with client.websocket_connect(f"/ws/rooms/{code}") as ws:
        hello(ws, a["token"])
        ws.send_text(json.dumps({"type": "score", "t_ms": 1, "face": False, "pad": "x" * 2000}))
        msgs, close = closed_with(ws)
    err = [m for m in msgs if m["type"] == "error"][-1]
    assert err["code"] == "too_large" and "1024 bytes" in err["message"] and close == 4413


def test_flooding_is_rate_limited_and_closed(make_client):
    with make_client(msg_rate_per_s=1.0, msg_burst=10) as c:
        code = room(c)
        a = join(c, code, "A")
        with c.websocket_connect(f"/ws/rooms/{code}") as ws:
            hello(ws, a["token"])
            for _ in range(12):
                ws.send_json({"type": "ready", "ready": False})
            msgs, close = closed_with(ws)
        err = [m for m in msgs if m["type"] == "error"][-1]
        assert err["code"] == "rate_limited" and close == 4408


def test_too_many_invalid_messages_close_the_socket(make_client):
    with make_client(max_bad_messages=3) as c:
        code = room(c)
        a = join(c, code, "A")
        with c.websocket_connect(f"/ws/rooms/{code}") as ws:
            hello(ws, a["token"])
            for _ in range(4):
                ws.send_text("{}")
            msgs, close = closed_with(ws)
        assert close == 4400 and "closing" in msgs[-1]["message"]


def test_spectators_and_impostors_cannot_post_scores(client):
    code = room(client)
    a, b = join(client, code, "A"), join(client, code, "B")
    s = join(client, code, "S", "spectator")
    with client.websocket_connect(f"/ws/rooms/{code}") as wa, \
            client.websocket_connect(f"/ws/rooms/{code}") as wb, \
            client.websocket_connect(f"/ws/rooms/{code}") as ws:
        hello(wa, a["token"]), hello(wb, b["token"]), hello(ws, s["token"])
        ws.send_json({"type": "score", "t_ms": 5.0, "face": True, "smile_prob": 0.9})
        err = receive_until(ws, "error")
        assert err["code"] == "forbidden" and "spectators" in err["message"]
        wa.send_json({"type": "score", "t_ms": 5.0, "face": True, "smile_prob": 0.9,
                      "player": b["id"]})
        err = receive_until(wa, "error")
        assert err["code"] == "forbidden" and "your own scores" in err["message"]
        # an honest sample is relayed to the others, tagged with its sender
        wa.send_json({"type": "score", "t_ms": 6.0, "face": True, "smile_prob": 0.3})
        relayed = receive_until(ws, "score")
        assert relayed == {"type": "score", "player": a["id"], "face": True, "smile_prob": 0.3}


def test_signals_are_relayed_to_the_named_peer_with_the_sender(client):
    code = room(client)
    a, b = join(client, code, "A"), join(client, code, "B")
    with client.websocket_connect(f"/ws/rooms/{code}") as wa, \
            client.websocket_connect(f"/ws/rooms/{code}") as wb:
        hello(wa, a["token"]), hello(wb, b["token"])
        sdp = "v=0\r\n" + "a=x\r\n" * 2000  # ~10 KiB: over the score limit, under the SDP one
        wb.send_json({"type": "signal", "to": a["id"], "kind": "offer", "sdp": sdp})
        got = receive_until(wa, "signal")
        assert got["from"] == b["id"] and got["kind"] == "offer" and got["sdp"] == sdp
        cand = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
                "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "abcd"}
        wa.send_json({"type": "signal", "to": b["id"], "kind": "ice", "candidate": cand})
        got = receive_until(wb, "signal")
        assert got["candidate"] == cand and got["from"] == a["id"]


def test_a_reload_replaces_the_old_socket(client):
    code = room(client)
    a = join(client, code, "A")
    with client.websocket_connect(f"/ws/rooms/{code}") as old:
        hello(old, a["token"])
        with client.websocket_connect(f"/ws/rooms/{code}") as new:
            w = hello(new, a["token"])
            assert w["you"]["id"] == a["id"]
            msgs, close = closed_with(old)
            assert close == 4409 and any(m.get("code") == "replaced" for m in msgs)
            new.send_json({"type": "ready"})
            while not receive_until(new, "room")["room"]["members"][0]["ready"]:
                pass  # snapshots queued before the ready, then the one after it


def sync(ws) -> list[str]:
    """Phases of the room snapshots this socket received, up to now: a signal to nobody
    comes back as an error after everything queued before it."""
    ws.send_json({"type": "signal", "to": "mnobody", "kind": "ice", "candidate": None})
    phases = []
    while True:
        m = ws.receive_json()
        if m["type"] == "room":
            phases.append(m["room"]["phase"])
        if m["type"] == "error" and m["code"] == "bad_peer":
            return phases


def test_a_short_match_through_the_protocol(make_client, clock):
    """Two players over sockets; the ticker runs on the injected clock."""
    with make_client(calib_ms=2000.0, countdown_ms=500.0, round_ms=5000.0, rounds_to_win=1,
                     allowed_delay_ms=100.0) as c:
        code = room(c)
        # device keys: the players' identities, what the leaderboard counts
        a = join(c, code, "Ana", device_key="ana-device-key-0123456789")
        b = join(c, code, "Bo", device_key="bo-device-key-01234567890")
        with c.websocket_connect(f"/ws/rooms/{code}") as wa, \
                c.websocket_connect(f"/ws/rooms/{code}") as wb:
            hello(wa, a["token"]), hello(wb, b["token"])
            for ws in (wa, wb):  # page clock 0 = the server's clock now
                ping = receive_until(ws, "ping")
                ws.send_json({"type": "pong", "server_ms": ping["server_ms"], "t_ms": 0.0})
            page_t = 0.0

            def stream(prob_b: float, ms: float) -> None:
                nonlocal page_t
                for _ in range(int(ms / 50)):
                    clock.advance(50)
                    page_t += 50
                    wa.send_json({"type": "score", "t_ms": page_t, "face": True, "smile_prob": 0.1})
                    wb.send_json({"type": "score", "t_ms": page_t, "face": True,
                                  "smile_prob": prob_b})
                    time.sleep(0.002)  # let the ticker see the clock move

            wa.send_json({"type": "ready"}), wb.send_json({"type": "ready"})
            assert "calibrating" in sync(wa)
            stream(0.1, 2000 + 100 + 500 + 200)  # calibration, its allowed delay, countdown
            time.sleep(0.1)
            assert "round" in sync(wa)
            stream(0.95, 800)  # Bo laughs: confirmed after 400 ms
            time.sleep(0.2)
            assert sync(wa)[-1] == "match_over"
        for _ in range(50):  # stored from a worker thread
            matches = c.get("/api/matches").json()
            if matches:
                break
            time.sleep(0.05)
        [m] = matches
        assert m["winners"] == ["Ana"] and [p["score"] for p in m["players"]] == [1, 0]
        detail = c.get(f"/api/matches/{m['id']}").json()
        assert detail["rounds"][0]["losers"] == ["Bo"]
        assert any(e["type"] == "laugh_confirmed" for e in detail["rounds"][0]["events"])
        board = c.get("/api/leaderboard").json()
        assert board[0]["nickname"] == "Ana" and board[0]["wins"] == 1
        assert board[1]["laughs"] == 1
