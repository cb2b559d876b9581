"""Two `utjima serve` processes behind HAProxy, with the room directory in Redis and the
history in PostgreSQL (all real, started by harness/cluster.py on free loopback ports).

One client makes a room through the proxy; the other talks to the other process directly
and is forwarded to the owner, so both play in the one room whose judge runs on the
owner. They play a match with scripted score streams; then, during the rematch, the owner
gets SIGTERM: both pages hear `server_restarting` and a 1001 close, a rejoin to the old
code hears `server_restarted` (from the survivor, through the proxy), a new room on the
survivor works, the finished match is in PostgreSQL, and the interrupted one is nobody's
win; the owner, started again, answers its old code itself, and killed (-9) with a room
live, that room is answered `server_restarted` by the survivor once its heartbeat
expires. The directory and the flags' errors are checked without the rest."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from server_helpers import fake_model_dir

from utjima.cli import main

TIMING = {"UTJIMA_CALIB_MS": "2000", "UTJIMA_STEADY_MS": "200", "UTJIMA_COUNTDOWN_MS": "300",
          "UTJIMA_VERDICT_MS": "500", "UTJIMA_ROUNDS_TO_WIN": "1", "UTJIMA_ROUND_MS": "15000"}
KEYS = {"Ana": "ana-device-key-0000000000001", "Bo": "bo-device-key-00000000000002"}
WAIT_S = 30.0  # every wait in the match is bounded by this (a busy 2-core machine)


def call(base: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="GET" if body is None else "POST",
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body or b"{}")
        except ValueError:  # HAProxy's own 503 page while a dead node is not yet marked down
            return e.code, {"html": body.decode(errors="replace")}


class Player:
    """A page without a camera: hello, pongs at once, scores at 15 Hz on its own clock
    (`prob` is the smile it shows now), every message kept in `seen`."""

    def __init__(self, ws_url: str, token: str) -> None:
        from websockets.sync.client import connect

        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(ws_url, open_timeout=10, close_timeout=5))
        self.prob, self.seen, self.close_code = 0.05, [], None
        self.streaming = False
        self._lock = threading.Lock()
        self.ws.send(json.dumps({"type": "hello", "token": token}))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from websockets.exceptions import ConnectionClosed

        next_score = 0.0
        try:
            while True:
                now = time.monotonic()
                if self.streaming and now >= next_score:
                    next_score = now + 1 / 15
                    self.ws.send(json.dumps({"type": "score", "t_ms": now * 1000.0,
                                             "face": True, "smile_prob": self.prob}))
                try:
                    msg = json.loads(self.ws.recv(0.02))
                except TimeoutError:
                    continue
                if msg["type"] == "ping":
                    self.ws.send(json.dumps({"type": "pong", "server_ms": msg["server_ms"],
                                             "t_ms": time.monotonic() * 1000.0}))
                with self._lock:
                    self.seen.append(msg)
        except ConnectionClosed:
            self.close_code = self.ws.close_code

    def send(self, msg: dict[str, Any]) -> None:
        self.ws.send(json.dumps(msg))

    def wait(self, pred, what: str, timeout_s: float = WAIT_S) -> dict:
        """The first message seen (from the start) that satisfies `pred`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                hit = next((m for m in self.seen if pred(m)), None)
            if hit is not None:
                return hit
            if self.close_code is not None and not self._thread.is_alive():
                break
            time.sleep(0.05)
        phases = [(m["room"]["phase"], m["room"]["not_straight"]) for m in self.seen
                  if m["type"] == "room"]
        other = [m for m in self.seen if m["type"] not in ("room", "score", "ping")]
        raise AssertionError(f"no {what} within {timeout_s} s (closed {self.close_code}); "
                             f"phases {phases[-8:]}; other messages {other[-5:]}")

    def room(self, pred, what: str) -> dict:
        return self.wait(lambda m: m["type"] == "room" and pred(m["room"]), what)["room"]

    def closed(self, timeout_s: float = WAIT_S) -> int:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the socket was not closed"
        return self.close_code

    def close(self) -> None:
        self._stack.close()
        self._thread.join(5)


def ws_url(http_url: str, code: str) -> str:
    return "ws" + http_url[len("http"):] + f"/ws/rooms/{code}"


def play_match(ana: Player, bo: Player, loser: Player) -> dict:
    """Both ready, both calm through calibration and the countdown, then `loser` laughs;
    the room at match_over once the match is stored (the first match on these sockets)."""
    for p in (ana, bo):
        p.streaming = True
        p.send({"type": "ready", "ready": True})
    loser.room(lambda r: r["phase"] == "round", "a round")
    loser.prob = 0.95
    over = loser.room(lambda r: r["phase"] == "match_over" and r["match_id"] is not None,
                      "match over, stored")
    loser.prob = 0.05
    return over


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_processes_behind_haproxy_share_a_room_and_survive_a_stop(tmp_path):
    pytest.importorskip("redis", reason="pip install -e '.[scale]'")
    pytest.importorskip("psycopg", reason="pip install -e '.[scale]'")
    from harness.cluster import Unavailable, running_cluster

    model = fake_model_dir(tmp_path / "model")
    try:
        cm = running_cluster(2, model_dir=model, env=TIMING)
        cluster = cm.__enter__()
    except Unavailable as e:
        pytest.skip(str(e))
    players: list[Player] = []
    try:
        proxy = cluster.url
        status, room = call(proxy, "/api/rooms", {})
        assert status == 201, room
        code = room["code"]
        owner = code[0]
        other = next(n for n in cluster.nodes if n != owner)
        assert owner in cluster.nodes, code  # the code names the process that holds it
        direct = cluster.nodes[other].url  # the second client talks to the other process
        join = f"/api/rooms/{code}/join"
        status, ana = call(proxy, join, {"nickname": "Ana", "device_key": KEYS["Ana"]})
        assert status == 200, ana
        status, bo = call(direct, join, {"nickname": "Bo", "device_key": KEYS["Bo"]})
        assert status == 200, bo  # forwarded to the owner
        status, info = call(direct, f"/api/rooms/{code}")
        assert status == 200 and info["players"] == ["Ana", "Bo"], info
        status, invite = call(direct, f"/api/rooms/{code}/invite")
        assert status == 200 and invite["url"] == f"{direct}/r/{code}", invite  # its address
        a = Player(ws_url(proxy, code), ana["token"])
        b = Player(ws_url(direct, code), bo["token"])
        players += [a, b]
        for p, me in ((a, ana), (b, bo)):
            assert p.wait(lambda m: m["type"] == "welcome", "welcome")["you"]["id"] == me["id"]
        # one room, one judge: both pages see both players, from the owner
        a.room(lambda r: len([m for m in r["members"] if m["connected"]]) == 2, "both in")

        over = play_match(a, b, loser=b)
        assert over["winners"] == [ana["id"]], over
        a.room(lambda r: r["phase"] == "match_over" and r["match_id"] == over["match_id"],
               "Ana sees the same result")

        # the rematch is interrupted: SIGTERM to the owner during calibration
        for p in (a, b):
            p.send({"type": "ready", "ready": True})
        a.room(lambda r: r["phase"] in ("calibrating", "steady", "countdown", "round"),
               "the rematch running")
        assert cluster.stop_node(owner) in (0, -signal.SIGTERM)
        for p in (a, b):  # Ana through HAProxy, Bo through the other process's forwarding
            assert p.closed() == 1001
            told = p.wait(lambda m: m["type"] == "error", "an error")
            assert told["code"] == "server_restarting", told
        log = cluster.nodes[owner].output()
        assert "interrupted by the shutdown" in log and "Traceback" not in log, log[-2000:]

        # rejoining the old room: the survivor answers (the proxy sends the dead owner's
        # rooms there once its health check fails), over HTTP and the websocket
        deadline = time.monotonic() + 15
        while True:
            status, gone = call(proxy, f"/api/rooms/{code}")
            if status == 410 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status == 410 and gone["detail"]["code"] == "server_restarted", (status, gone)
        from websockets.sync.client import connect

        with connect(ws_url(direct, code), open_timeout=10) as ws:
            said = json.loads(ws.recv(10))
        assert said["code"] == "server_restarted", said

        # a new room works, on the survivor, and the nicknames still belong to their
        # browsers (identities are in PostgreSQL too)
        status, room2 = call(proxy, "/api/rooms", {})
        assert status == 201 and room2["code"][0] == other, room2
        join2 = f"/api/rooms/{room2['code']}/join"
        status, j = call(proxy, join2, {"nickname": "Ana", "device_key": KEYS["Bo"]})
        assert status == 409 and j["detail"]["code"] == "name_taken", j
        for name, key in KEYS.items():
            status, j = call(proxy, join2, {"nickname": name, "device_key": key})
            assert status == 200, j

        # the history: the finished match (in PostgreSQL, read by the survivor), nothing of
        # the interrupted one, and the leaderboard credits only the finished match
        status, matches = call(proxy, "/api/matches")
        assert status == 200 and len(matches) == 1, matches
        m = matches[0]
        assert m["room_code"] == code and m["id"] == over["match_id"]
        assert {p["nickname"]: p["result"] for p in m["players"]} == {"Ana": "win", "Bo": "loss"}
        status, board = call(proxy, "/api/leaderboard")
        assert {r["nickname"]: (r["matches"], r["wins"]) for r in board} == {
            "Ana": (1, 1), "Bo": (1, 0)}, board
        import sqlalchemy as sa

        engine = sa.create_engine(cluster.database_url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("select count(*) from matches")).scalar() == 1
        engine.dispose()
        survivor_log = cluster.nodes[other].output()
        assert "Traceback" not in survivor_log, survivor_log[-2000:]

        # the owner starts again under its id: it answers its old code itself
        restarted = cluster.start_node(owner)
        status, gone = call(restarted.url, f"/api/rooms/{code}")
        assert status == 410 and gone["detail"]["code"] == "server_restarted", (status, gone)

        # and dies (kill -9, no going away) with a room live: once its heartbeat expires,
        # the proxy's answer for that room is the survivor's server_restarted
        status, room3 = call(restarted.url, "/api/rooms", {})
        assert status == 201 and room3["code"][0] == owner, room3
        time.sleep(0.5)  # the ticker lists the live code in Redis
        cluster.stop_node(owner, signal.SIGKILL)
        answers = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, gone = call(proxy, f"/api/rooms/{room3['code']}")
            answers.add(status)
            if status == 410:
                break
            time.sleep(0.5)
        assert status == 410 and gone["detail"]["code"] == "server_restarted", (answers, gone)
        assert answers <= {200, 502, 503, 410}, answers  # the window: docs/deploy.md
    finally:
        for p in players:
            p.close()
        cm.__exit__(None, None, None)


# --- flags: one clear line, before anything starts ------------------------------------------


def _serve_error(argv: list[str], capsys) -> str:
    rc = main(["serve", *argv])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, (rc, err)
    return err


@pytest.mark.parametrize("argv, needle", [
    (["--node-id", "A"], "--node-id and --redis go together"),
    (["--redis", "redis://127.0.0.1:1/0"], "--node-id and --redis go together"),
    (["--node-id", "O", "--redis", "redis://127.0.0.1:1/0"], "node_id must be one character"),
    (["--node-id", "AB", "--redis", "redis://127.0.0.1:1/0"], "node_id must be one character"),
    (["--node-id", "A", "--redis", "http://x"], "redis_url must start with"),
    (["--node-id", "A", "--redis", "redis://127.0.0.1:1/0"], "PostgreSQL"),
])
def test_cluster_flags_are_checked(argv, needle, tmp_path, capsys):
    err = _serve_error(["--data-dir", str(tmp_path), "--port", "0", *argv], capsys)
    assert needle in err, err


def test_an_unreachable_redis_is_one_line_before_serving_on(tmp_path, capsys):
    pytest.importorskip("redis")
    from harness.server import free_port

    model = fake_model_dir(tmp_path / "model")
    rc = main(["serve", "--port", "0", "--model", str(model), "--data-dir", str(tmp_path),
               "--node-id", "A", "--redis", f"redis://127.0.0.1:{free_port()}/0",
               "--database-url", f"postgresql+psycopg://u@127.0.0.1:{free_port()}/x"])
    out = capsys.readouterr()
    assert rc == 2 and "serving on" not in out.out and "Traceback" not in out.err
    assert out.err.count("\n") == 1, out.err


# --- the room directory on a real Redis --------------------------------------------------------


def test_the_directory_remembers_a_stopped_or_dead_nodes_rooms(tmp_path):
    """What the survivor answers for another node's code: forward while that node beats,
    `restarted` once it went away (SIGTERM) or stopped beating (killed) with the room live,
    `unknown` for a code that never lived; a node that starts again retires its old codes."""
    pytest.importorskip("redis")
    import asyncio

    from harness.cluster import Unavailable, redis_server
    from utjima.server import cluster

    try:
        server = redis_server(tmp_path)
        url = server.__enter__()
    except Unavailable as e:
        pytest.skip(str(e))

    async def scenario() -> None:
        a = cluster.Directory(url, "A", "http://127.0.0.1:1111")
        b = cluster.Directory(url, "B", "http://127.0.0.1:2222")
        assert await a.start() == set() and await b.start() == set()
        await a.rooms_changed(["AXXXX2", "AXXXX3"], [])
        await a.rooms_changed([], ["AXXXX3"])  # closed normally
        assert await b.locate("AXXXX2") == ("live", "http://127.0.0.1:1111")
        await a.stop()  # SIGTERM: its live rooms are remembered as restarted
        assert await b.locate("AXXXX2") == ("restarted", None)
        assert await b.locate("AXXXX3") == ("unknown", None)
        # a node that dies (no going away): its heartbeat expires, its rooms are still known
        await b.rooms_changed(["BXXXX4"], [])
        await b.r.delete("utjima:node:B")  # as NODE_TTL_S after a kill -9
        c = cluster.Directory(url, "C", "http://127.0.0.1:3333")
        assert await c.start() == set()
        assert await c.locate("BXXXX4") == ("restarted", None)
        b2 = cluster.Directory(url, "B", "http://127.0.0.1:2222")  # B starts again
        assert await b2.start() == {"BXXXX4"}  # it answers them with server_restarted itself
        assert await c.locate("BXXXX4") == ("live", "http://127.0.0.1:2222")
        for d in (b, b2, c):
            await d.stop()

    try:
        asyncio.run(scenario())
        import redis

        cluster.check(url, "Z", "http://127.0.0.1:9")  # free
        redis.Redis.from_url(url).set("utjima:node:Z", "http://127.0.0.1:8")
        cluster.check(url, "Z", "http://127.0.0.1:8")  # the same process, restarting
        with pytest.raises(cluster.ClusterError, match="in use by the process at"):
            cluster.check(url, "Z", "http://127.0.0.1:9")
    finally:
        server.__exit__(None, None, None)
