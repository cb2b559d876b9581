"""Every message and HTTP body, as pydantic models split by direction.

- client -> server (`ClientMessage`, HTTP requests): `extra="forbid"`, strict types,
  finite numbers, bounded strings; a message that does not fit is answered with an
  `error` naming the problem, never guessed at.
- server -> client (`ServerMessage`, HTTP responses): what the pages render.

Websocket messages are JSON objects with a `type` (the discriminator). The protocol is
described in docs/protocol.md; keep the two in step.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

PROTOCOL_VERSION = 1
ROOM_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud, typed on phones
ROOM_CODE_LEN = 6
ROOM_CODE_PATTERN = re.compile(f"^[{ROOM_CODE_ALPHABET}]{{{ROOM_CODE_LEN}}}$")
NICKNAME_MAX = 20
# secrets.token_urlsafe's alphabet: seat tokens, device keys and watch keys
SECRET = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
# Code points that show nothing (Unicode's Default_Ignorable_Code_Point: zero-width
# characters, bidi controls, variation selectors, fillers) and the blank Braille pattern:
# removed from nicknames, so "Ana" + a zero-width space is "Ana".
INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]")
MAX_MARKS = 3  # combining marks kept on one character (Thai, Devanagari need a few)

Role = Literal["player", "spectator"]
Spectating = Literal["open", "invite"]  # who may watch: anyone with the code, or watch link
Phase = Literal["lobby", "calibrating", "steady", "countdown", "round", "verdict", "paused",
                "match_over"]
# Spectator (and player) reactions: a fixed set, so a reaction is a choice, never free text.
REACTIONS = ("😂", "😐", "🔥", "👏", "😱", "🤫")
Reaction = Literal["😂", "😐", "🔥", "👏", "😱", "🤫"]
# Why a player's camera does not work (the page names it in the player's language).
CameraError = Literal["denied", "not_found", "in_use", "insecure", "unsupported", "detector",
                      "failed"]
ROUNDS_TO_WIN_MAX = 5  # host setting: first to 1..5 round wins
ROUND_MS_MIN, ROUND_MS_MAX = 10_000, 120_000  # host setting: a round's time limit


def is_text(v: str) -> bool:
    """Encodable as UTF-8: JSON's "\\ud800" escapes decode to lone surrogates, which are not."""
    try:
        v.encode()
    except UnicodeEncodeError:
        return False
    return True


def _check_text(v: Any, depth: int = 0) -> None:
    if isinstance(v, str):
        if not is_text(v):
            raise ValueError("strings must be valid Unicode text (a lone surrogate is not)")
    elif isinstance(v, dict) and depth < 4:
        for k, x in v.items():
            _check_text(k, depth + 1)
            _check_text(x, depth + 1)
    elif isinstance(v, list) and depth < 4:
        for x in v:
            _check_text(x, depth + 1)


class In(BaseModel):
    """Base of everything a client sends: unknown fields are an error, and so is a string
    that is not valid Unicode text."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _valid_text(cls, data: Any) -> Any:
        _check_text(data)
        return data


class Out(BaseModel):
    """Base of everything the server sends."""

    model_config = ConfigDict(frozen=True)


def clean_nickname(v: str) -> str:
    """A nickname as shown and compared: NFKC (full-width and compatibility forms folded),
    invisible characters, format and private-use characters removed, at most MAX_MARKS
    combining marks on a character, whitespace collapsed; 1..NICKNAME_MAX characters and no
    control characters."""
    if not is_text(v):
        raise ValueError("nickname must be valid Unicode text")
    v = INVISIBLE.sub("", unicodedata.normalize("NFKC", v))
    kept, marks = [], 0
    for c in v:
        cat = unicodedata.category(c)
        if cat in ("Cf", "Co"):
            continue
        marks = marks + 1 if cat in ("Mn", "Me") else 0
        if marks <= MAX_MARKS:
            kept.append(c)
    v = " ".join("".join(kept).split())  # collapse whitespace, strip
    if not 1 <= len(v) <= NICKNAME_MAX:
        raise ValueError(f"nickname must be 1..{NICKNAME_MAX} characters, got {len(v)}")
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in v):
        raise ValueError("nickname must not contain control characters")
    return v


def name_key(nickname: str) -> str:
    """Two nicknames are the same name when their keys are equal (after clean_nickname)."""
    return clean_nickname(nickname).casefold()


def clean_room_code(v: str) -> str:
    code = v.strip().upper()
    if not ROOM_CODE_PATTERN.match(code):
        raise ValueError(f"room code must be {ROOM_CODE_LEN} characters from "
                         f"{ROOM_CODE_ALPHABET}, got {v!r}")
    return code


def describe(errors: Sequence[Any]) -> str:
    """Pydantic errors (`ValidationError.errors()`, FastAPI's `RequestValidationError`) as
    one line for people: 'score.smile_prob: Input should be ...; ...' (at most four)."""
    parts = []
    for err in errors[:4]:
        loc = ".".join(str(p) for p in err["loc"]
                       if p != "body" and not str(p).startswith("function-after"))
        parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    # a field name may be whatever a client sent, lone surrogates included
    return "; ".join(parts).encode("utf-8", "backslashreplace").decode()


# --- HTTP: client -> server ------------------------------------------------------------------


class CreateRoomIn(In):
    """POST /api/rooms: an empty body is fine; the creator joins with POST .../join."""


class JoinIn(In):
    """POST /api/rooms/{code}/join"""

    nickname: str
    role: Role = "player"
    # A random secret the browser keeps (localStorage) and sends with every join: who the
    # player is. The leaderboard counts matches by it, and a nickname belongs to the first
    # key that finished a match under it. Without one a player is a guest (not ranked).
    device_key: Annotated[str, Field(min_length=22, max_length=64,
                                     pattern=r"^[A-Za-z0-9_-]+$")] | None = None
    watch_key: Annotated[str, SECRET] | None = None  # from the host's watch link

    @field_validator("nickname")
    @classmethod
    def _nickname(cls, v: str) -> str:
        return clean_nickname(v)


class ResumeIn(In):
    """POST /api/rooms/{code}/resume: tokens this browser held for the room, newest first."""

    tokens: list[Annotated[str, SECRET]] = Field(max_length=8)


# --- HTTP: server -> client ------------------------------------------------------------------


class RoomCreated(Out):
    code: str  # short code to type or read aloud
    invite_path: str  # "/r/CODE"
    invite_url: str  # the whole link, at an address a friend can reach (routes/invite.py)


class Invite(Out):
    code: str
    url: str  # the invite link, at an address a friend can reach
    qr_svg: str  # path of a QR code of `url` (image/svg+xml)


class Joined(Out):
    token: str  # secret: authenticates this member's websocket; kept in sessionStorage
    id: str  # public member id (what other clients see)
    role: Role
    seat: int | None  # 0..3 for players, None for spectators
    nickname: str


class LoopLag(Out):
    window_s: float
    ticks: int  # ticker wake-ups in the window (one every tick_ms)
    p50: float | None  # ms late
    p99: float | None
    max: float | None


class Health(Out):
    """GET /api/health: this process is up, what it holds, and how late its loop runs."""

    rooms: int
    connections: int
    loop_lag_ms: LoopLag


class RoomInfo(Out):
    """GET /api/rooms/{code}: enough for the landing page to say whether joining works, and
    for the invite page to say who invited you and to what."""

    code: str
    phase: Phase
    players: list[str]  # nicknames in seat order
    spectators: int
    max_players: int
    can_join_as_player: bool
    can_spectate: bool  # without the watch link
    spectating: Spectating = "open"
    host: str | None = None  # the host's nickname (who made the room, or took it over)
    locked: bool = False  # the host locked the room: nobody new may join
    rounds_to_win: int = 3
    round_ms: float = 30000.0


class MatchPlayerOut(Out):
    nickname: str
    seat: int
    score: int
    result: Literal["win", "loss", "draw", "forfeit"]
    threshold: float | None


class LaughEventOut(Out):
    nickname: str
    type: str  # judge event type: laugh_start, laugh_confirmed, laugh_end, face_lost, ...
    t_ms: float  # since the round's start
    start_ms: float | None = None
    end_ms: float | None = None
    peak_prob: float | None = None
    reason: str | None = None
    decisive: bool = False  # the offence this player lost the round by


class RoundOut(Out):
    index: int  # 1-based
    status: Literal["loss", "draw"]
    losers: list[str]  # nicknames
    reason: str | None  # laugh, absent, hidden_laugh, left
    duration_ms: float
    events: list[LaughEventOut] = []


class MatchOut(Out):
    id: int
    room_code: str
    started_at: str  # ISO 8601, UTC
    ended_at: str
    rounds_to_win: int
    winners: list[str]  # nicknames
    players: list[MatchPlayerOut]
    rounds: list[RoundOut] = []


class LeaderRow(Out):
    nickname: str
    matches: int
    wins: int
    rounds_played: int
    laughs: int  # rounds lost
    win_rate: float  # wins / matches


# --- websocket: client -> server --------------------------------------------------------------


class Hello(In):
    """First message on a socket: who I am. Answered with `welcome` or `error` + close."""

    type: Literal["hello"]
    token: Annotated[str, SECRET]
    v: int = PROTOCOL_VERSION  # protocol version the page speaks


_SCORE_KEYS = frozenset({"type", "t_ms", "face", "smile_prob", "player"})


class Score(In):
    """One detector result, ~10-15 per second. `t_ms` is the page's performance.now()
    clock at the frame; the server maps it onto its own clock (see clock.py)."""

    type: Literal["score"]
    t_ms: float = Field(ge=0, le=1e12)
    face: bool
    smile_prob: float | None = Field(default=None, ge=0.0, le=1.0)
    # Optional, and if given it must be the sender's own id: a client can only post for
    # itself. (A mismatch is answered with error "forbidden", not silently corrected.)
    player: str | None = Field(default=None, max_length=16)

    @model_validator(mode="after")
    def _prob_with_face(self) -> Score:
        if self.face and self.smile_prob is None:
            raise ValueError("smile_prob is required when face is true")
        return self


def fast_score(raw: Any) -> Score | None:
    """A plainly well-formed `score` (what a page sends 15 times a second) as a `Score`,
    checked here without pydantic's machinery; None for anything else, which
    `CLIENT_MESSAGE` then validates and explains. Accepts nothing `Score` would refuse."""
    if type(raw) is not dict or raw.get("type") != "score" or not raw.keys() <= _SCORE_KEYS:
        return None
    t, face, prob = raw.get("t_ms"), raw.get("face"), raw.get("smile_prob")
    if type(t) not in (float, int) or not 0 <= t <= 1e12 or type(face) is not bool \
            or raw.get("player") is not None:
        return None
    if prob is None:
        if face:
            return None  # smile_prob is required with a face: pydantic says so
    elif type(prob) not in (float, int) or not 0.0 <= prob <= 1.0:
        return None
    return Score.model_construct(type="score", t_ms=float(t), face=face,
                                 smile_prob=None if prob is None else float(prob), player=None)


class Pong(In):
    """Reply to the server's `ping`, sent at once: echoes `server_ms`, adds the page clock."""

    type: Literal["pong"]
    server_ms: float = Field(allow_inf_nan=False)
    t_ms: float = Field(ge=0, le=1e12)


class Ready(In):
    """Ready check in the lobby; after a match it asks for a rematch."""

    type: Literal["ready"]
    ready: bool = True


class Leave(In):
    """Leave the room now (no grace period)."""

    type: Literal["leave"]


class SpectatingIn(In):
    """The host decides who may watch: anyone with the room code, or only with the watch
    link (`welcome.watch_key`). Spectators already in stay."""

    type: Literal["spectating"]
    mode: Spectating


class IceCandidate(In):
    candidate: str = Field(max_length=1024)
    sdpMid: str | None = Field(default=None, max_length=64)  # noqa: N815 (WebRTC's name)
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=64)  # noqa: N815
    usernameFragment: str | None = Field(default=None, max_length=256)  # noqa: N815


class Signal(In):
    """WebRTC signalling, relayed verbatim to one other member of the room."""

    type: Literal["signal"]
    to: str = Field(max_length=16)
    kind: Literal["offer", "answer", "ice"]
    sdp: str | None = Field(default=None, max_length=65536)
    candidate: IceCandidate | None = None  # kind "ice"; None = end of candidates

    @model_validator(mode="after")
    def _payload(self) -> Signal:
        if self.kind in ("offer", "answer") and not self.sdp:
            raise ValueError(f"a signal of kind {self.kind!r} needs sdp")
        if self.kind == "ice" and self.sdp is not None:
            raise ValueError("a signal of kind 'ice' carries candidate, not sdp")
        return self


class Rules(In):
    """The host sets the room's rules in the lobby or after a match (fields left out stay)."""

    type: Literal["rules"]
    rounds_to_win: int | None = Field(default=None, ge=1, le=ROUNDS_TO_WIN_MAX)
    round_ms: int | None = Field(default=None, ge=ROUND_MS_MIN, le=ROUND_MS_MAX)
    locked: bool | None = None  # a locked room takes no new members

    @field_validator("round_ms")
    @classmethod
    def _whole_seconds(cls, v: int | None) -> int | None:
        if v is not None and v % 1000:
            raise ValueError(f"round_ms must be whole seconds (a multiple of 1000), got {v}")
        return v


class Kick(In):
    """The host removes a member from the room (they may come back unless it is locked)."""

    type: Literal["kick"]
    member: str = Field(max_length=16)


class Media(In):
    """What this page sends: microphone and camera on or off, and why a camera fails."""

    type: Literal["media"]
    mic: bool
    camera: bool
    camera_error: CameraError | None = None


class React(In):
    """An emoji reaction everybody in the room sees (rate-limited per member)."""

    type: Literal["react"]
    emoji: Reaction


ClientMessage = Annotated[Hello | Score | Pong | Ready | Leave | Signal | SpectatingIn | Rules
                          | Kick | Media | React, Field(discriminator="type")]
CLIENT_MESSAGE = TypeAdapter(ClientMessage)
CLIENT_TYPES = ("hello", "score", "pong", "ready", "leave", "signal", "spectating", "rules",
                "kick", "media", "react")


# --- websocket: server -> client --------------------------------------------------------------


class MemberView(Out):
    id: str
    nickname: str
    role: Role
    seat: int | None
    connected: bool
    ready: bool
    calibrated: bool
    threshold: float | None  # calibrated laugh threshold (shown to everyone: fairness)
    score: int
    status: Literal["active", "forfeit"]  # forfeit: dropped out of the current match
    grace_left_ms: float | None  # while disconnected: time left to come back
    mic: bool = True  # the member's page says its microphone is on
    camera: bool = True  # ... and its camera is on (players)
    camera_error: CameraError | None = None  # why this player's camera does not work


class VerdictView(Out):
    round: int  # 1-based
    status: Literal["loss", "draw"]
    losers: list[dict[str, Any]]  # {player, nickname, reason, offence_ms, peak_prob}


class RoomView(Out):
    """The whole room, sent on every change; pages render from the latest one."""

    code: str
    phase: Phase
    phase_left_ms: float | None  # time left in a timed phase (calibrating, countdown, round, ...)
    phase_ms: float | None  # the phase's full length (for progress bars)
    round: int  # current or last round, 1-based; 0 before the first
    rounds_to_win: int  # the room's rules (the host sets them between matches)
    round_ms: float
    host: str | None = None  # member id of the host (sets rules, kicks, locks)
    locked: bool = False  # nobody new may join
    members: list[MemberView]  # players in seat order, then spectators
    waiting_for: list[str] = []  # round verdict pending on these players (ids)
    paused_for: list[str] = []  # the match waits for these players to come back (ids)
    # steady: players whose face has not yet stayed below their threshold for steady_ms
    # (the countdown waits for them; a smile during the countdown sends the room back)
    not_straight: list[str] = []
    last_verdict: VerdictView | None = None
    winners: list[str] = []  # match over: winner ids
    match_id: int | None = None  # stored match (after match over), for the history page
    spectating: Spectating = "open"  # the host's choice: who may watch


class PeerView(Out):
    id: str
    role: Role
    nickname: str


class Welcome(Out):
    type: Literal["welcome"] = "welcome"
    v: int = PROTOCOL_VERSION
    you: MemberView
    peers: list[PeerView]  # connected members now; the newcomer makes the WebRTC offers
    ice_servers: list[dict[str, Any]]  # STUN, and TURN with this member's own credentials
    ice_transport_policy: Literal["all", "relay"] = "all"  # "relay": TURN only
    judge: dict[str, Any]  # the judge rules (model.json `judge`), for the UI's meters
    limits: dict[str, float]  # max_msg_bytes, max_signal_bytes, msg_rate_per_s, score_hz
    watch_key: str | None = None  # players only: the key of the room's watch link


class RoomMsg(Out):
    type: Literal["room"] = "room"
    room: RoomView


class IceRefresh(Out):
    """Fresh TURN credentials, sent before the member's last ones expire (half their life):
    for the calls the page makes or answers from now on; a call already relaying keeps its
    allocation."""

    type: Literal["ice"] = "ice"
    ice_servers: list[dict[str, Any]]


class PeerJoined(Out):
    type: Literal["peer_joined"] = "peer_joined"
    peer: PeerView


class PeerLeft(Out):
    type: Literal["peer_left"] = "peer_left"
    id: str


class SignalOut(Out):
    type: Literal["signal"] = "signal"
    sender: str = Field(serialization_alias="from")
    kind: Literal["offer", "answer", "ice"]
    sdp: str | None = None
    candidate: dict[str, Any] | None = None


class ScoreOut(Out):
    """A player's accepted sample relayed to everyone else (their meters)."""

    type: Literal["score"] = "score"
    player: str
    face: bool
    smile_prob: float | None


class JudgeEvent(Out):
    """A judge event of the running round (laugh_start, laugh_confirmed, face_lost, ...)."""

    type: Literal["judge"] = "judge"
    round: int
    event: dict[str, Any]  # the judge's event dict, tagged with player; t_ms since round start


class ReactionOut(Out):
    """A member's emoji reaction, to everybody in the room."""

    type: Literal["reaction"] = "reaction"
    sender: str = Field(serialization_alias="from")
    emoji: str


class Notice(Out):
    """Something happened that is not an error (the page words it from `code`):
    match_abandoned (a match ended before any round was decided: not stored),
    kicked (the host removed you), steady_timeout (the round starts anyway)."""

    type: Literal["notice"] = "notice"
    code: str
    names: list[str] = []  # nicknames the notice is about


class Ping(Out):
    type: Literal["ping"] = "ping"
    server_ms: float


class ErrorMsg(Out):
    type: Literal["error"] = "error"
    code: str  # stable, for code: bad_message, too_large, rate_limited, forbidden, ...
    message: str  # for people


ServerMessage = Welcome | RoomMsg | IceRefresh | PeerJoined | PeerLeft | SignalOut | ScoreOut \
    | JudgeEvent | ReactionOut | Notice | Ping | ErrorMsg


def dump(msg: Out) -> dict[str, Any]:
    """A server message as the JSON object sent on the wire."""
    return msg.model_dump(mode="json", by_alias=True)
