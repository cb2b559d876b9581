"""Load figures for `utjima serve` (issue 12, section 3): how many players one process holds.

Simulated players in rooms of 2 to 4 speak the real protocol to a real `utjima serve`
process: a room created and joined over HTTP (`POST /api/rooms`, `.../join`), then one
websocket each with `hello` and the token, a pong for every ping (the page clock in
`t_ms`, so the server maps samples onto its own clock as it does a browser's), an offer
to every peer in `welcome` answered with an answer and ICE candidates, `ready`, and a
15 Hz score stream: calm during calibration, steady and most of each round, and a
scripted laugh (0.95 for 800 ms) by one player per round, in turn, 1.0-2.5 s into the
round. After a match they press ready again (the rematch), so every room keeps playing.

Measured per step of the ramp (100, 250, 500, 1,000, 2,000 players; a fresh server each):
- score -> verdict latency, p50/p99: from the moment the laugher sends the sample the
  judge needs to confirm the laugh (the first whose page time is `min_laugh_ms` after the
  laugh's first sample; checked against the server's own `laugh_confirmed` event) to the
  `room` message with that round's verdict arriving at each other player of the room;
- the server's event-loop lag (how late its 100 ms ticker wakes, from `GET /api/health`);
- the server's CPU (% of one core), RSS, and the time its event loop sat waiting for a CPU
  other programs held (/proc/PID/schedstat); the load generator's own CPU.

The generator is one asyncio process with a lean websocket client (RFC 6455 frames by
hand, masked; relayed scores counted without being parsed), so it costs little of the
two cores it shares with the server. It spreads the players over loopback source addresses
(127.0.1.2, 127.0.1.3, ...; all of 127/8 is the loopback interface on Linux), two rooms
per address, so the server's per-address limits (200 messages a second, 5 rooms) hold as
shipped. The only setting changed: `UTJIMA_MAX_ROOMS` is raised to the rooms a step needs
when that is over 500 (2,000 players in rooms of 2-4 need about 670).

`--cluster N` runs the same against N processes behind HAProxy, with Redis and PostgreSQL
(harness/cluster.py, issue 12 section 2); the proxy's and Redis's CPU are reported beside
the servers' (PostgreSQL only stores finished matches and is not counted).

Prints a table; the last line is one JSON object.

    .venv/bin/python -m benchmarks.bench_server                       # the ramp, ~6 minutes
    .venv/bin/python -m benchmarks.bench_server --players 4 --seconds 3 --warmup 12
    .venv/bin/python -m benchmarks.bench_server --cluster 2           # two processes, HAProxy
    .venv/bin/python -m benchmarks.bench_server --url http://HOST:PORT  # a server already running
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from harness.server import free_port, stop_process

ROOT = Path(__file__).resolve().parents[1]
STEPS = (100, 250, 500, 1000, 2000)
TARGET_PLAYERS, TARGET_P99_MS = 1000, 50.0
HZ = 15.0
SLOTS = 10  # the sender wakes SLOTS times per frame interval, each time for a tenth of players
ROOMS_PER_ADDR = 2  # <= 8 players, <= 120 scores/s: under the 200/s per-address budget
CALM = (0.05, 0.2)
LAUGH_PROB = 0.95
LAUGH_SAMPLES = 12  # 800 ms of laughing at 15 Hz
LAUGH_AFTER_S = (1.0, 2.5)  # into the round
SERVER_START_S = 30.0
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
FAKE_SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" + \
    "a=group:BUNDLE 0 1 2\r\n" + "a=x-bench:" + "x" * 1400 + "\r\n"  # the size of a real offer
CANDIDATES = [{"candidate": f"candidate:{i} 1 udp 2122260223 192.0.2.{i} 5440{i} typ host",
               "sdpMid": "0", "sdpMLineIndex": 0} for i in (1, 2)]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def source_addr(k: int) -> str:
    """The k-th loopback source address: 127.0.1.2, 127.0.1.3, ..., 127.0.2.2, ..."""
    return f"127.0.{1 + k // 250}.{2 + k % 250}"


# --- a lean websocket client ---------------------------------------------------------------


def frame(payload: bytes, opcode: int = 1) -> bytes:
    """One final client frame, masked (RFC 6455 5.3) with a fresh key."""
    n = len(payload)
    key = random.getrandbits(32).to_bytes(4, "big")
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    if n:
        mask = int.from_bytes((key * (n // 4 + 1))[:n], "big")
        payload = (int.from_bytes(payload, "big") ^ mask).to_bytes(n, "big")
    return head + key + payload


class WsProtocol(asyncio.Protocol):
    """The client side of one websocket: handshake, frames in and out, pings answered."""

    def __init__(self, player: Player, request: bytes, accept: bytes) -> None:
        self.player, self.request, self.accept = player, request, accept
        self.buf = bytearray()
        self.open = False
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.open:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = bytes(self.buf[:end]), self.buf[end + 4:]
            if not head.startswith(b"HTTP/1.1 101") or self.accept not in head:
                if not self.opened.done():
                    self.opened.set_exception(ConnectionError(head.split(b"\r\n")[0].decode()))
                self.transport.close()
                return
            self.open = True
            self.opened.set_result(True)
        now = time.perf_counter()
        buf = self.buf
        while len(buf) >= 2:
            n, i = buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, i = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, i = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < i + n:
                break
            op, payload = buf[0] & 0x0F, bytes(buf[i:i + n])
            del buf[:i + n]
            if op == 1:  # the server sends each message as one final text frame
                self.player.on_text(payload, now)
            elif op == 9:
                self.send(payload, 10)  # pong
            elif op == 8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.player.on_close(self.close_code)
                self.transport.close()
                return

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(str(exc or "closed in the handshake")))
        if self.close_code is None:
            self.close_code = 1006
            self.player.on_close(1006)

    def send(self, payload: bytes, opcode: int = 1) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame(payload, opcode))


async def http_json(host: str, port: int, src: str, method: str, path: str,
                    body: dict | None = None) -> tuple[int, dict]:
    """One HTTP/1.1 request from source address `src`: (status, JSON body)."""
    reader, writer = await asyncio.open_connection(host, port, local_addr=(src, 0))
    data = json.dumps(body).encode() if body is not None else b""
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                 .encode() + data)
    raw = await reader.read()
    writer.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(rest) if rest else {}


# --- players --------------------------------------------------------------------------------


@dataclass
class Laugh:
    """One scripted laugh: the samples sent, and when the one the judge needs went out."""

    round: int
    laugher: str
    min_ms: float
    sends: list[tuple[float, float]] = field(default_factory=list)  # (page t_ms, sent at)
    needed_at: float | None = None  # perf_counter when the confirming sample was sent
    needed_gap: float | None = None  # its page time after the first laugh sample
    got: set[str] = field(default_factory=set)  # players who received the verdict


@dataclass
class RoomState:
    code: str
    src: str
    laugh: Laugh | None = None


class Player:
    def __init__(self, gen: Generator, room: RoomState, token: str) -> None:
        self.g, self.room, self.token = gen, room, token
        self.id = ""
        self.ws: WsProtocol | None = None
        self.welcomed = False
        self.epoch = time.perf_counter() - random.uniform(1.0, 600.0)  # the page's clock
        self.phase = "lobby"
        self.round_seen = 0
        self.laugh_at: float | None = None
        self.laugh_left = 0
        self.min_laugh_ms = 400.0
        self.closed = False

    def page_ms(self) -> float:
        return (time.perf_counter() - self.epoch) * 1000.0

    def send(self, msg: dict) -> None:
        if self.ws is not None and not self.closed:
            self.ws.send(json.dumps(msg, separators=(",", ":")).encode())
            self.g.sent += 1

    def on_close(self, code: int) -> None:
        if not self.closed:
            self.closed = True
            self.g.closes[code] += 1

    def on_text(self, data: bytes, now: float) -> None:
        g = self.g
        g.received += 1
        if data.startswith(b'{"type":"score"'):
            return  # another player's sample, for a meter: nothing to do
        msg = json.loads(data)
        t = msg.get("type")
        if t == "ping":
            self.send({"type": "pong", "server_ms": msg["server_ms"], "t_ms": self.page_ms()})
        elif t == "room":
            self.on_room(msg["room"], now)
        elif t == "welcome":
            self.id = msg["you"]["id"]
            self.min_laugh_ms = float(msg["judge"]["min_laugh_ms"])
            self.welcomed = True
            for peer in msg["peers"]:  # the newcomer offers to everyone already here
                self.send({"type": "signal", "to": peer["id"], "kind": "offer", "sdp": FAKE_SDP})
            self.send({"type": "ready", "ready": True})
        elif t == "signal":
            g.signals += 1
            if msg["kind"] == "offer":
                self.send({"type": "signal", "to": msg["from"], "kind": "answer",
                           "sdp": FAKE_SDP.replace("bench", "answer")})
                for c in CANDIDATES:
                    self.send({"type": "signal", "to": msg["from"], "kind": "ice", "candidate": c})
        elif t == "judge":
            ev = msg["event"]
            lg = self.room.laugh
            if ev.get("type") == "laugh_confirmed" and ev.get("player") == self.id \
                    and lg is not None and lg.laugher == self.id and lg.needed_gap is not None:
                # the judge's own gap (mapped times) against the page times we sent
                gap = ev["t_ms"] - ev["start_ms"]
                g.confirm_checks[abs(gap - lg.needed_gap) < 1.0] += 1
        elif t == "error":
            g.errors[msg.get("code", "?")] += 1

    def on_room(self, view: dict, now: float) -> None:
        prev, self.phase = self.phase, view["phase"]
        me = next((m for m in view["members"] if m["id"] == self.id), None)
        if self.phase in ("lobby", "match_over") and me is not None and not me["ready"] \
                and prev != self.phase:
            self.send({"type": "ready", "ready": True})  # a rematch (or after a failed calibration)
        if self.phase == "round" and (prev != "round" or view["round"] != self.round_seen):
            self.round_seen = view["round"]
            players = sorted((m for m in view["members"] if m["role"] == "player"
                              and m["status"] == "active"), key=lambda m: m["seat"])
            if players and players[(view["round"] - 1) % len(players)]["id"] == self.id:
                self.laugh_at = now + random.uniform(*LAUGH_AFTER_S)
                self.laugh_left = LAUGH_SAMPLES
                self.room.laugh = Laugh(view["round"], self.id, self.min_laugh_ms)
        lv, lg = view.get("last_verdict"), self.room.laugh
        if lv is None or lg is None or lv["round"] != lg.round or lg.laugher == self.id \
                or self.id in lg.got:
            return
        lg.got.add(self.id)
        losers = [lo["player"] for lo in lv.get("losers", [])]
        if lv["status"] != "loss" or losers != [lg.laugher]:
            self.g.other_verdicts[f"{lv['status']}:" + ",".join(
                lo["reason"] for lo in lv.get("losers", []))] += 1
        elif lg.needed_at is None:
            self.g.other_verdicts["before_needed_sample"] += 1
        else:
            self.g.verdicts.append((lg.needed_at, now - lg.needed_at))

    def tick(self, now: float) -> None:
        """Send this frame's score."""
        if not self.welcomed or self.closed:
            return
        t_ms = self.page_ms()
        prob = random.uniform(*CALM)
        lg = self.room.laugh
        if self.laugh_at is not None and now >= self.laugh_at and self.laugh_left > 0 \
                and self.phase == "round" and lg is not None and lg.laugher == self.id:
            prob = LAUGH_PROB
            self.laugh_left -= 1
            lg.sends.append((t_ms, now))
            gap = t_ms - lg.sends[0][0]
            if lg.needed_at is None and gap >= lg.min_ms:
                lg.needed_at, lg.needed_gap = now, gap
        self.ws.send(b'{"type":"score","t_ms":%.3f,"face":true,"smile_prob":%.4f}' % (t_ms, prob))
        self.g.sent += 1


class Generator:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.players: list[Player] = []
        self.sent = self.received = self.signals = 0
        self.errors: Counter = Counter()
        self.closes: Counter = Counter()
        self.other_verdicts: Counter = Counter()
        self.confirm_checks: Counter = Counter()  # True: the judge confirmed on our sample
        self.verdicts: list[tuple[float, float]] = []  # (needed sample sent at, latency s)
        self.sender_late: list[float] = []  # how late the sender woke, s

    async def add_room(self, k: int, size: int) -> None:
        src = source_addr(k // ROOMS_PER_ADDR)
        status, body = await http_json(self.host, self.port, src, "POST", "/api/rooms", {})
        if status != 201:
            raise RuntimeError(f"POST /api/rooms: {status} {body}")
        room = RoomState(body["code"], src)
        tokens = []  # every seat first: two ready players would start the match alone
        for i in range(size):
            status, seat = await http_json(self.host, self.port, src, "POST",
                                           f"/api/rooms/{room.code}/join",
                                           {"nickname": f"p{k}-{i}", "role": "player"})
            if status != 200:
                raise RuntimeError(f"join: {status} {seat}")
            tokens.append(seat["token"])
        for token in tokens:
            await self.connect(Player(self, room, token))

    async def connect(self, p: Player) -> None:
        key = base64.b64encode(random.getrandbits(128).to_bytes(16, "big"))
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        origin = f"http://{self.host}:{self.port}"
        request = (f"GET /ws/rooms/{p.room.code} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                   f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
                   f"{key.decode()}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
                   ).encode()
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(lambda: WsProtocol(p, request, accept),
                                                self.host, self.port,
                                                local_addr=(p.room.src, 0))
        await asyncio.wait_for(proto.opened, 10.0)
        p.ws = proto
        self.players.append(p)
        p.send({"type": "hello", "token": p.token, "v": 1})

    async def run_sender(self, until: float) -> None:
        """Every player sends a score every 1/HZ s; player i in slot i % SLOTS."""
        step = 1.0 / HZ / SLOTS
        nxt, slot = time.perf_counter(), 0
        while nxt < until:
            now = time.perf_counter()
            self.sender_late.append(max(0.0, now - nxt))
            for p in self.players[slot::SLOTS]:
                p.tick(now)
            slot = (slot + 1) % SLOTS
            nxt += step
            await asyncio.sleep(max(0.0, nxt - time.perf_counter()))

    def close_all(self) -> None:
        for p in self.players:
            if p.ws is not None and p.ws.transport is not None:
                p.ws.transport.close()


# --- the server under test ----------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_waited_s(pid: int) -> float:
    """Seconds the process's main thread (the event loop) sat runnable, waiting for a CPU
    that other programs held: how much the machine's load took from the server."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def helpers() -> dict[int, str]:
    """This process's children that are infrastructure (the proxy, Redis): pid -> name."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                comm, rest = (d / "stat").read_text().rsplit(")", 1)
                name = comm.split("(", 1)[1]
                if int(rest.split()[1]) == os.getpid() and name in ("haproxy", "redis-server"):
                    out[int(d.name)] = name
    return out


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class ServerProc:
    """A fresh `utjima serve` on loopback."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = tempfile.TemporaryDirectory(prefix="utjima-bench-server-")
        self.log = open(Path(self.dir.name) / "serve.log", "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "utjima", "serve", "--host", "127.0.0.1", "--port",
             str(self.port), "--data-dir", self.dir.name], cwd=ROOT, stdout=self.log,
            stderr=subprocess.STDOUT, env={**os.environ, **env})
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline and self.proc.poll() is None:
            if health(self.url) is not None:
                return
            time.sleep(0.2)
        self.log.seek(0)
        tail = self.log.read()[-800:]
        self.stop()
        raise RuntimeError(f"`utjima serve` did not start: {tail}")

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()
        self.dir.cleanup()


@dataclass
class Target:
    """What the players connect to, and the server processes measured."""

    url: str
    pids: list[int]
    node_urls: list[str]  # each process directly (its /api/health)


def start_target(args: argparse.Namespace, env: dict[str, str],
                 stack: contextlib.ExitStack) -> Target:
    if args.url is not None:
        return Target(args.url.rstrip("/"), [], [args.url.rstrip("/")])
    if args.cluster:
        try:
            from harness.cluster import running_cluster
        except ImportError as e:
            raise RuntimeError(f"--cluster needs harness/cluster.py (the multi-process "
                               f"setup): {e}") from None
        c = stack.enter_context(running_cluster(args.cluster, env=env))
        return Target(c.url, [n.proc.pid for n in c.nodes.values()],
                      [n.url for n in c.nodes.values()])
    server = ServerProc(env)
    stack.callback(server.stop)
    return Target(server.url, [server.proc.pid], [server.url])


def health(url: str, window_s: float = 30.0) -> dict | None:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/api/health?window_s={window_s:g}", timeout=5) as r:
            return json.loads(r.read())
    except (OSError, ValueError):
        return None


def room_sizes(players: int, rng: random.Random) -> list[int]:
    """Rooms of 2-4 adding up to `players` (>= 2)."""
    sizes, left = [], players
    while left > 4:
        s = rng.choice((2, 3, 4))
        if left - s == 1:
            s = 3 if s == 2 else 2
        sizes.append(s)
        left -= s
    sizes.append(left)
    return sizes


async def run_step(players: int, args: argparse.Namespace, rng: random.Random) -> dict:
    sizes = room_sizes(players, rng)
    env = {"UTJIMA_MAX_ROOMS": str(max(500, len(sizes)))}
    load_before = os.getloadavg()
    with contextlib.ExitStack() as stack:
        target = await asyncio.to_thread(start_target, args, env, stack)
        parsed = urllib.parse.urlsplit(target.url)
        gen = Generator(parsed.hostname, parsed.port or 80)
        try:
            return await measure(gen, target, sizes, args, load_before)
        finally:
            gen.close_all()
            await asyncio.sleep(0.2)  # let the closes go out before the servers stop


async def measure(gen: Generator, target: Target, sizes: list[int], args: argparse.Namespace,
                  load_before: tuple[float, ...]) -> dict:
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(32)

    async def add(k: int, size: int) -> None:
        async with sem:
            await gen.add_room(k, size)

    await asyncio.wait_for(asyncio.gather(*(add(k, s) for k, s in enumerate(sizes))),
                           args.setup_s)
    setup_s = time.perf_counter() - t0
    measure_from = time.perf_counter() + args.warmup
    until = measure_from + args.seconds
    sender = asyncio.create_task(gen.run_sender(until))
    await asyncio.sleep(args.warmup)
    cpu0, own0 = sum(map(proc_cpu_s, target.pids)), os.times()
    waited0 = sum(map(proc_waited_s, target.pids))
    infra = helpers()
    infra0 = {pid: proc_cpu_s(pid) for pid in infra}
    wall0, rss = time.perf_counter(), []
    late0 = len(gen.sender_late)
    while time.perf_counter() < until:
        rss.append(sum(map(proc_rss_mb, target.pids)))
        await asyncio.sleep(min(1.0, max(0.0, until - time.perf_counter())))
    await sender
    wall = time.perf_counter() - wall0
    own1 = os.times()
    cpu = (sum(map(proc_cpu_s, target.pids)) - cpu0) / wall * 100 if target.pids else None
    own = ((own1.user - own0.user) + (own1.system - own0.system)) / wall * 100
    waited = (sum(map(proc_waited_s, target.pids)) - waited0) / wall * 100 \
        if target.pids else None
    infra_cpu = {name: _r((proc_cpu_s(pid) - infra0[pid]) / wall * 100)
                 for pid, name in infra.items()}
    lags = [(await asyncio.to_thread(health, u, args.seconds) or {}).get("loop_lag_ms")
            for u in target.node_urls]
    lags = [x for x in lags if x]
    lag = None
    if lags:  # the worst process's
        lag = {"p50": max(x["p50"] or 0 for x in lags), "p99": max(x["p99"] or 0 for x in lags),
               "max": max(x["max"] or 0 for x in lags), "ticks": sum(x["ticks"] for x in lags)}
    lat = [d * 1000 for at, d in gen.verdicts if measure_from <= at < until]
    late = [x * 1000 for x in gen.sender_late[late0:]]
    return {
        "players": len(gen.players), "rooms": len(sizes), "processes": len(target.node_urls),
        "setup_s": round(setup_s, 1), "verdicts": len(lat),
        "p50_ms": _r(pct(lat, 50)), "p99_ms": _r(pct(lat, 99)),
        "max_ms": _r(max(lat, default=None)), "loop_lag_ms": lag,
        "server_cpu_pct": _r(cpu), "server_waited_for_cpu_pct": _r(waited),
        "server_rss_mb": _r(max(rss, default=None)), "infra_cpu_pct": infra_cpu,
        "generator_cpu_pct": _r(own), "sender_late_p99_ms": _r(pct(late, 99)),
        "msgs_sent": gen.sent, "msgs_received": gen.received, "signals_received": gen.signals,
        "errors": dict(gen.errors), "closes": {str(k): v for k, v in gen.closes.items()},
        "other_verdicts": dict(gen.other_verdicts),
        "judge_confirmed_on_scripted_sample": gen.confirm_checks[True],
        "judge_confirmed_elsewhere": gen.confirm_checks[False],
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def positive_ints(text: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}") from None
    if not out or min(out) < 2 or max(out) > 5000:
        raise argparse.ArgumentTypeError(f"each step must be 2 to 5000 players, got {text!r}")
    return out


def seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 1 <= v <= 600:
        raise argparse.ArgumentTypeError(f"expected 1 to 600 seconds, got {text!r}")
    return v


def table(rows: list[dict]) -> str:
    def f(x, fmt="{:.0f}"):
        return "-" if x is None else fmt.format(x)

    out = ["players  rooms  verdicts  p50 ms  p99 ms  max ms  loop lag p99/max ms  server CPU %  "
           "waited %  RSS MB  generator CPU %  errors"]
    for r in rows:
        lag = r["loop_lag_ms"] or {}
        errs = sum(r["errors"].values()) + sum(r["other_verdicts"].values()) + sum(
            v for k, v in r["closes"].items() if k not in ("1000", "1001"))
        out.append(f"{r['players']:>7}  {r['rooms']:>5}  {r['verdicts']:>8}  "
                   f"{f(r['p50_ms'], '{:.1f}'):>6}  {f(r['p99_ms'], '{:.1f}'):>6}  "
                   f"{f(r['max_ms']):>6}  {f(lag.get('p99'), '{:.1f}'):>8} / "
                   f"{f(lag.get('max'), '{:.0f}'):<8}  {f(r['server_cpu_pct']):>12}  "
                   f"{f(r['server_waited_for_cpu_pct']):>8}  "
                   f"{f(r['server_rss_mb']):>6}  {f(r['generator_cpu_pct']):>15}  {errs:>6}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--players", type=positive_ints, default=list(STEPS),
                    help="the ramp: players per step, comma-separated")
    ap.add_argument("--seconds", type=seconds, default=30.0, help="measured seconds per step")
    ap.add_argument("--warmup", type=seconds, default=12.0,
                    help="seconds before measuring (calibration, steady, countdown)")
    ap.add_argument("--setup-s", type=seconds, default=120.0,
                    help="most seconds to create, join and connect a step's players")
    ap.add_argument("--url", help="measure this running server instead of starting one "
                                  "(no server CPU/RSS then)")
    ap.add_argument("--cluster", type=int, default=0, metavar="N",
                    help="N processes behind HAProxy with Redis and PostgreSQL "
                         "(harness/cluster.py) instead of one process")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not 0 <= args.cluster <= 8:
        ap.error(f"--cluster must be 0 (one process) to 8, got {args.cluster}")
    if args.url is not None:
        u = urllib.parse.urlsplit(args.url)
        if u.scheme != "http" or not u.hostname:
            ap.error(f"--url must be http://HOST:PORT, got {args.url!r}")
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    rng = random.Random(args.seed)
    random.seed(args.seed)
    rows = []
    for n in args.players:
        try:
            row = asyncio.run(run_step(n, args, rng))
        except (RuntimeError, OSError, asyncio.TimeoutError) as e:
            print(f"bench_server: {n} players: {e or type(e).__name__}", file=sys.stderr)
            row = {"players": n, "failed": str(e or type(e).__name__)}
            rows.append(row)
            break
        rows.append(row)
        print(f"{n} players: p99 {row['p99_ms']} ms, server CPU {row['server_cpu_pct']} %, "
              f"generator CPU {row['generator_cpu_pct']} %", file=sys.stderr)
    ok = [r for r in rows if "failed" not in r]
    print(table(ok))
    met = [r for r in ok if r["p99_ms"] is not None and r["p99_ms"] <= TARGET_P99_MS
           and not r["errors"] and not r["other_verdicts"]]
    summary = {"bench": "server", "processes": args.cluster or 1, "hz": HZ, "seconds": args.seconds,
               "warmup": args.warmup, "cores": os.cpu_count(),
               "addresses": f"loopback sources, {ROOMS_PER_ADDR} rooms each",
               "target": {"players": TARGET_PLAYERS, "p99_ms": TARGET_P99_MS},
               "most_players_within_target": max((r["players"] for r in met), default=0),
               "steps": rows}
    print(json.dumps(summary))
    return 0 if ok and len(ok) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
