"""`Settings`: everything `create_app` needs, in one frozen dataclass.

`utjima serve` fills it from its flags (host, port, model, data dir, database URL, TLS,
TURN, rounds) and from `UTJIMA_*` environment variables (`Settings.from_env`; flags win),
so tests and operators can change game timing and limits without new flags. Values are validated
loudly here, at the boundary, with the allowed range in the message.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from utjima.contract import default_model_dir
from utjima.server.reach import URLError, clean_public_url
from utjima.server.schemas import ROOM_CODE_ALPHABET
from utjima.utils import UtjimaError

REPO_ROOT = Path(__file__).resolve().parents[2]
PING_EVERY_MS = 5000.0  # the server pings each socket this often (game.py), pages pong
SCORE_HZ = 15.0  # the rate pages send scores at (told in `welcome`; calibration counts on it)
CALIB_MARGIN = 1.5  # a calibration window holds this many times the samples the judge needs
BOOLS = {"1": True, "true": True, "yes": True, "on": True,
         "0": False, "false": False, "no": False, "off": False}
WEB_DIR = Path(__file__).resolve().parents[1] / "web"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")  # a collection token (URL-safe: it rides in links)


def monotonic_ms() -> float:
    """The server's game clock: monotonic milliseconds (never jumps with wall-clock changes)."""
    return time.monotonic() * 1000.0


class SettingsError(UtjimaError, ValueError):
    """A setting (flag or environment variable) has a value the server cannot use."""


@dataclass(frozen=True)
class Settings:
    """Server configuration. Every game time is in milliseconds of the server clock."""

    host: str = "127.0.0.1"  # interface to listen on
    port: int = 8000  # TCP port
    model_dir: Path = field(default_factory=default_model_dir)  # folder with model.json
    data_dir: Path = Path("data")  # SQLite database lives here (utjima.db)
    database_url: str | None = None  # SQLAlchemy URL; None = sqlite:///<data_dir>/utjima.db
    ort_dir: Path = REPO_ROOT / "node_modules" / "onnxruntime-web" / "dist"  # /vendor/ort/
    web_dir: Path = WEB_DIR  # /static/ and the pages
    # /vendor/fonts/: the game's typefaces from npm (@fontsource, SIL OFL); pages fall back
    # to system fonts when it is missing
    fonts_dir: Path = REPO_ROOT / "node_modules" / "@fontsource"
    # RTCPeerConnection iceServers, e.g. [{"urls": "stun:stun.example.org:3478"}]; none are
    # needed on a LAN or loopback. Env UTJIMA_ICE_SERVERS (a JSON list).
    ice_servers: tuple[dict[str, Any], ...] = ()
    # --- reaching the server from other devices (docs/deploy.md) ---------------------------
    tls: bool = False  # HTTPS; without cert_file a self-signed certificate in data_dir/tls/
    cert_file: Path | None = None  # PEM certificate chain for HTTPS (implies tls)
    key_file: Path | None = None  # its PEM private key, unencrypted
    # The address friends open when a domain or reverse proxy stands in front, e.g.
    # https://play.example.org: invite links and QR codes use it.
    public_url: str | None = None
    stun_urls: tuple[str, ...] = ()  # e.g. stun:turn.example.org:3478 (env: comma-separated)
    turn_urls: tuple[str, ...] = ()  # e.g. turn:turn.example.org:3478?transport=udp
    turn_secret: str | None = None  # coturn's static-auth-secret: each member gets its own
    turn_ttl_s: float = 4 * 3600.0  # ... TURN credentials in `welcome`, valid this long
    ice_transport_policy: str = "all"  # "relay": media only through TURN (hides addresses)
    # --- clip collection (`utjima serve --collect DIR`; off by default) -------------------
    collect_dir: Path | None = None  # /capture uploads are stored here; None = refused (404)
    collect_token: str | None = None  # uploads must carry it; `serve` makes one when absent
    collect_max_upload_bytes: int = 64 * 1024 * 1024  # one upload (a session's zip)
    collect_max_frames: int = 6000  # frames in one upload (10 minutes at 10 fps)
    collect_max_total_bytes: int = 20 * 1024**3  # everything stored under collect_dir
    collect_uploads_per_hour: float = 30.0  # upload / delete requests per client address
    collect_burst: int = 10
    # --- game timing ---------------------------------------------------------------------
    calib_ms: float = 4000.0  # neutral-face calibration window (>= calib_min_samples at 5+ Hz)
    # "Straight face, please": a round's countdown starts once every player's face has
    # stayed below their threshold this long (a laugh from the last round dies down first)
    steady_ms: float = 1000.0
    # ... or once this long has passed anyway (someone who cannot stop smiling does not
    # hold the room forever; their smile is then theirs to lose the round with)
    steady_max_ms: float = 15000.0
    countdown_ms: float = 3000.0  # "3, 2, 1" before each round (a smile sends it back)
    round_ms: float = 30000.0  # a round's time limit; nobody laughed by then = draw
    verdict_ms: float = 6000.0  # the verdict (and the laugh replay) stays this long
    rounds_to_win: int = 3  # first to this many round wins takes the match
    max_rounds: int = 9  # hard cap on rounds (draws); then the best score wins
    grace_ms: float = 30000.0  # a dropped player keeps seat and score this long
    # Samples may arrive this late (detector latency + network): the judge commits each
    # timeline up to now - allowed_delay_ms, and older samples are rejected.
    allowed_delay_ms: float = 800.0
    # A sample whose mapped time is older than this at receipt is rejected (back-dating).
    max_sample_age_ms: float = 2000.0
    tick_ms: float = 100.0  # how often rooms advance their clocks (judge ticks, deadlines)
    # --- rooms and limits ----------------------------------------------------------------
    max_players: int = 4  # players per room (2..4 play)
    max_spectators: int = 8  # camera-less viewers per room
    max_rooms: int = 500  # rooms held in memory at once
    room_idle_ms: float = 600_000.0  # a room with nobody in it is dropped after this
    msg_rate_per_s: float = 40.0  # websocket token bucket: sustained messages per second
    msg_burst: int = 80  # ... and burst size; an empty bucket closes the socket
    max_msg_bytes: int = 1024  # any message except signalling
    max_signal_bytes: int = 65536  # SDP offers/answers
    max_bad_messages: int = 20  # invalid messages tolerated per connection before closing
    react_rate_per_s: float = 2.0  # emoji reactions per member: sustained per second ...
    react_burst: int = 5  # ... and at once; more are dropped (one error says so)
    http_rate_per_s: float = 2.0  # room create/join requests per client address
    http_burst: int = 20
    # --- per address and per seat (a prober's holes, issue 12) ---------------------------
    max_rooms_per_addr: int = 5  # rooms one address may hold at once (others keep capacity)
    room_unjoined_ms: float = 120_000.0  # a room nobody ever joined is dropped after this
    miss_rate_per_s: float = 0.5  # failed room lookups/joins/hellos per address (guessing)
    miss_burst: int = 20
    # The message budget belongs to the seat (room + member) and to the address, not to a
    # socket: reconnecting does not refill it. An address may hold a household of seats.
    addr_msg_rate_per_s: float = 200.0
    addr_msg_burst: int = 400
    send_queue_bytes: int = 1_048_576  # bytes queued to one socket before it is too slow
    pong_timeout_ms: float = 30_000.0  # a socket that answers no ping this long is closed
    # --- server-side inference (`utjima serve --predict`; off by default) -----------------
    predict: bool = False  # POST /api/predict: frames in, faces and smiles out
    predict_workers: int = 2  # inference threads (onnxruntime, one intra-op thread each)
    predict_queue: int = 8  # requests waiting for a worker before 503 busy
    predict_max_bytes: int = 8 * 1024 * 1024  # request body (all frames of a burst)
    predict_max_pixels: int = 2_100_000  # per frame, read from the header before decoding
    predict_max_frames: int = 32  # frames in one burst
    predict_rate_per_s: float = 15.0  # requests per address (a camera's rate)
    predict_burst: int = 30
    # --- several processes behind a proxy (docs/deploy.md, utjima/server/cluster.py) -----
    # One character of the room code alphabet: this process's rooms start with it, which is
    # how the proxy routes a room to its process. None = one process, as always.
    node_id: str | None = None
    redis_url: str | None = None  # the room directory (redis://host:port/db); with node_id
    # how the other processes reach this one (default http://<host>:<port>, the bound port)
    node_url: str | None = None
    clock: Callable[[], float] = monotonic_ms  # the game clock, injectable for tests
    wall_clock: Callable[[], float] = time.time  # unix seconds: TURN credentials' expiry

    def __post_init__(self) -> None:
        for name in ("model_dir", "data_dir", "ort_dir", "web_dir", "fonts_dir", "collect_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):  # str from flags and env
                object.__setattr__(self, name, Path(value))
        object.__setattr__(self, "ice_servers", tuple(self.ice_servers))
        for name in ("cert_file", "key_file"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        for name in ("stun_urls", "turn_urls"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.cert_file is not None:
            object.__setattr__(self, "tls", True)
        if self.public_url is not None:
            try:
                object.__setattr__(self, "public_url", clean_public_url(self.public_url))
            except URLError as e:
                raise SettingsError(f"Settings: {e}") from None
        checks = [
            (1 <= self.port <= 65535 or self.port == 0, "port must be in 1..65535"),
            (self.calib_ms >= 1000, "calib_ms must be >= 1000"),
            (self.countdown_ms >= 0, "countdown_ms must be >= 0"),
            (0 <= self.steady_ms <= self.steady_max_ms, "need 0 <= steady_ms <= steady_max_ms"),
            (self.react_rate_per_s > 0 and self.react_burst >= 1,
             "need react_rate_per_s > 0, react_burst >= 1"),
            (self.round_ms >= 1000, "round_ms must be >= 1000"),
            (self.verdict_ms >= 0, "verdict_ms must be >= 0"),
            (self.rounds_to_win >= 1, "rounds_to_win must be >= 1"),
            (self.max_rounds >= self.rounds_to_win,
             f"max_rounds ({self.max_rounds}; env UTJIMA_MAX_ROUNDS) must be >= rounds_to_win "
             f"({self.rounds_to_win})"),
            (self.grace_ms >= 0, "grace_ms must be >= 0"),
            (0 <= self.allowed_delay_ms <= self.max_sample_age_ms,
             "need 0 <= allowed_delay_ms <= max_sample_age_ms"),
            (self.tick_ms > 0, "tick_ms must be > 0"),
            (2 <= self.max_players <= 4, "max_players must be in 2..4"),
            (self.max_spectators >= 0, "max_spectators must be >= 0"),
            (self.max_rooms >= 1, "max_rooms must be >= 1"),
            (self.msg_rate_per_s > 0 and self.msg_burst >= 1,
             "need msg_rate_per_s > 0, msg_burst >= 1"),
            (256 <= self.max_msg_bytes <= self.max_signal_bytes,
             "need 256 <= max_msg_bytes <= max_signal_bytes"),
            (self.http_rate_per_s > 0 and self.http_burst >= 1,
             "need http_rate_per_s > 0, http_burst >= 1"),
            (1 <= self.max_rooms_per_addr <= self.max_rooms,
             "need 1 <= max_rooms_per_addr <= max_rooms"),
            (0 < self.room_unjoined_ms <= self.room_idle_ms,
             "need 0 < room_unjoined_ms <= room_idle_ms"),
            (self.miss_rate_per_s > 0 and self.miss_burst >= 1,
             "need miss_rate_per_s > 0, miss_burst >= 1"),
            (self.addr_msg_rate_per_s >= self.msg_rate_per_s
             and self.addr_msg_burst >= self.msg_burst,
             "an address's message budget (addr_msg_rate_per_s, addr_msg_burst) must be at "
             "least one seat's (msg_rate_per_s, msg_burst)"),
            (self.send_queue_bytes >= 2 * self.max_signal_bytes,
             "send_queue_bytes must hold two signals (>= 2 * max_signal_bytes)"),
            (self.pong_timeout_ms >= 2 * PING_EVERY_MS,
             f"pong_timeout_ms must be >= {2 * PING_EVERY_MS:g} (two pings)"),
            (1 <= self.predict_workers <= 64 and 0 <= self.predict_queue <= 1024,
             "need predict_workers in 1..64, predict_queue in 0..1024"),
            (1024 <= self.predict_max_bytes <= 256 * 1024 * 1024,
             "predict_max_bytes must be in 1024..268435456"),
            (64 * 64 <= self.predict_max_pixels <= 50_000_000,
             "predict_max_pixels must be in 4096..50000000"),
            (1 <= self.predict_max_frames <= 256, "predict_max_frames must be in 1..256"),
            (self.predict_rate_per_s > 0 and self.predict_burst >= 1,
             "need predict_rate_per_s > 0, predict_burst >= 1"),
            ((self.cert_file is None) == (self.key_file is None),
             "--cert and --key go together (a certificate and its private key)"),
            (all(u.startswith(("stun:", "stuns:")) for u in self.stun_urls),
             f"stun_urls must start with stun: or stuns:, got {list(self.stun_urls)}"),
            (all(u.startswith(("turn:", "turns:")) for u in self.turn_urls),
             f"turn_urls must start with turn: or turns:, got {list(self.turn_urls)}"),
            (bool(self.turn_urls) == bool(self.turn_secret),
             "--turn-url and --turn-secret go together (the TURN server's URLs and its "
             "static-auth-secret)"),
            (60 <= self.turn_ttl_s <= 7 * 86400, "turn_ttl_s must be in 60..604800"),
            (self.ice_transport_policy in ("all", "relay"),
             f"ice_transport_policy must be 'all' or 'relay', got {self.ice_transport_policy!r}"),
            (self.ice_transport_policy == "all" or bool(self.turn_urls or self.ice_servers),
             "ice_transport_policy 'relay' needs a TURN server (--turn-url)"),
            (1 << 20 <= self.collect_max_upload_bytes <= 1 << 31,
             "collect_max_upload_bytes must be in 1 MiB..2 GiB"),
            (1 <= self.collect_max_frames <= 60000, "collect_max_frames must be in 1..60000"),
            (self.collect_max_total_bytes >= self.collect_max_upload_bytes,
             "collect_max_total_bytes must be >= collect_max_upload_bytes"),
            (self.collect_uploads_per_hour > 0 and self.collect_burst >= 1,
             "need collect_uploads_per_hour > 0, collect_burst >= 1"),
            (self.collect_token is None or _TOKEN.fullmatch(self.collect_token) is not None,
             "collect_token must be 16..128 characters of A-Z a-z 0-9 _ -"),
            (self.node_id is None or (len(self.node_id) == 1
                                      and self.node_id in ROOM_CODE_ALPHABET),
             f"node_id must be one character of {ROOM_CODE_ALPHABET} (room codes start with "
             f"it), got {self.node_id!r}"),
            ((self.node_id is None) == (self.redis_url is None),
             "--node-id and --redis go together (each process of a cluster has its own node "
             "id, and they share one Redis)"),
            (self.redis_url is None or self.redis_url.startswith(("redis://", "rediss://",
                                                                  "unix://")),
             f"redis_url must start with redis://, rediss:// or unix://, got {self.redis_url!r}"),
            (self.redis_url is None or (self.database_url or "").startswith("postgresql"),
             "a cluster (--redis) keeps its history in PostgreSQL, which every process "
             "shares: give --database-url postgresql+psycopg://..."),
            (self.node_url is None or self.node_url.startswith(("http://", "https://")),
             f"node_url must start with http:// or https://, got {self.node_url!r}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise SettingsError(f"Settings: {msg}")
        for i, s in enumerate(self.ice_servers):
            if not isinstance(s, dict) or "urls" not in s \
                    or not set(s) <= {"urls", "username", "credential"}:
                raise SettingsError(
                    f"ice_servers[{i}] must be an object with 'urls' (and optionally 'username', "
                    f"'credential'), got {s!r}")

    def check_judge(self, cfg: Any) -> None:
        """Settings that the model's judge rules (a `judge.JudgeConfig`) make impossible."""
        # with a margin: the first score arrives after the phase starts and pages drop
        # frames (a real 15 Hz stream delivered 17 samples in 1.4 s, not 21)
        need_ms = math.ceil(CALIB_MARGIN * cfg.calib_min_samples * 1000.0 / SCORE_HZ)
        if self.calib_ms < need_ms:
            raise SettingsError(
                f"Settings: calib_ms={self.calib_ms:g} collects at most "
                f"{int(self.calib_ms * SCORE_HZ / 1000)} samples at {SCORE_HZ:g} Hz, and the "
                f"model's judge needs calib_min_samples={cfg.calib_min_samples} (with a "
                f"{CALIB_MARGIN:g}x margin for late and dropped frames): set "
                f"UTJIMA_CALIB_MS to at least {need_ms}")
        if self.round_ms <= cfg.min_laugh_ms + self.allowed_delay_ms:
            raise SettingsError(
                f"Settings: round_ms={self.round_ms:g} is too short to ever confirm a laugh "
                f"(judge.min_laugh_ms {cfg.min_laugh_ms:g} + allowed_delay_ms "
                f"{self.allowed_delay_ms:g})")

    @property
    def db_url(self) -> str:
        """The database URL actually used."""
        return self.database_url or f"sqlite:///{(Path(self.data_dir) / 'utjima.db').resolve()}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `UTJIMA_<FIELD>` variables (e.g. UTJIMA_ROUND_MS=20000), then
        `overrides` (the CLI flags). UTJIMA_ICE_SERVERS is a JSON list."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        skip = {"clock", "wall_clock", "host", "port", "model_dir", "data_dir", "database_url",
                "web_dir", "fonts_dir"}
        for f in fields(cls):
            key = f"UTJIMA_{f.name.upper()}"
            if f.name in skip or key not in env:
                continue
            raw = env[key]
            try:
                if f.name == "ice_servers":
                    parsed = json.loads(raw)
                    if not isinstance(parsed, list):
                        raise ValueError("expected a JSON list")
                    values[f.name] = tuple(parsed)
                elif f.name == "ort_dir":
                    values[f.name] = Path(raw)
                elif f.type in ("int",):
                    values[f.name] = int(raw)
                elif f.type in ("bool",):
                    if raw.strip().lower() not in BOOLS:
                        raise ValueError(f"expected one of {', '.join(BOOLS)}")
                    values[f.name] = BOOLS[raw.strip().lower()]
                elif f.type.startswith("tuple[str"):
                    values[f.name] = tuple(raw.replace(",", " ").split())
                elif f.type.startswith(("str", "Path")):
                    values[f.name] = raw
                else:
                    values[f.name] = float(raw)
            except ValueError as e:
                raise SettingsError(f"{key}={raw!r} is not valid: {e}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)
